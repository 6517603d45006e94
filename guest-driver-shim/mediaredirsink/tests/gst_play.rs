//! `gst-play-1.0 FILE`, unmodified, redirects by itself: the plugin is
//! only installed (`GST_PLUGIN_PATH` at the built `libgstmediaredir.so`,
//! `MEDIAREDIR_SOCKET` at the test's broker, as a per-user broker would be
//! named), gst-play picks its own sink on an X display (Xvfb), and:
//! - the client's decode is bit-exact (`verify-clip` on the daemon's
//!   report);
//! - gst-play's window shows the key colour where the video is, at the
//!   video's size (what the viewer keys the redirected video into);
//! - gst-play ends normally at the end of the file.
//!
//! The clip is video only: an X server is all this rig has, no sound
//! server for gst-play's own audio sink.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Device, ffmpeg, verify};
use conformance_tests::scratch::Scratch;
use test_support::{ChildGuard, Image, Tool, Xvfb, require};

const TOOLS: &[Tool] = &[
    Tool {
        program: "gst-play-1.0",
        package: "gstreamer1.0-plugins-base-apps",
    },
    Tool {
        program: "Xvfb",
        package: "xvfb",
    },
    Tool {
        program: "xwd",
        package: "x11-apps",
    },
    Tool {
        program: "ffmpeg",
        package: "ffmpeg",
    },
];

/// The built plugin's directory (next to the test's `deps/`), the plugin
/// built now: a test build makes the crate's rlib, not always its cdylib.
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", "gst-plugin-mediaredir", "--lib"]);
    if dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "building libgstmediaredir.so failed");
    dir
}

/// The whole X screen.
fn screen(display: &str) -> Image {
    let out = Command::new("xwd")
        .args(["-silent", "-root", "-display", display])
        .stdin(Stdio::null())
        .output()
        .expect("run xwd");
    assert!(out.status.success(), "xwd -root failed");
    Image::from_xwd(&out.stdout).expect("an xwd image")
}

/// Pixels of the key colour (magenta, within a converter's rounding).
fn key_pixels(img: &Image) -> usize {
    img.pixels
        .iter()
        .filter(|p| {
            let [_, r, g, b] = p.to_be_bytes();
            r >= 240 && b >= 240 && g <= 16
        })
        .count()
}

#[test]
fn gst_play_redirects_by_itself_and_shows_the_key_colour_in_its_window() {
    if !require(
        "gst_play_redirects_by_itself_and_shows_the_key_colour_in_its_window",
        TOOLS,
    ) {
        return;
    }
    let scratch = Scratch::new("dec-gst-play");
    let clip = ffmpeg(
        &scratch,
        "h264.mp4",
        "-f lavfi -i testsrc=size=320x240:rate=30 -t 4 -c:v libx264 -bf 2 -pix_fmt yuv420p",
    );
    let (mut device, report) = Device::start_verifying(&scratch, "play");
    let xvfb = Xvfb::start(640, 480).expect("start Xvfb");
    let mut play = ChildGuard::spawn(
        Command::new("gst-play-1.0")
            .arg(&clip)
            .env("DISPLAY", xvfb.display())
            .env("GST_PLUGIN_PATH", plugin_dir())
            .env("GST_REGISTRY", scratch.path("registry.bin"))
            .env("MEDIAREDIR_SOCKET", &device.broker_socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    )
    .expect("start gst-play-1.0");

    // While it plays: the window shows the key colour, the video's size.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut most = 0;
    let status = loop {
        most = most.max(key_pixels(&screen(&xvfb.display())));
        if let Some(status) = play.try_wait().expect("gst-play's status") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "gst-play-1.0 still playing after 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "gst-play-1.0 exited {status}");
    assert!(
        most >= 320 * 240 * 9 / 10,
        "the window showed {most} key-colour pixels, expected the 320x240 video's"
    );
    let counters = device.daemon.take().expect("daemon").stop();
    assert!(
        counters.get("payload_bytes").copied().unwrap_or(0) > 0,
        "nothing reached the daemon ({counters:?})"
    );
    verify(&clip, &report, 1).unwrap_or_else(|e| panic!("gst-play-1.0: {e}"));
}

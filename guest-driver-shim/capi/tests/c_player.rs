//! `examples/play_ivf.c`, compiled against `include/mediaredir.h` and
//! `libmediaredir.so`, plays VP8 and VP9 IVF clips through the real
//! daemon (local verify uplink) and the standalone `mediaredir-broker`:
//! it exits 0 after the EOS event, and `verify-clip` finds what the
//! daemon's client decoded bit-exact with decoding the file locally,
//! without a payload byte copied. Without a broker, the C program gets
//! the error code and `mediaredir_strerror`'s message.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use conformance_tests::daemon::DaemonProcess;
use conformance_tests::media::gst_launch;
use conformance_tests::rig::{daemon_binary, workspace_binary};
use conformance_tests::scratch::Scratch;

fn verify_clip() -> PathBuf {
    workspace_binary("VERIFY_CLIP", "media-client", "verify-clip")
}

/// The C player, compiled into `scratch`.
fn play_ivf(scratch: &Scratch) -> PathBuf {
    let exe = scratch.path("play_ivf");
    common::compile_c(&common::crate_dir().join("examples/play_ivf.c"), &exe);
    exe
}

/// 1 s of 320x240 video encoded by `encoder` into an IVF file.
fn generate(encoder: &str, out: &Path) {
    let pipeline = format!(
        "videotestsrc num-buffers=30 pattern=ball ! \
         video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! \
         {encoder} deadline=1 ! avmux_ivf ! filesink location={}",
        out.display()
    );
    gst_launch(&pipeline);
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Plays `clip` with the C player through a local:verify daemon and a
/// broker; checks the player's result and the daemon's report.
fn play_and_verify(scratch: &Scratch, player: &Path, name: &str, clip: &Path) {
    let vhost = scratch.path(&format!("{name}-vhost.sock"));
    let broker_socket = scratch.path(&format!("{name}-broker.sock"));
    let report = scratch.path(&format!("{name}.report"));
    let report_arg = report.display().to_string();
    let daemon = DaemonProcess::start(
        &daemon_binary(),
        &vhost,
        &["--uplink", "local:verify", "--verify-report", &report_arg],
    );
    let broker = common::Broker::start(&vhost, &broker_socket);
    let played: Output = Command::new(player)
        .arg(&broker_socket)
        .arg(clip)
        .stdin(Stdio::null())
        .output()
        .expect("run play_ivf");
    drop(broker);
    let counters = daemon.stop();
    assert!(
        played.status.success(),
        "{name}: play_ivf exited {}: {}",
        played.status,
        text(&played.stderr)
    );
    let stdout = text(&played.stdout);
    assert!(
        stdout.contains("play_ivf: ok frames=30 ") && stdout.contains("eos=1"),
        "{name}: play_ivf printed {stdout:?}"
    );
    assert!(
        counters.get("payload_bytes").copied().unwrap_or(0) > 0,
        "{name}: no payload reached the daemon ({counters:?})"
    );
    assert_eq!(
        counters.get("payload_bytes_copied").copied(),
        Some(0),
        "{name}: payload copied ({counters:?})"
    );
    let verify = Command::new(verify_clip())
        .arg("--input")
        .arg(clip)
        .arg("--report")
        .arg(&report)
        .stdin(Stdio::null())
        .output()
        .expect("run verify-clip");
    let out = text(&verify.stdout);
    let json = out.lines().last().unwrap_or_default();
    assert!(
        verify.status.success()
            && json.contains("\"bit_exact\":true")
            && json.contains("\"streams\":1,")
            && json.contains("\"video_frames\":30,"),
        "{name}: verify-clip exited {}: {json} {}",
        verify.status,
        text(&verify.stderr)
    );
}

#[test]
fn c_player_plays_vp8_and_vp9_ivf_bit_exact() {
    let scratch = Scratch::new("capi-play");
    let player = play_ivf(&scratch);
    for (name, encoder) in [("vp8", "vp8enc"), ("vp9", "vp9enc")] {
        let clip = scratch.path(&format!("{name}.ivf"));
        generate(encoder, &clip);
        play_and_verify(&scratch, &player, name, &clip);
    }
}

#[test]
fn c_player_reports_a_missing_broker() {
    let scratch = Scratch::new("capi-nobroker");
    let player = play_ivf(&scratch);
    let nowhere = scratch.path("nobody-listens.sock");
    let out = Command::new(&player)
        .arg(&nowhere)
        .arg(scratch.path("unused.ivf"))
        .stdin(Stdio::null())
        .output()
        .expect("run play_ivf");
    // 2: mediaredir_open failed (see the example's usage).
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let message = mediaredir::errors::strerror(-libc::ENOENT)
        .to_str()
        .expect("ASCII message")
        .to_string();
    assert!(
        err.contains("nobody-listens.sock")
            && err.contains(&message)
            && err.contains(&format!("({})", -libc::ENOENT)),
        "unclear error without a broker: {err}"
    );
}

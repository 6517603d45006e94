//! `cargo xtask demo --viewer`: what the project is for, on the user's
//! screen. QEMU (built with Spice) shows its firmware screen as the VM's
//! desktop; `redir-play` plays a clip through the daemon (over vhost-user)
//! with a geometry that puts it in the middle of that desktop; the viewer,
//! on the user's display (`DISPLAY`), or on a private Xvfb when there is
//! none, shows the desktop with the video drawn in place. The viewer writes
//! a screenshot of its window to `target/demo-viewer.png` while it plays.
//!
//! The components' logs go to `target/demo-logs/demo-viewer.log`, unless
//! `-v`; the demo ends with one human-readable summary line, then one
//! JSON line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use qemu_config::FirmwareDesktop;
use test_support::{Image, Qmp, X11, Xvfb};

use super::{Guard, logs, wait_exit, wait_path};
use crate::process;
use crate::{qemu, tempdir};

/// Where the clip goes on the guest's 720x400 text screen.
const GEOMETRY: &str = "200:80:320:240";

/// Where the screenshot is written, relative to the workspace root.
const SCREENSHOT: &str = "target/demo-viewer.png";

/// A 10 s VP9 clip (colour bars scrolling sideways) at `path`: video
/// only, since a machine without a sound device plays no audio.
fn generate_clip(path: &Path) -> Result<()> {
    let pipeline = format!(
        "-q videotestsrc num-buffers=300 pattern=smpte horizontal-speed=2 ! \
         video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! \
         vp9enc deadline=1 ! webmmux ! filesink location={}",
        path.display()
    );
    process::run(Command::new("gst-launch-1.0").args(pipeline.split_whitespace()))
        .context("generating the clip (is GStreamer installed? `cargo xtask setup`)")
}

/// The user's X display if one answers, else a private Xvfb.
fn display() -> Result<(String, Option<Xvfb>)> {
    if let Ok(d) = std::env::var("DISPLAY")
        && X11::connect(&d).is_ok()
    {
        return Ok((d, None));
    }
    let xvfb =
        Xvfb::start(1280, 800).context("starting Xvfb (`cargo xtask setup` installs xvfb)")?;
    Ok((xvfb.display(), Some(xvfb)))
}

fn spawn(cmd: &mut Command) -> Result<Guard> {
    let line = process::display(cmd);
    logs::line(&format!("demo: $ {line}"));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(logs::stdio())
        .stderr(logs::stdio())
        .spawn()
        .with_context(|| format!("cannot start `{line}`"))?;
    Ok(Guard(child))
}

/// Waits until QEMU's firmware has drawn its screen (QMP `screendump`
/// into `dump`'s folder); the bench's viewer section waits the same way.
pub(crate) fn wait_desktop(qmp_path: &Path, dump: &Path) -> Result<Image> {
    wait_path(qmp_path, Duration::from_secs(30))?;
    let mut qmp = Qmp::connect(qmp_path).context("QMP")?;
    let dir = dump.parent().context("a folder for the screendump")?;
    qemu::desktop::wait_for_firmware_screen(&mut qmp, dir)
}

/// Runs the viewer demo.
pub(crate) fn run(input: Option<PathBuf>, verbose: bool) -> Result<()> {
    super::build_stack(false, true)?;
    let root = crate::workspace_root();
    let dir = tempdir::new("xtask-demo-viewer")?;
    if verbose {
        logs::to_terminal();
    } else {
        logs::to_file(&root.join("target/demo-logs/demo-viewer.log"))?;
    }
    let result = run_with(root, dir.path(), input, verbose);
    logs::to_terminal();
    result
}

fn run_with(root: &Path, dir: &Path, input: Option<PathBuf>, verbose: bool) -> Result<()> {
    let qemu = qemu::ensure()?;
    let bin = root.join("target/debug");
    let input = super::input_or_generated(
        input,
        &dir.join("bars.webm"),
        "a 10 s VP9 clip",
        generate_clip,
    )?;
    let (display, _xvfb) = display()?;
    let (spice, qmp) = (dir.join("spice.sock"), dir.join("qmp.sock"));
    let _qemu = spawn(
        Command::new(&qemu.binary).args(FirmwareDesktop::new(spice.clone(), qmp.clone()).args()),
    )?;
    let guest = wait_desktop(&qmp, &dir.join("screendump.ppm"))?;
    let (vhost, media) = (dir.join("vhost.sock"), dir.join("media.sock"));
    let _daemon = spawn(
        Command::new(bin.join("vhost-user-mediaredir"))
            .arg("--socket-path")
            .arg(&vhost)
            .arg("--uplink")
            .arg(format!("unix:{}", media.display())),
    )?;
    wait_path(&vhost, Duration::from_secs(10))?;
    let screenshot = root.join(SCREENSHOT);
    let _ = std::fs::remove_file(&screenshot);
    let _viewer = spawn(
        Command::new(bin.join("mediaredir-viewer"))
            .arg(format!("spice+unix://{}", spice.display()))
            .arg("--media")
            .arg(format!("unix:{}", media.display()))
            .args([
                "--title",
                "vhost-device-media demo",
                "--indicator",
                "--screenshot",
            ])
            .arg(&screenshot)
            .env("DISPLAY", &display),
    )?;
    let mut player = spawn(
        Command::new(bin.join("redir-play"))
            .arg("--vhost-user")
            .arg(&vhost)
            .arg("--at")
            .arg(format!("0:geometry={GEOMETRY}"))
            .arg(&input),
    )?;
    println!(
        "demo: playing {} in the viewer on DISPLAY={display}",
        input.display()
    );
    let status = wait_exit(&mut player.0, "redir-play", Duration::from_secs(120))?;
    // The screenshot follows the pictures drawn, twice a second.
    std::thread::sleep(Duration::from_secs(1));
    let ok = status.success() && screenshot.is_file();
    let logs = if verbose {
        String::new()
    } else {
        logs::path().map_or_else(String::new, |p| format!("; logs: {}", p.display()))
    };
    println!(
        "demo --viewer: {} {} through the daemon to the viewer, drawn in place at {} on the VM's \
         {}x{} desktop (DISPLAY={display}); screenshot: {}{logs}",
        input
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        if status.success() { "played" } else { "failed" },
        GEOMETRY.replace(':', ","),
        guest.width,
        guest.height,
        if screenshot.is_file() {
            screenshot.display().to_string()
        } else {
            "none".into()
        },
    );
    println!(
        "{}",
        test_support::serde_json::json!({
            "demo": "viewer",
            "ok": ok,
            "input": input.display().to_string(),
            "display": display,
            "screenshot": screenshot.is_file().then(|| screenshot.display().to_string()),
        })
    );
    if !ok {
        bail!(
            "the viewer demo failed: redir-play {status}, screenshot {}",
            screenshot.is_file()
        );
    }
    Ok(())
}

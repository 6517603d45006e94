//! The VM tests and `cargo xtask demo --vm`: QEMU (TCG) boots the guest
//! image (see [`guest_image`]) with the media-redirection device attached to
//! the real daemon (`--uplink local:verify`), the guest's `redir-play` plays
//! a clip through a broker in its own process over the virtio-pci
//! transport (buffer pools in hugepages), and `verify-clip` compares the
//! client engine's output with a local decode of the same file.
//!
//! Steps of the `vm` test: each clip (audio, video, both) bit-exact, and
//! both again with polling instead of the interrupt (`--pci-poll`); the
//! daemon killed (SIGKILL) and restarted mid-stream while QEMU reconnects
//! (`reconnect-ms`, needs QEMU patch 0003), the broker sees buffers come
//! back STALE or the new instance's DEVICE_STARTED and resets the device
//! (retrying until the daemon is up), the player says HELLO again and plays
//! the clip again, bit-exact on the new daemon (once restarted after 300 ms,
//! once after 15 s: longer than a control request's timeout, so the
//! broker's reset meets a device reading back zeroes and must retry); the
//! broker resetting the
//! device mid-stream (`--reset-after`) while the daemon keeps serving; the
//! viewer over the guest's own desktop ([`viewer`]: the video in the
//! guest's key-coloured placeholder under its control bar, a click
//! reaching the guest). Every QEMU runs under `timeout`, every wait has a
//! deadline.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use qemu_config::QemuCommand;
use test_support::ChildGuard;

use crate::demo::{self, Summary};
use crate::guest_image::{self, GuestImage};
use crate::process;
use crate::qemu::{self, Qemu};
use crate::tempdir;
use crate::timing::format_duration;

mod monitors;
mod session;
mod viewer;

/// Longest a guest may run (QEMU's own `timeout`).
const QEMU_TIMEOUT_SECS: u64 = 240;
/// Guest RAM.
const GUEST_MIB: u32 = 512;
/// `reconnect-ms` for the restart test.
const RECONNECT_MS: u32 = 500;

/// A child process killed (and reaped) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The daemon, its stdout echoed with a prefix and its last `counters:`
/// line kept.
struct Daemon {
    child: Guard,
    counters: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Starts `vhost-user-mediaredir --uplink local:verify` on `socket` and
    /// waits for the socket.
    fn start(bin: &Path, socket: &Path, report: &Path, name: &str) -> Result<Daemon> {
        let report = format!("{}", report.display());
        Daemon::start_with(
            bin,
            socket,
            &["--uplink", "local:verify", "--verify-report", &report],
            name,
        )
    }

    /// Starts `vhost-user-mediaredir` with `args` on `socket` and waits for
    /// the socket.
    fn start_with(bin: &Path, socket: &Path, args: &[&str], name: &str) -> Result<Daemon> {
        let _ = std::fs::remove_file(socket);
        let mut cmd = Command::new(bin.join("vhost-user-mediaredir"));
        cmd.arg("--socket-path").arg(socket).args(args);
        println!("vm: $ {}", process::display(&cmd));
        let mut child = Guard(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .context("starting vhost-user-mediaredir")?,
        );
        let stdout = child.0.stdout.take().context("daemon stdout")?;
        let counters = Arc::new(Mutex::new(String::new()));
        let keep = Arc::clone(&counters);
        let name = name.to_owned();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("{name}: {line}");
                if line.starts_with("counters:") {
                    *keep.lock().unwrap_or_else(|p| p.into_inner()) = line;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            if Instant::now() >= deadline {
                bail!("the daemon's socket {} did not appear", socket.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Daemon {
            child,
            counters,
            reader: Some(reader),
        })
    }

    /// SIGKILL, as a crash would.
    fn kill(mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    /// SIGTERM (the daemon writes its report and counters) and wait; the
    /// last `counters:` line.
    fn stop(mut self) -> Result<String> {
        process::run(
            Command::new("kill")
                .arg("-TERM")
                .arg(self.child.0.id().to_string()),
        )?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.0.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                bail!("the daemon did not exit within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        Ok(self
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone())
    }
}

/// A booted guest: QEMU (under `timeout`) with the serial console on its
/// stdout. Dropped, `timeout` gets SIGTERM, which it passes on to QEMU (a
/// SIGKILL would leave QEMU running without it).
struct Guest {
    child: ChildGuard,
    lines: Receiver<String>,
}

impl Guest {
    /// Boots the image playing `clip` with redir-play `args`.
    fn boot(
        qemu: &Qemu,
        image: &GuestImage,
        socket: &Path,
        clip: &str,
        args: &[&str],
        reconnect: bool,
    ) -> Result<Guest> {
        let mut q = Guest::machine(qemu, socket);
        q.reconnect_ms = reconnect.then_some(RECONNECT_MS);
        let mut words = vec![format!("redir.play={clip}")];
        if !args.is_empty() {
            words.push(format!("redir.args={}", args.join(",")));
        }
        Guest::boot_with(qemu, image, &q, &words)
    }

    /// The VM test's machine on the daemon's `socket`.
    fn machine(qemu: &Qemu, socket: &Path) -> QemuCommand {
        let mut q = QemuCommand::new(socket);
        q.flavor = qemu.flavor;
        q.memory_mib = GUEST_MIB;
        q
    }

    /// Boots the image on machine `q` with these words on the kernel
    /// command line (`redir.play=`... for the init).
    fn boot_with(
        qemu: &Qemu,
        image: &GuestImage,
        q: &QemuCommand,
        words: &[String],
    ) -> Result<Guest> {
        let mut append = "console=ttyS0 panic=-1 quiet hugepages=64".to_owned();
        for word in words {
            append.push(' ');
            append.push_str(word);
        }
        let mut cmd = Command::new("timeout");
        cmd.arg(QEMU_TIMEOUT_SECS.to_string())
            .arg(&qemu.binary)
            .args(q.args())
            .arg("-kernel")
            .arg(&image.kernel)
            .arg("-initrd")
            .arg(&image.initrd)
            .arg("-append")
            .arg(append)
            .arg("-no-reboot")
            .arg("-L")
            .arg(&image.firmware)
            // qboot instead of SeaBIOS: under TCG SeaBIOS spends ~30 s
            // before it jumps to the kernel, qboot well under a second.
            .arg("-bios")
            .arg(image.firmware.join("qboot.rom"));
        println!("vm: $ {}", process::display(&cmd));
        let mut child = ChildGuard::spawn(cmd.stdin(Stdio::null()).stdout(Stdio::piped()))
            .context("starting QEMU")?;
        let stdout = child.child_mut().stdout.take().context("QEMU stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).trim_end().to_owned();
                println!("guest: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Guest { child, lines })
    }

    /// Waits for a console line containing `needle`; fails at once, with
    /// the guest's result, when the guest ends first.
    fn wait_line(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(line) if line.contains("REDIR-RESULT ") => {
                    bail!("the guest ended before it printed {needle:?}: {line}")
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    bail!("the guest printed no {needle:?} within {timeout:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("QEMU exited before the guest printed {needle:?}")
                }
            }
        }
    }

    /// Waits for `REDIR-RESULT {json}` and for QEMU to exit; the JSON.
    fn result(mut self, timeout: Duration) -> Result<String> {
        let line = self.wait_line("REDIR-RESULT ", timeout)?;
        let json = line
            .split_once("REDIR-RESULT ")
            .map(|(_, j)| j.trim().to_owned())
            .unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                println!("vm: QEMU did not power off within 30 s; killing it");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(json)
    }
}

/// The binaries and images every VM run needs.
pub(crate) struct Rig {
    bin: PathBuf,
    qemu: Qemu,
    image: GuestImage,
}

impl Rig {
    /// Builds the binaries, provides QEMU and the guest image (`extra`: one
    /// more clip for the image, as `clips/input.<ext>`).
    pub(crate) fn new(extra: Option<&Path>) -> Result<Rig> {
        // media-client for the QEMU-session test, the viewer for its own.
        crate::demo::build_stack(true, true)?;
        let bin = crate::workspace_root()
            .join("target/debug")
            .canonicalize()
            .context("target/debug")?;
        let qemu = qemu::ensure()?;
        let started = Instant::now();
        let image = guest_image::ensure(&bin.join("redir-play"), extra)?;
        println!(
            "vm: guest image ready in {} ({})",
            format_duration(started.elapsed()),
            image.initrd.display()
        );
        Ok(Rig { bin, qemu, image })
    }
}

/// Whether the guest's result JSON says it played.
fn guest_ok(json: &str) -> bool {
    demo::json_true(json, "ok")
}

/// Plays `clip` (in the guest; `host` on this machine) with redir-play
/// `args` in a fresh VM against a fresh daemon; fills `summary`.
fn play_clip(
    rig: &Rig,
    clip: &str,
    args: &[&str],
    host: &Path,
    summary: &mut Summary,
) -> Result<()> {
    let dir = tempdir::new("xtask-vm")?;
    let socket = dir.path().join("vhost.sock");
    let report = dir.path().join("report.txt");
    let daemon = Daemon::start(&rig.bin, &socket, &report, "daemon")?;
    let guest = Guest::boot(&rig.qemu, &rig.image, &socket, clip, args, false)?;
    let json = guest.result(Duration::from_secs(QEMU_TIMEOUT_SECS))?;
    let counters = daemon.stop()?;
    summary.payload_bytes = demo::counter(&counters, "payload_bytes").unwrap_or(0);
    summary.payload_bytes_copied = demo::counter(&counters, "payload_bytes_copied").unwrap_or(0);
    if !guest_ok(&json) {
        bail!("the guest failed to play {clip}: {json}");
    }
    let demo::Verdict {
        bit_exact,
        streams,
        video_frames: video,
        audio_samples: audio,
    } = demo::verify_clip(&rig.bin, host, &report, None, "vm")?;
    summary.bit_exact = bit_exact;
    summary.streams = streams;
    summary.video_frames_decoded = video;
    summary.audio_buffers_decoded = audio;
    Ok(())
}

/// One clip through the VM (redir-play `args`), bit-exact.
fn clip_test(rig: &Rig, clip: &str, args: &[&str]) -> Result<()> {
    let t0 = Instant::now();
    let mut summary = Summary::default();
    play_clip(rig, clip, args, &rig.image.clips.join(clip), &mut summary)?;
    if !summary.bit_exact || summary.streams == 0 {
        bail!("{clip}: the client output is not bit-exact with a local decode");
    }
    println!(
        "vm: PASS {clip} {args:?}: {} streams, {} video frames, {} audio samples bit-exact, {} payload bytes ({} copied) in {}",
        summary.streams,
        summary.video_frames_decoded,
        summary.audio_buffers_decoded,
        summary.payload_bytes,
        summary.payload_bytes_copied,
        format_duration(t0.elapsed())
    );
    Ok(())
}

/// The daemon is killed mid-stream and restarted `outage` later; QEMU
/// reconnects; the broker resets the device (retrying while the daemon is
/// down, when the outage outlasts a control request's timeout) and the
/// player plays the clip again, bit-exact on the new daemon.
fn daemon_restart_test(rig: &Rig, outage: Duration) -> Result<()> {
    let t0 = Instant::now();
    let clip = "long.webm";
    let dir = tempdir::new("xtask-vm")?;
    let socket = dir.path().join("vhost.sock");
    let first_report = dir.path().join("report-1.txt");
    let report = dir.path().join("report-2.txt");
    let daemon = Daemon::start(&rig.bin, &socket, &first_report, "daemon-1")?;
    let mut guest = Guest::boot(
        &rig.qemu,
        &rig.image,
        &socket,
        clip,
        &["--recover", "3"],
        true,
    )?;
    guest.wait_line("redir-play: 100 samples", Duration::from_secs(120))?;
    println!("vm: killing the daemon mid-stream (SIGKILL), restarting it after {outage:?}");
    daemon.kill();
    std::thread::sleep(outage);
    let daemon = Daemon::start(&rig.bin, &socket, &report, "daemon-2")?;
    let json = guest.result(Duration::from_secs(QEMU_TIMEOUT_SECS))?;
    daemon.stop()?;
    if !guest_ok(&json) {
        bail!("the guest did not play again after the daemon restart: {json}");
    }
    if !json.contains("1 recovered")
        && !json.contains("2 recovered")
        && !json.contains("3 recovered")
    {
        bail!("the guest never saw the device go away: {json}");
    }
    let demo::Verdict {
        bit_exact, streams, ..
    } = demo::verify_clip(&rig.bin, &rig.image.clips.join(clip), &report, None, "vm")?;
    if !bit_exact || streams == 0 {
        bail!("after the restart, the new daemon's output is not bit-exact");
    }
    println!(
        "vm: PASS daemon restart after {outage:?}: QEMU reconnected, the broker reset the device and the guest played {clip} again bit-exact in {}",
        format_duration(t0.elapsed())
    );
    Ok(())
}

/// The guest resets the device mid-stream; the daemon keeps serving and
/// the guest plays the clip to its end.
fn guest_reset_test(rig: &Rig) -> Result<()> {
    let t0 = Instant::now();
    let clip = "av.webm";
    let dir = tempdir::new("xtask-vm")?;
    let socket = dir.path().join("vhost.sock");
    let report = dir.path().join("report.txt");
    let daemon = Daemon::start(&rig.bin, &socket, &report, "daemon")?;
    let guest = Guest::boot(
        &rig.qemu,
        &rig.image,
        &socket,
        clip,
        &["--reset-after", "40"],
        false,
    )?;
    let json = guest.result(Duration::from_secs(QEMU_TIMEOUT_SECS))?;
    let counters = daemon.stop()?;
    if !guest_ok(&json) || !json.contains("1 asked") {
        bail!("the guest did not play to the end after its own reset: {json}");
    }
    let created = demo::counter(&counters, "streams_created").unwrap_or(0);
    println!(
        "vm: PASS guest reset: the daemon kept serving ({created} streams created over both plays) in {}",
        format_duration(t0.elapsed())
    );
    Ok(())
}

/// The `vm` step of `cargo xtask test`.
pub(crate) fn test() -> Result<()> {
    run(false)
}

/// `cargo xtask vm`: every VM test, or only the viewer's.
pub(crate) fn run(viewer_only: bool) -> Result<()> {
    let rig = Rig::new(None)?;
    if viewer_only {
        viewer::test(&rig)?;
        return monitors::test(&rig);
    }
    for clip in ["audio.webm", "video.webm", "av.webm"] {
        clip_test(&rig, clip, &[])?;
    }
    // Polling instead of the uio interrupt: the explicit option.
    clip_test(&rig, "av.webm", &["--pci-poll"])?;
    daemon_restart_test(&rig, Duration::from_millis(300))?;
    // Down longer than a control request's timeout (12 s): the broker's
    // reset fails until the daemon is back and must retry.
    daemon_restart_test(&rig, Duration::from_secs(15))?;
    guest_reset_test(&rig)?;
    // The media in QEMU's own Spice session, headless and bit-exact.
    session::test(&rig)?;
    // The guest's own desktop with the video in it, in the viewer, both
    // from one Spice session; then a guest with two monitors in one
    // display channel.
    viewer::test(&rig)?;
    monitors::test(&rig)
}

/// `cargo xtask demo --vm`: the demo with the player in the VM; prints the
/// same summary line as `cargo xtask demo`.
pub(crate) fn demo(input: Option<PathBuf>) -> Result<()> {
    let input = input
        .map(|p| {
            p.canonicalize()
                .with_context(|| format!("--input {}", p.display()))
        })
        .transpose()?;
    let rig = Rig::new(input.as_deref())?;
    let (clip, host) = match &input {
        Some(path) => (guest_image::input_name(path), path.clone()),
        None => ("av.webm".to_owned(), rig.image.clips.join("av.webm")),
    };
    let mut summary = Summary {
        input: host.display().to_string(),
        uplink: "local".into(),
        player: "redir-play".into(),
        ..Summary::default()
    };
    let t0 = Instant::now();
    let result = play_clip(&rig, &clip, &[], &host, &mut summary);
    summary.conclude(&result, t0, None)
}

//! The media in the VM's own Spice session, headless (issue 19): the real
//! guest plays a clip (VP9 + Opus) through the device; QEMU's
//! `chardev-relay` (patch 0004) joins its Spice server's media port to the
//! daemon's Unix uplink, and `media-client --spice` (a client of QEMU's
//! session, not of a second server) decodes it. Asserted: the guest played
//! to its end, the client's decode is bit-exact with decoding the file,
//! and the daemon copied no payload (the copies are QEMU's relay's).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mediaredir_proto::wire::SPICE_PORT_NAME;
use qemu_config::{MediaRelay, SpiceListen, SpiceServer};
use test_support::ChildGuard;

use super::{Daemon, Guest, QEMU_TIMEOUT_SECS, Rig, guest_ok};
use crate::demo;
use crate::process;
use crate::tempdir;
use crate::timing::format_duration;

/// How long the guest's player waits for the client (QEMU's Spice server
/// and `media-client` start while the guest boots).
const WAIT_CLIENT_SECS: u32 = 60;

/// The test; see the module documentation.
pub(super) fn test(rig: &Rig) -> Result<()> {
    let t0 = Instant::now();
    let clip = "av.webm";
    let dir = tempdir::new("xtask-vm-session")?;
    let path = |name: &str| dir.path().join(name);
    let (vhost, media, spice, report) = (
        path("vhost.sock"),
        path("media.sock"),
        path("spice.sock"),
        path("report.txt"),
    );
    let daemon = Daemon::start_with(
        &rig.bin,
        &vhost,
        &["--uplink", &format!("unix:{}", media.display())],
        "daemon",
    )?;
    let mut q = Guest::machine(&rig.qemu, &vhost)
        .with_spice_desktop(SpiceServer::new(SpiceListen::Unix(spice.clone())));
    q.media_relay = Some(MediaRelay::new(SPICE_PORT_NAME, &media));
    let words = [
        format!("redir.play={clip}"),
        format!("redir.args=--wait-client,{WAIT_CLIENT_SECS}"),
    ];
    let guest = Guest::boot_with(&rig.qemu, &rig.image, &q, &words)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !spice.exists() {
        if Instant::now() > deadline {
            bail!("QEMU's Spice socket {} did not appear", spice.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut cmd = Command::new(rig.bin.join("media-client"));
    cmd.arg("--spice")
        .arg(format!("unix:{}", spice.display()))
        .arg("--once")
        .arg("--verify-report")
        .arg(&report)
        .stdin(Stdio::null());
    println!("vm: $ {}", process::display(&cmd));
    let mut client = ChildGuard::spawn(&mut cmd).context("starting media-client")?;
    let json = guest.result(Duration::from_secs(QEMU_TIMEOUT_SECS))?;
    if !guest_ok(&json) {
        bail!("the guest failed to play {clip} to a client of its Spice session: {json}");
    }
    // The client writes its report when every stream has ended, and exits
    // (`--once`).
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.try_wait()?.is_none() {
        if Instant::now() > deadline {
            bail!("media-client did not end within 30 s of the guest's end of play");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let counters = daemon.stop()?;
    let copied = demo::counter(&counters, "payload_bytes_copied").unwrap_or(u64::MAX);
    let payload = demo::counter(&counters, "payload_bytes").unwrap_or(0);
    let verdict = demo::verify_clip(&rig.bin, &rig.image.clips.join(clip), &report, None, "vm")?;
    if !verdict.bit_exact || verdict.streams == 0 {
        bail!("{clip} through QEMU's Spice session: the client's decode is not bit-exact");
    }
    if payload == 0 || copied != 0 {
        bail!("the daemon forwarded {payload} payload bytes and copied {copied}: want > 0 and 0");
    }
    println!(
        "vm: PASS {clip} through QEMU's own Spice session (chardev-relay): {} streams, {} video \
         frames, {} audio samples bit-exact, {payload} payload bytes (0 copied by the daemon) in {}",
        verdict.streams,
        verdict.video_frames,
        verdict.audio_samples,
        format_duration(t0.elapsed())
    );
    Ok(())
}

//! Redirection through the stack: `redir-play` (the guest's player with its
//! in-process broker) plays the clip through the daemon to `media-client`
//! on the user's device, over a Unix socket, over the daemon's Spice
//! server, and through QEMU's own Spice session (`chardev-relay` to the
//! daemon's Unix uplink); the client hashes every decoded frame and
//! `verify-clip` compares them with a local decode of the file, so
//! "bit-exact" is checked, not assumed. Host CPU is the daemon's, plus
//! QEMU's relay and Spice server on the QEMU-session path (the decode is
//! on the user's device); the player's CPU is reported beside it as the
//! guest's.

use std::path::Path;

use anyhow::{Result, bail};

use crate::demo::{self, DemoPlayer, DemoUplink, Summary};
use crate::tempdir;

use super::clips::Clip;

/// One clip redirected over one uplink.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Redirect {
    /// The clip's name.
    pub(crate) clip: &'static str,
    /// `unix`, `spice` or `qemu-spice`.
    pub(crate) uplink: &'static str,
    /// Media seconds.
    pub(crate) seconds: f64,
    /// Daemon CPU seconds while the clip played.
    pub(crate) daemon_cpu_s: f64,
    /// Player (guest) CPU seconds.
    pub(crate) player_cpu_s: f64,
    /// Bytes on the wire: the uplink's frames (headers and payloads).
    pub(crate) wire_bytes: u64,
    /// Bytes the daemon wrote through system calls (includes Spice's own
    /// framing on the Spice uplink, and eventfd kicks).
    pub(crate) daemon_wchar: u64,
    /// Compressed media bytes forwarded.
    pub(crate) payload_bytes: u64,
    /// Payload bytes the daemon copied in user space.
    pub(crate) payload_bytes_copied: u64,
    /// The client's decode equals a local decode of the file.
    pub(crate) bit_exact: bool,
    /// QEMU's CPU seconds beyond its idle rate (`qemu-spice`; else 0).
    pub(crate) qemu_cpu_s: f64,
    /// Bytes QEMU wrote (`qemu-spice`: to the Spice client; else 0).
    pub(crate) qemu_wchar: u64,
}

impl Redirect {
    /// Host CPU seconds: the daemon's and, in QEMU's session, QEMU's.
    pub(crate) fn host_cpu_s(&self) -> f64 {
        self.daemon_cpu_s + self.qemu_cpu_s
    }
}

/// The uplinks measured.
pub(crate) const UPLINKS: [DemoUplink; 3] =
    [DemoUplink::Unix, DemoUplink::Spice, DemoUplink::QemuSpice];

/// Plays `file` over `uplink` with the binaries in `bin`.
pub(crate) fn measure(
    clip: &Clip,
    file: &Path,
    bin: &Path,
    uplink: DemoUplink,
) -> Result<Redirect> {
    let dir = tempdir::new("xtask-bench-redirect")?;
    let mut summary = Summary {
        input: file.display().to_string(),
        ..Summary::default()
    };
    demo::play(
        bin,
        dir.path(),
        file,
        (uplink, DemoPlayer::RedirPlay),
        None,
        &mut summary,
    )?;
    if !summary.bit_exact {
        bail!(
            "{} over {uplink:?} was not bit-exact: {}",
            clip.name,
            summary.to_json_line()
        );
    }
    Ok(Redirect {
        clip: clip.name,
        uplink: uplink.name(),
        seconds: f64::from(clip.seconds),
        daemon_cpu_s: summary.daemon_cpu_us as f64 / 1e6,
        player_cpu_s: summary.player_cpu_us as f64 / 1e6,
        wire_bytes: summary.wire_bytes,
        daemon_wchar: summary.daemon_wchar,
        payload_bytes: summary.payload_bytes,
        payload_bytes_copied: summary.payload_bytes_copied,
        bit_exact: summary.bit_exact,
        qemu_cpu_s: summary.qemu_cpu_us as f64 / 1e6,
        qemu_wchar: summary.qemu_wchar,
    })
}

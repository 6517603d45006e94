//! `--uplink qemu-spice`: the media in the VM's own Spice session. The
//! daemon listens on its Unix uplink; QEMU (the project's build, patch 0004)
//! shows its firmware screen over Spice with a password and relays the
//! session's media port to that uplink (`chardev-relay`,
//! docs/qemu-relay.md); `media-client --spice` is a client of QEMU's
//! session. QEMU's CPU and writes while the clip plays are what the relay
//! and QEMU's Spice server cost: the clip starts once the firmware has
//! settled on "No bootable device", and QEMU's idle CPU rate, measured
//! over one second before, is taken off.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mediaredir_proto::wire::SPICE_PORT_NAME;
use qemu_config::{FirmwareDesktop, MediaRelay};
use test_support::ChildGuard;

use super::{logs, wait_path};
use crate::bench::measure;
use crate::process;

/// QEMU carrying the media port.
pub(crate) struct QemuSession {
    qemu: ChildGuard,
    /// CPU seconds per second QEMU uses with no client.
    idle_cpu: f64,
    /// QEMU's Spice server (a Unix socket).
    pub(crate) spice: PathBuf,
    /// The session's password file.
    pub(crate) password: PathBuf,
}

/// QEMU's CPU (seconds) and bytes written, at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    at: Instant,
    cpu_s: f64,
    wchar: u64,
}

impl QemuSession {
    /// Starts QEMU in `dir`, its media port relayed to the daemon's Unix
    /// uplink `uplink`; returns once its Spice socket is there.
    pub(crate) fn start(dir: &Path, uplink: &Path) -> Result<QemuSession> {
        let qemu = crate::qemu::ensure()?;
        let (spice, qmp, password) = (
            dir.join("qemu-spice.sock"),
            dir.join("qemu-qmp.sock"),
            dir.join("qemu-spice-password"),
        );
        // QEMU's `secret` takes the whole file: no line end.
        std::fs::write(&password, "demo ticket").context("writing the Spice password")?;
        let mut desktop = FirmwareDesktop::new(spice.clone(), qmp.clone());
        desktop.spice.password_file = Some(password.clone());
        desktop.media_relay = Some(MediaRelay::new(SPICE_PORT_NAME, uplink));
        let mut cmd = Command::new(&qemu.binary);
        cmd.args(desktop.args())
            .stdin(Stdio::null())
            .stdout(logs::stdio())
            .stderr(logs::stdio());
        logs::line(&format!("demo: $ {}", process::display(&cmd)));
        let qemu = ChildGuard::spawn(&mut cmd).context("starting QEMU")?;
        wait_path(&spice, Duration::from_secs(30))?;
        // The firmware's boot is CPU too: wait until its screen settles.
        super::viewer::wait_desktop(&qmp, &dir.join("qemu-screendump.ppm"))?;
        let mut session = QemuSession {
            qemu,
            idle_cpu: 0.0,
            spice,
            password,
        };
        let before = session.usage()?;
        std::thread::sleep(Duration::from_secs(1));
        let after = session.usage()?;
        session.idle_cpu =
            (after.cpu_s - before.cpu_s) / after.at.duration_since(before.at).as_secs_f64();
        Ok(session)
    }

    /// `media-client`'s arguments for this session.
    pub(crate) fn client_args(&self) -> Vec<String> {
        vec![
            "--spice".into(),
            format!("unix:{}", self.spice.display()),
            "--password-file".into(),
            self.password.display().to_string(),
        ]
    }

    /// QEMU's CPU and writes so far.
    pub(crate) fn usage(&self) -> Result<Usage> {
        let pid = self.qemu.id();
        Ok(Usage {
            at: Instant::now(),
            cpu_s: measure::process_cpu_s(pid)?,
            wchar: measure::process_wchar(pid)?,
        })
    }

    /// CPU microseconds beyond QEMU's idle rate, and bytes written, from
    /// `before` until now.
    pub(crate) fn since(&self, before: Usage) -> Result<(u64, u64)> {
        let now = self.usage()?;
        let idle = self.idle_cpu * now.at.duration_since(before.at).as_secs_f64();
        let cpu_us = ((now.cpu_s - before.cpu_s - idle).max(0.0) * 1e6).round();
        // Whole microseconds of a few seconds' CPU: well inside u64.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let cpu_us = cpu_us as u64;
        Ok((cpu_us, now.wchar.saturating_sub(before.wchar)))
    }
}

//! Reaching the device: through a running broker (a real guest), or by
//! starting one in this process over vhost-user (a host test rig, where the
//! vhost-user transport plays QEMU's part).

use std::path::{Path, PathBuf};

use anyhow::Context;
use guest_driver_shim::broker::{BrokerOptions, BrokerThread};
use guest_driver_shim::player::MediaRedir;
use guest_driver_shim::{DriverOptions, MediaDevice, VhostUserOptions, VhostUserTransport};

/// An open device, and the broker this process runs for it, if any.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) redir: MediaRedir,
    /// Dropped after `redir` (declared later): the broker outlives the
    /// connection.
    _broker: Option<(BrokerThread, TempSocket)>,
}

/// A socket path in a private directory, removed on drop.
#[derive(Debug)]
struct TempSocket {
    dir: PathBuf,
}

impl Drop for TempSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Connects to the broker at `socket`.
pub(crate) fn through_broker(socket: &Path) -> anyhow::Result<Opened> {
    let redir = MediaRedir::open(socket).with_context(|| {
        format!(
            "no media-redirection device: connecting to the broker at {} (is mediaredir-broker running?)",
            socket.display()
        )
    })?;
    Ok(Opened {
        redir,
        _broker: None,
    })
}

/// Starts a broker in this process for the daemon at `vhost_user` and
/// connects to it.
pub(crate) fn over_vhost_user(vhost_user: &Path) -> anyhow::Result<Opened> {
    let dir = std::env::temp_dir().join(format!("redir-play-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let temp = TempSocket { dir };
    let socket = temp.dir.join("broker.sock");
    let path = vhost_user.to_path_buf();
    let broker = BrokerThread::spawn(&socket, BrokerOptions::default(), move || {
        let transport = VhostUserTransport::connect_new(&path, VhostUserOptions::default())?;
        Ok(MediaDevice::new(transport, DriverOptions::default())?)
    })
    .with_context(|| {
        format!(
            "no media-redirection device: connecting to {} (is vhost-device-media running?)",
            vhost_user.display()
        )
    })?;
    let redir = MediaRedir::open(&socket).context("connecting to the in-process broker")?;
    Ok(Opened {
        redir,
        _broker: Some((broker, temp)),
    })
}

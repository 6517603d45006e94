//! Reaching the device from a player program: through the guest's broker
//! (a real guest), or with a broker started in the player's own process
//! over vhost-user (a host test rig, where the vhost-user transport plays
//! QEMU's part). `redir-play`, `redir-call` and `redir-record` share this.

use std::path::{Path, PathBuf};

use super::{MediaRedir, PlayerError};
use crate::broker::{BrokerOptions, BrokerThread};
use crate::{DriverOptions, MediaDevice, VhostUserOptions, VhostUserTransport};

/// Where the device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A running broker's socket.
    Broker(PathBuf),
    /// The daemon's vhost-user socket, with a broker in this process.
    VhostUser(PathBuf),
}

/// An open device, and the broker this process runs for it, if any.
#[derive(Debug)]
pub struct Connection {
    /// The player's handle.
    pub redir: MediaRedir,
    /// Dropped after `redir` (declared later): the broker outlives the
    /// connection.
    _broker: Option<(BrokerThread, TempDir)>,
}

/// A private directory, removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Why the device could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The broker socket could not be reached.
    #[error(
        "no media-redirection device: connecting to the broker at {path} (is mediaredir-broker running?)"
    )]
    Broker {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: PlayerError,
    },
    /// The in-process broker could not reach the daemon.
    #[error("no media-redirection device: connecting to {path} (is vhost-device-media running?)")]
    VhostUser {
        /// The vhost-user socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::broker::BrokerError,
    },
    /// A private directory for the in-process broker's socket.
    #[error("creating {path}")]
    TempDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Connection {
    /// Opens the device at `target`.
    pub fn open(target: &Target) -> Result<Connection, ConnectError> {
        match target {
            Target::Broker(path) => Self::through_broker(path),
            Target::VhostUser(path) => Self::over_vhost_user(path),
        }
    }

    fn through_broker(path: &Path) -> Result<Connection, ConnectError> {
        let redir = MediaRedir::open(path).map_err(|source| ConnectError::Broker {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Connection {
            redir,
            _broker: None,
        })
    }

    fn over_vhost_user(vhost_user: &Path) -> Result<Connection, ConnectError> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mediaredir-player-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|source| ConnectError::TempDir {
            path: dir.clone(),
            source,
        })?;
        let temp = TempDir(dir);
        let socket = temp.0.join("broker.sock");
        let path = vhost_user.to_path_buf();
        let broker = BrokerThread::spawn(&socket, BrokerOptions::default(), move || {
            let transport = VhostUserTransport::connect_new(&path, VhostUserOptions::default())?;
            Ok(MediaDevice::new(transport, DriverOptions::default())?)
        })
        .map_err(|source| ConnectError::VhostUser {
            path: vhost_user.to_path_buf(),
            source,
        })?;
        let redir = MediaRedir::open(&socket).map_err(|source| ConnectError::Broker {
            path: socket.clone(),
            source,
        })?;
        Ok(Connection {
            redir,
            _broker: Some((broker, temp)),
        })
    }
}

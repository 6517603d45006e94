//! Reaching the device from a player program: through the guest's broker
//! (a real guest), or with a broker started in the player's own process:
//! over virtio-pci (a guest where this player is the only one), or over
//! vhost-user (a host test rig, where the vhost-user transport plays QEMU's
//! part). `redir-play`, `redir-call` and `redir-record` share this, with
//! the command-line options that pick the device ([`DeviceArgs`]).
//!
//! It is here, not in `mediaredir-player`, because the last two start the
//! driver: a player that only talks to a broker (the C API, the GStreamer
//! plugin) links `mediaredir-player` alone and so no driver code.

mod device_args;
mod tool_main;

use std::path::{Path, PathBuf};

pub use device_args::DeviceArgs;
use mediaredir_player::{MediaRedir, PlayerError};
pub use tool_main::{parse_checked, tool_main};

use crate::broker::{BrokerError, BrokerOptions, BrokerThread, ResetHandle};
use crate::transport::Transport;
use crate::{
    DriverOptions, MediaDevice, PciOptions, PciTransport, VhostUserOptions, VhostUserTransport,
};

/// Where the device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A running broker's socket.
    Broker(PathBuf),
    /// The daemon's vhost-user socket, with a broker in this process.
    VhostUser(PathBuf),
    /// The device's PCI function (`0000:00:03.0`, or `auto`: the first
    /// `1af4:1079`), bound to `uio_pci_generic`, with a broker in this
    /// process; `poll` polls the rings instead of waiting for interrupts.
    Pci {
        /// The function, or `auto`.
        bdf: String,
        /// Poll instead of interrupts.
        poll: bool,
    },
}

/// An open device, and the broker this process runs for it, if any.
#[derive(Debug)]
pub struct Connection {
    /// The player's handle.
    pub redir: MediaRedir,
    /// Dropped after `redir` (declared later): the broker outlives the
    /// connection.
    broker: Option<(BrokerThread, tempfile::TempDir)>,
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
        source: BrokerError,
    },
    /// The in-process broker could not open the PCI function.
    #[error(
        "no media-redirection device: PCI function {bdf} (bound to uio_pci_generic? hugepages reserved? root?)"
    )]
    Pci {
        /// The function asked for.
        bdf: String,
        /// Why.
        #[source]
        source: BrokerError,
    },
    /// A private directory for the in-process broker's socket.
    #[error("creating a private directory in {path}")]
    TempDir {
        /// Where it was to be made.
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
            Target::Pci { bdf, poll } => Self::over_pci(bdf, *poll),
        }
    }

    fn through_broker(path: &Path) -> Result<Connection, ConnectError> {
        let redir = MediaRedir::open(path).map_err(|source| ConnectError::Broker {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Connection {
            redir,
            broker: None,
        })
    }

    fn over_vhost_user(vhost_user: &Path) -> Result<Connection, ConnectError> {
        let path = vhost_user.to_path_buf();
        Self::in_process(
            move || {
                let transport =
                    VhostUserTransport::connect_new(&path, VhostUserOptions::default())?;
                Ok(MediaDevice::new(transport, DriverOptions::default())?)
            },
            |source| ConnectError::VhostUser {
                path: vhost_user.to_path_buf(),
                source,
            },
        )
    }

    fn over_pci(bdf: &str, poll: bool) -> Result<Connection, ConnectError> {
        let function = (bdf != "auto").then(|| bdf.to_owned());
        Self::in_process(
            move || {
                let options = PciOptions {
                    poll,
                    ..PciOptions::default()
                };
                let transport = PciTransport::open(function.as_deref(), options)?;
                if let Some(pages) = transport.dma().phys_pages() {
                    log::info!(
                        "{}: DMA memory: {} hugepages in {} physically contiguous runs",
                        transport.bdf(),
                        pages.pages.len(),
                        pages.runs()
                    );
                }
                Ok(MediaDevice::new(transport, DriverOptions::default())?)
            },
            |source| ConnectError::Pci {
                bdf: bdf.to_owned(),
                source,
            },
        )
    }

    /// Starts a broker in this process for the device `open` makes, on a
    /// socket in a private directory, and connects to it.
    fn in_process<T, F>(
        open: F,
        failed: impl FnOnce(BrokerError) -> ConnectError,
    ) -> Result<Connection, ConnectError>
    where
        T: Transport,
        F: FnOnce() -> Result<MediaDevice<T>, BrokerError> + Send + 'static,
    {
        // A new directory of random name, only ours (0700), removed on
        // drop: a name another user could guess and create first is not.
        let temp = tempfile::Builder::new()
            .prefix("mediaredir-player-")
            .tempdir()
            .map_err(|source| ConnectError::TempDir {
                path: std::env::temp_dir(),
                source,
            })?;
        let socket = temp.path().join("broker.sock");
        let broker =
            BrokerThread::spawn(&socket, BrokerOptions::default(), open).map_err(failed)?;
        let redir = MediaRedir::open(&socket).map_err(|source| ConnectError::Broker {
            path: socket.clone(),
            source,
        })?;
        Ok(Connection {
            redir,
            broker: Some((broker, temp)),
        })
    }

    /// A handle that resets the device, when this process runs the broker
    /// (a player of a shared broker cannot reset the device).
    pub fn reset_handle(&self) -> Option<ResetHandle> {
        self.broker.as_ref().map(|(b, _)| b.reset_handle())
    }
}

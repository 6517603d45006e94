//! The command-line options every guest tool uses to pick its device
//! (`--broker`, `--vhost-user`, `--pci`), so `redir-play`, `redir-record`
//! and `redir-call` take them alike.

use std::path::PathBuf;

use mediaredir_proto::broker::DEFAULT_SOCKET;

use super::Target;

/// Where the device is, as options (flatten into a tool's arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArgs {
    /// The broker's socket (in a guest where `mediaredir-broker` runs).
    #[arg(long, value_name = "SOCKET", default_value = DEFAULT_SOCKET, conflicts_with_all = ["vhost_user", "pci"])]
    pub broker: PathBuf,

    /// Reach the daemon's vhost-user socket directly, with a broker in this
    /// process (a host test rig; `vhost-user-mediaredir --socket-path`).
    #[arg(long, value_name = "SOCKET", conflicts_with = "pci")]
    pub vhost_user: Option<PathBuf>,

    /// Drive the device's PCI function (`0000:00:03.0`, or `auto`: the
    /// first 1af4:1079), bound to uio_pci_generic, with a broker in this
    /// process (a guest where this is the only player; needs root and
    /// hugepages).
    #[arg(long, value_name = "BDF")]
    pub pci: Option<String>,

    /// With `--pci`: poll the rings instead of waiting for interrupts.
    #[arg(long, requires = "pci", conflicts_with = "vhost_user")]
    pub pci_poll: bool,
}

impl DeviceArgs {
    /// The device these options name.
    pub fn target(&self) -> Target {
        match (&self.vhost_user, &self.pci) {
            (Some(socket), _) => Target::VhostUser(socket.clone()),
            (None, Some(bdf)) => Target::Pci {
                bdf: bdf.clone(),
                poll: self.pci_poll,
            },
            (None, None) => Target::Broker(self.broker.clone()),
        }
    }

    /// Whether the broker runs in this process (it can then be asked to
    /// reset the device).
    pub fn in_process(&self) -> bool {
        self.vhost_user.is_some() || self.pci.is_some()
    }
}

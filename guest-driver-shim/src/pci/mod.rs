//! The virtio PCI transport for a real guest: the function bound to
//! `uio_pci_generic`, its BARs mapped through sysfs, its virtio
//! capabilities parsed from the configuration space, DMA memory in
//! hugepages with physical addresses from `/proc/self/pagemap`, and
//! interrupts through the uio fd (or polling, when asked).
//!
//! - [`caps`]: virtio PCI capability parsing (pure, unit-tested on bytes);
//! - [`sysfs`]: finding, binding, configuration space, BAR mapping;
//! - [`uio`]: the INTx interrupt through `/dev/uioN`;
//! - [`transport`]: [`PciTransport`], the [`crate::Transport`] on top.
//!
//! The driver core ([`crate::MediaDevice`]) is the same as over vhost-user.

pub mod caps;
pub mod sysfs;
pub mod transport;
pub mod uio;

pub use transport::{PciOptions, PciTransport};

/// PCI vendor ID of virtio devices.
pub const VIRTIO_VENDOR: u16 = 0x1af4;
/// PCI device ID of the media-redirection device (0x1040 + virtio ID 57).
pub const MEDIA_REDIR_DEVICE: u16 = 0x1040 + 57;

/// Why a PCI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PciError {
    /// A system call on sysfs or the uio device failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// No usable function (absent, wrong driver, no uio device).
    #[error("PCI function: {0}")]
    NoDevice(String),
    /// A register access outside its BAR or misaligned.
    #[error("register access {offset:#x} ({size} bytes) is outside the BAR or misaligned")]
    BadAccess {
        /// Offset in the BAR.
        offset: usize,
        /// Access size.
        size: usize,
    },
    /// The virtio capabilities are missing or malformed.
    #[error("virtio capabilities: {0}")]
    Caps(#[from] caps::CapsError),
    /// The DMA memory could not be set up.
    #[error("DMA memory: {0}")]
    Dma(#[from] crate::dma::DmaError),
}

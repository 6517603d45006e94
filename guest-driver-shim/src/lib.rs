//! The guest side of the media-redirection device below the players: the
//! userspace virtio driver, the broker that owns the device, and the
//! transports it reaches the device through. Players do not link this
//! crate: they speak to the broker with `mediaredir-player`
//! ([`mediaredir_player::MediaRedir`]); only the tools that can start a
//! broker in their own process (`--pci`, `--vhost-user`, see [`connect`])
//! link both.
//!
//! The driver core:
//! - [`dma`]: DMA memory (guest-physical addresses plus a host mapping) and
//!   its allocator;
//! - [`virtqueue`]: split virtqueues from the driver's side, with EVENT_IDX,
//!   indirect descriptors and a raw interface for conformance tests;
//! - [`transport`]: the [`transport::Transport`] trait the core runs on;
//! - [`vhost_user`]: a vhost-user transport that plays QEMU's part, for tests
//!   on the host (memfd guest RAM shared with the daemon);
//! - [`driver`]: [`driver::MediaDevice`], the init sequence and the device's
//!   control, data and event queues.
//!
//! - [`pci`]: the virtio PCI transport of a real guest (`uio_pci_generic`,
//!   sysfs BARs, hugepage DMA memory with physical addresses).
//!
//! On top of the core:
//! - [`broker`]: the broker serving players over a Unix socket (spec §9),
//!   as the `mediaredir-broker` binary or a [`broker::BrokerThread`];
//! - [`connect`]: a tool's choice of device (`--broker`, `--vhost-user`,
//!   `--pci`), starting a broker in its own process for the last two.

pub mod broker;
pub mod connect;
pub mod dma;
pub mod driver;
pub mod pci;
pub mod transport;
pub mod vhost_user;
pub mod virtqueue;

pub use dma::{DmaBuffer, DmaError, DmaMemory};
pub use driver::{DataCompletion, DataToken, DriverError, DriverOptions, MediaDevice, RawResponse};
pub use pci::{PciOptions, PciTransport};
pub use transport::{Transport, TransportError};
pub use vhost_user::{VhostUserOptions, VhostUserTransport};
pub use virtqueue::{QueueError, QueueLayout, RawDesc, UsedElem, Virtqueue};

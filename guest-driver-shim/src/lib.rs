//! The guest side of the media-redirection device.
//!
//! This crate holds (so far) the userspace virtio driver core:
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
//! The broker serving players over a Unix socket and the V4L2-style API come on
//! top of the same core.

pub mod broker;
pub mod dma;
pub mod driver;
pub mod pci;
pub mod player;
pub mod seqpacket;
pub mod transport;
pub mod vhost_user;
pub mod virtqueue;

pub use dma::{DmaBuffer, DmaError, DmaMemory};
pub use driver::{DataCompletion, DataToken, DriverError, DriverOptions, MediaDevice, RawResponse};
pub use pci::{PciOptions, PciTransport};
pub use transport::{Transport, TransportError};
pub use vhost_user::{VhostUserOptions, VhostUserTransport};
pub use virtqueue::{QueueError, QueueLayout, RawDesc, UsedElem, Virtqueue};

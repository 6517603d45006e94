//! The transport: how the driver core reaches the device.
//!
//! The driver core (virtqueues, init sequence, requests) is the same on a
//! host test rig (vhost-user, this crate playing QEMU) and in a real guest
//! (virtio-pci through `uio_pci_generic`). Everything that differs between
//! them sits behind [`Transport`]: device status, feature bits, the
//! configuration space, queue addresses, notifications in both directions,
//! and the DMA memory the device can reach. The trait follows the virtio-pci
//! common configuration so that a PCI transport is a direct mapping.

use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

use crate::dma::{DmaError, DmaMemory};
use crate::virtqueue::QueueLayout;

/// Device status bits (virtio 1.x, "Device Status Field").
pub mod status {
    /// The guest OS found the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The guest OS knows how to drive the device.
    pub const DRIVER: u8 = 2;
    /// The driver is set up and ready to drive the device.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u8 = 8;
    /// The device hit an error it cannot recover from without a reset.
    pub const DEVICE_NEEDS_RESET: u8 = 64;
    /// The driver gave up on the device.
    pub const FAILED: u8 = 128;
}

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A vhost-user message failed (the daemon refused it, or the
    /// connection broke).
    #[error("vhost-user {op}: {source}")]
    VhostUser {
        /// Which message.
        op: &'static str,
        /// The error.
        #[source]
        source: vhost::Error,
    },
    /// The device went away (connection closed, function removed).
    #[error("device disconnected")]
    Disconnected,
    /// The device did not accept the driver's features (FEATURES_OK not set).
    #[error("the device rejected driver features {0:#x}")]
    FeaturesRejected(u64),
    /// A queue index the device does not have.
    #[error("queue {0} does not exist")]
    NoSuchQueue(u16),
    /// A queue size or address the transport cannot use.
    #[error("queue {queue}: {reason}")]
    BadQueue {
        /// Queue index.
        queue: u16,
        /// What is wrong.
        reason: &'static str,
    },
    /// A configuration space access outside the space, or refused.
    #[error("configuration space access {offset}+{len}: {reason}")]
    Config {
        /// Offset.
        offset: u32,
        /// Length.
        len: usize,
        /// What went wrong.
        reason: String,
    },
    /// The device does not offer something the transport needs.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// The operation is not legal in the current state.
    #[error("bad state: {0}")]
    BadState(&'static str),
    /// DMA memory problem.
    #[error("DMA memory: {0}")]
    Dma(#[from] DmaError),
}

/// A way to reach one virtio device. Calls follow the virtio initialisation
/// order: [`reset`](Transport::reset), [`set_status`](Transport::set_status)
/// (ACKNOWLEDGE, DRIVER), [`device_features`](Transport::device_features),
/// [`set_driver_features`](Transport::set_driver_features) (FEATURES_OK),
/// configuration and queue set-up, [`activate`](Transport::activate)
/// (DRIVER_OK); then notifications both ways.
pub trait Transport {
    /// The DMA memory the device can reach; queues and buffers live there.
    fn dma(&self) -> &Arc<DmaMemory>;

    /// Resets the device (status 0): it stops using every queue and forgets
    /// the negotiated features. Buffers in flight may be dropped afterwards.
    fn reset(&mut self) -> Result<(), TransportError>;

    /// Sets status bits (ACKNOWLEDGE, DRIVER, FAILED). FEATURES_OK and
    /// DRIVER_OK have their own methods.
    fn set_status(&mut self, bits: u8) -> Result<(), TransportError>;

    /// Feature bits the device offers.
    fn device_features(&mut self) -> Result<u64, TransportError>;

    /// Writes the driver's feature bits and sets FEATURES_OK;
    /// [`TransportError::FeaturesRejected`] when the device does not keep it.
    fn set_driver_features(&mut self, features: u64) -> Result<(), TransportError>;

    /// Reads `buf.len()` configuration space bytes at `offset`.
    fn read_config(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), TransportError>;

    /// Number of queues the device has.
    fn num_queues(&mut self) -> Result<u16, TransportError>;

    /// Largest size queue `queue` may have.
    fn queue_max_size(&mut self, queue: u16) -> Result<u16, TransportError>;

    /// Tells the device where queue `queue` lives (guest-physical addresses
    /// inside [`Transport::dma`]) and enables it.
    fn setup_queue(&mut self, queue: u16, layout: &QueueLayout) -> Result<(), TransportError>;

    /// Sets DRIVER_OK: the device may start using the queues.
    fn activate(&mut self) -> Result<(), TransportError>;

    /// Notifies the device that queue `queue` has new available buffers.
    fn notify(&mut self, queue: u16) -> Result<(), TransportError>;

    /// Waits up to `timeout` for a used-buffer notification on `queue`.
    /// Returns `true` when one arrived (or may have: spurious wake-ups are
    /// allowed), `false` on timeout. Consumes the notification.
    fn wait_used(&mut self, queue: u16, timeout: Duration) -> Result<bool, TransportError>;

    /// A file descriptor that becomes readable on a used-buffer notification
    /// of `queue`, for callers that poll several sources; read it (8 bytes)
    /// or call [`Transport::wait_used`] with a zero timeout to consume it.
    fn used_fd(&self, _queue: u16) -> Option<BorrowedFd<'_>> {
        None
    }

    /// Whether a configuration change was announced since the last call.
    fn config_changed(&mut self) -> Result<bool, TransportError> {
        Ok(false)
    }

    /// Allocates `size` bytes (rounded up to the transport's page size) of
    /// new DMA memory in a file of its own, reachable by the device until
    /// [`Transport::release_memory`]. A broker hands such memory to one
    /// player as a buffer pool (spec 9.2, `POOL_CREATE`): the player maps
    /// the file and fills buffers in place. The memory survives a device
    /// reset.
    fn new_memory(&mut self, _size: usize) -> Result<Arc<DmaMemory>, TransportError> {
        Err(TransportError::Unsupported("extra DMA memory"))
    }

    /// Withdraws memory made by [`Transport::new_memory`]. The caller must
    /// know that the device holds no buffer in it any more.
    fn release_memory(&mut self, _memory: &Arc<DmaMemory>) -> Result<(), TransportError> {
        Err(TransportError::Unsupported("extra DMA memory"))
    }
}

/// Takes `memory` out of `made`, a transport's list of the memory it made
/// with [`Transport::new_memory`] (what [`Transport::release_memory`] does
/// first); [`TransportError::BadState`] when it is not there.
pub(crate) fn forget_memory(
    made: &mut Vec<Arc<DmaMemory>>,
    memory: &Arc<DmaMemory>,
) -> Result<(), TransportError> {
    let index = made
        .iter()
        .position(|m| Arc::ptr_eq(m, memory))
        .ok_or(TransportError::BadState("release of unknown memory"))?;
    made.remove(index);
    Ok(())
}

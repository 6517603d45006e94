//! Why a driver operation failed: [`DriverError`], which wraps transport,
//! queue and DMA failures and names what went wrong with the device
//! (timeouts, full queues, malformed answers, failed negotiation).

use std::time::Duration;

use mediaredir_proto::ProtoError;

use crate::dma::DmaError;
use crate::transport::TransportError;
use crate::virtqueue::QueueError;

/// Why a driver operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The transport failed (or the device went away).
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// A virtqueue operation failed.
    #[error("virtqueue: {0}")]
    Queue(QueueError),
    /// DMA memory problem (e.g. exhausted).
    #[error("DMA memory: {0}")]
    Dma(#[from] DmaError),
    /// The device did not answer in time.
    #[error("no answer on queue {queue} within {after:?}")]
    Timeout {
        /// Queue waited on.
        queue: u16,
        /// How long.
        after: Duration,
    },
    /// No free descriptors on a queue.
    #[error("queue {0} is full")]
    QueueFull(u16),
    /// The device answered with data the spec does not allow.
    #[error("the device answered malformed data: {0}")]
    Malformed(#[from] ProtoError),
    /// Feature negotiation failed.
    #[error("feature negotiation failed: {0}")]
    Features(String),
    /// The device has fewer queues than its configuration needs.
    #[error("the device has {available} queues, its configuration needs {needed}")]
    QueueCount {
        /// Queues needed (3 + num_txqs).
        needed: u32,
        /// Queues the transport reports.
        available: u16,
    },
    /// A playback queue the device does not have.
    #[error("no playback queue {0}")]
    NoSuchTxq(u16),
    /// A queue index the device does not have.
    #[error("no queue {0}")]
    NoSuchQueue(u16),
    /// The device is not initialised (a reset or init failed).
    #[error("the device is not initialised")]
    NotReady,
}

impl From<QueueError> for DriverError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Dma(e) => DriverError::Dma(e),
            other => DriverError::Queue(other),
        }
    }
}

//! The guest broker (spec §9): one process owns the device and serves the
//! players over a `SOCK_SEQPACKET` socket.
//!
//! A userspace driver of a PCI function can have only one owner: the rings
//! and buffers live in its memory. The broker is that owner. Players are
//! its clients: they send control requests (forwarded to the controlq with
//! the device generation filled in, restricted to objects they created),
//! get buffer pools as memfds of the broker's DMA memory that they map and
//! fill in place, queue buffers from those pools (the broker puts
//! descriptors pointing into the pool on the stream's txq: no copy in the
//! guest), and receive the events of their own objects. When a player
//! exits, the broker destroys what it created and frees its pools once the
//! device holds none of their buffers.
//!
//! [`mediaredir_player`] is the client side of this protocol.

mod client;
mod ownership;
mod server;
mod thread;

use std::time::Duration;

pub use server::Broker;
pub use thread::{BrokerThread, ResetHandle};

use crate::driver::DriverError;
use crate::transport::TransportError;

/// Limits of one broker (spec 9.3).
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Connections served at once; more are closed at accept.
    pub max_clients: usize,
    /// Pools per client.
    pub max_pools_per_client: usize,
    /// Pool bytes per client.
    pub max_pool_bytes_per_client: u64,
    /// How long a device reset is retried (a restarting host daemon reads
    /// back an empty configuration until it is up again) before the broker
    /// gives up.
    pub reset_retry: Duration,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            max_clients: 64,
            max_pools_per_client: 16,
            max_pool_bytes_per_client: 256 << 20,
            reset_retry: Duration::from_secs(60),
        }
    }
}

/// How often [`Broker::run`] checks its stop flag.
pub const DEFAULT_TICK: Duration = Duration::from_millis(200);

/// Why the broker stopped.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The device failed (it is then unusable until restarted).
    #[error("the device failed")]
    Device(#[from] DriverError),
    /// The transport failed.
    #[error("the transport failed")]
    Transport(#[from] TransportError),
    /// The PCI function could not be opened.
    #[error("the PCI function")]
    Pci(#[from] crate::pci::PciError),
    /// A socket operation failed.
    #[error("{op}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

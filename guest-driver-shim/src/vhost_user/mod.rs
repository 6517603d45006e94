//! vhost-user transport: this process plays QEMU's part.
//!
//! On a host test rig there is no VM: the "guest RAM" is a memfd
//! ([`DmaMemory`]) that this process maps and hands to the daemon with
//! `SET_MEM_TABLE`, exactly as QEMU does with `memory-backend-memfd,share=on`.
//! The driver core then runs unchanged on top, and the daemon cannot tell the
//! difference from a real guest behind QEMU.
//!
//! Message sequence (QEMU's `vhost_dev_init` / `vhost_dev_start` /
//! `vhost_dev_stop`): on connect `SET_OWNER`, `GET_FEATURES`,
//! `GET_PROTOCOL_FEATURES`/`SET_PROTOCOL_FEATURES` (MQ, REPLY_ACK, CONFIG,
//! BACKEND_REQ when offered), `GET_QUEUE_NUM`, `SET_BACKEND_REQ_FD`; at
//! FEATURES_OK `SET_FEATURES` (with `VHOST_USER_F_PROTOCOL_FEATURES`); at
//! DRIVER_OK `SET_MEM_TABLE` and per queue `SET_VRING_NUM`,
//! `SET_VRING_BASE 0`, `SET_VRING_ADDR` (addresses in this process's
//! mapping, which the daemon translates through the memory table's
//! `userspace_addr`), `SET_VRING_KICK`, `SET_VRING_CALL`, then
//! `SET_VRING_ENABLE 1`; at reset `SET_VRING_ENABLE 0` and `GET_VRING_BASE`
//! (the daemon stops the rings). Kicks and calls are eventfds.
//!
//! Configuration-change notifications arrive on the backend request channel
//! (`VHOST_USER_BACKEND_CONFIG_CHANGE_MSG`), served by a small thread.
//!
//! One file per job: `connect` (connecting, the feature handshake, and
//! reconnecting after a daemon restart), `memory` (the memory table:
//! guest RAM and extra memories), `vrings` (per-queue setup, kicks and
//! calls, stopping the rings), `backend_req` (the backend request channel),
//! `poll` (waiting on fds). This file holds the settings, the transport
//! and its [`Transport`] implementation, which dispatches to them.

use std::fmt;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vhost::VhostBackend;
use vhost::vhost_user::message::{VhostUserConfigFlags, VhostUserProtocolFeatures};
use vhost::vhost_user::{Frontend, VhostUserFrontend};

use crate::dma::{DEFAULT_DMA_SIZE, DmaMemory};
use crate::transport::{Transport, TransportError, status};
use crate::virtqueue::QueueLayout;

mod backend_req;
mod connect;
mod memory;
mod poll;
mod vrings;

use backend_req::ConfigWatcher;
use vrings::QueueState;

/// `VHOST_USER_F_PROTOCOL_FEATURES` (a vhost-user bit, not a virtio one).
pub const VHOST_USER_F_PROTOCOL_FEATURES: u64 = 1 << 30;

/// Settings of a vhost-user connection.
#[derive(Debug, Clone)]
pub struct VhostUserOptions {
    /// Largest queue size the driver may use (the daemon's own limit still
    /// applies: it refuses larger `SET_VRING_NUM`s).
    pub max_queue_size: u16,
    /// Queue count assumed when the daemon does not offer the MQ protocol
    /// feature (and so cannot be asked).
    pub default_num_queues: u16,
    /// How long to retry connecting while the socket does not exist yet or
    /// refuses connections (daemon starting).
    pub connect_timeout: Duration,
    /// Size of the memfd that [`VhostUserTransport::connect_new`] creates.
    pub memory_size: usize,
    /// Guest-physical base of that memfd.
    pub memory_base: u64,
}

impl Default for VhostUserOptions {
    fn default() -> Self {
        VhostUserOptions {
            max_queue_size: 256,
            default_num_queues: 7,
            connect_timeout: Duration::from_secs(5),
            memory_size: DEFAULT_DMA_SIZE,
            memory_base: 0,
        }
    }
}

fn vu(op: &'static str) -> impl FnOnce(vhost::Error) -> TransportError {
    move |source| TransportError::VhostUser { op, source }
}

/// The vhost-user frontend transport.
pub struct VhostUserTransport {
    path: PathBuf,
    options: VhostUserOptions,
    mem: Arc<DmaMemory>,
    /// Memory made by [`Transport::new_memory`], in the device's table too.
    extra: Vec<Arc<DmaMemory>>,
    /// Where the next extra memory goes (addresses are never reused).
    next_extra: u64,
    frontend: Frontend,
    device_features: u64,
    protocol_features: VhostUserProtocolFeatures,
    num_queues: u16,
    driver_features: Option<u64>,
    status: u8,
    queues: Vec<QueueState>,
    // Declared last: dropped after the connection closes.
    watcher: Option<ConfigWatcher>,
}

impl fmt::Debug for VhostUserTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VhostUserTransport")
            .field("path", &self.path)
            .field(
                "device_features",
                &format_args!("{:#x}", self.device_features),
            )
            .field("protocol_features", &self.protocol_features)
            .field("num_queues", &self.num_queues)
            .field("driver_features", &self.driver_features)
            .field("status", &self.status)
            .field("queues", &self.queues)
            .finish_non_exhaustive()
    }
}

impl VhostUserTransport {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Protocol features in use.
    pub fn protocol_features(&self) -> VhostUserProtocolFeatures {
        self.protocol_features
    }

    /// Whether `VHOST_USER_F_PROTOCOL_FEATURES` is in use (rings then need
    /// `SET_VRING_ENABLE`).
    fn uses_protocol_features(&self) -> bool {
        self.device_features & VHOST_USER_F_PROTOCOL_FEATURES != 0
    }
}

impl Transport for VhostUserTransport {
    fn dma(&self) -> &Arc<DmaMemory> {
        &self.mem
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        let stopped = self.stop_rings();
        self.driver_features = None;
        self.status = 0;
        stopped
    }

    fn set_status(&mut self, bits: u8) -> Result<(), TransportError> {
        if bits & status::FAILED != 0 {
            log::warn!("vhost-user: driver marked the device FAILED");
        }
        self.status |= bits & !(status::FEATURES_OK | status::DRIVER_OK);
        Ok(())
    }

    fn device_features(&mut self) -> Result<u64, TransportError> {
        Ok(self.device_features & !VHOST_USER_F_PROTOCOL_FEATURES)
    }

    fn set_driver_features(&mut self, features: u64) -> Result<(), TransportError> {
        let offered = self.device_features & !VHOST_USER_F_PROTOCOL_FEATURES;
        if features & !offered != 0 || features & VHOST_USER_F_PROTOCOL_FEATURES != 0 {
            return Err(TransportError::FeaturesRejected(features));
        }
        let wire = features | (self.device_features & VHOST_USER_F_PROTOCOL_FEATURES);
        self.frontend.set_features(wire).map_err(|e| {
            log::warn!("vhost-user: SET_FEATURES {wire:#x} refused: {e}");
            TransportError::FeaturesRejected(features)
        })?;
        self.driver_features = Some(features);
        self.status |= status::FEATURES_OK;
        Ok(())
    }

    fn read_config(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), TransportError> {
        let config_error = |reason: String| TransportError::Config {
            offset,
            len: buf.len(),
            reason,
        };
        if !self
            .protocol_features
            .contains(VhostUserProtocolFeatures::CONFIG)
        {
            return Err(TransportError::Unsupported(
                "the daemon does not offer VHOST_USER_PROTOCOL_F_CONFIG",
            ));
        }
        let size = u32::try_from(buf.len()).map_err(|_| config_error("too long".into()))?;
        let zeros = vec![0u8; buf.len()];
        let (_, payload) = self
            .frontend
            .get_config(offset, size, VhostUserConfigFlags::empty(), &zeros)
            .map_err(|e| config_error(e.to_string()))?;
        if payload.len() != buf.len() {
            return Err(config_error(format!(
                "the daemon returned {} bytes",
                payload.len()
            )));
        }
        buf.copy_from_slice(&payload);
        Ok(())
    }

    fn num_queues(&mut self) -> Result<u16, TransportError> {
        Ok(self.num_queues)
    }

    fn queue_max_size(&mut self, queue: u16) -> Result<u16, TransportError> {
        self.queue(queue)?;
        Ok(self.options.max_queue_size)
    }

    fn setup_queue(&mut self, queue: u16, layout: &QueueLayout) -> Result<(), TransportError> {
        self.set_queue_layout(queue, layout)
    }

    fn activate(&mut self) -> Result<(), TransportError> {
        if self.driver_features.is_none() {
            return Err(TransportError::BadState("DRIVER_OK before FEATURES_OK"));
        }
        self.send_memory_table()?;
        let started = self.start_rings()?;
        self.status |= status::DRIVER_OK;
        log::debug!("vhost-user: DRIVER_OK with {started} queues");
        Ok(())
    }

    fn notify(&mut self, queue: u16) -> Result<(), TransportError> {
        self.kick(queue)
    }

    fn wait_used(&mut self, queue: u16, timeout: Duration) -> Result<bool, TransportError> {
        self.wait_call(queue, timeout)
    }

    fn used_fd(&self, queue: u16) -> Option<BorrowedFd<'_>> {
        self.call_fd(queue)
    }

    fn new_memory(&mut self, size: usize) -> Result<Arc<DmaMemory>, TransportError> {
        self.add_extra_memory(size)
    }

    fn release_memory(&mut self, memory: &Arc<DmaMemory>) -> Result<(), TransportError> {
        self.remove_extra_memory(memory)
    }

    fn config_changed(&mut self) -> Result<bool, TransportError> {
        Ok(self
            .watcher
            .as_ref()
            .is_some_and(ConfigWatcher::take_changed))
    }
}

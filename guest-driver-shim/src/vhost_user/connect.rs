//! Connecting to the daemon and the vhost-user handshake QEMU does in
//! `vhost_dev_init` (`SET_OWNER`, `GET_FEATURES`, the protocol features,
//! `GET_QUEUE_NUM`, `SET_BACKEND_REQ_FD`); connecting again after the
//! daemon restarted, either as a new device or resuming the rings where
//! guest memory says they are, as QEMU's `reconnect-ms` does.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vhost::VhostBackend;
use vhost::vhost_user::message::{VhostUserHeaderFlag, VhostUserProtocolFeatures};
use vhost::vhost_user::{Frontend, VhostUserFrontend};

use super::memory::EXTRA_MEMORY_BASE;
use super::{
    ConfigWatcher, QueueState, VHOST_USER_F_PROTOCOL_FEATURES, VhostUserOptions,
    VhostUserTransport, vu,
};
use crate::dma::DmaMemory;
use crate::transport::{Transport, TransportError};
use crate::virtqueue::QueueLayout;

/// Protocol features this frontend uses when the daemon offers them.
fn wanted_protocol_features() -> VhostUserProtocolFeatures {
    VhostUserProtocolFeatures::MQ
        | VhostUserProtocolFeatures::REPLY_ACK
        | VhostUserProtocolFeatures::CONFIG
        | VhostUserProtocolFeatures::BACKEND_REQ
        | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
}

/// Connects, retrying while the daemon is not listening yet.
fn connect_with_retry(
    path: &Path,
    max_queues: u16,
    timeout: Duration,
) -> Result<Frontend, TransportError> {
    let deadline = Instant::now() + timeout;
    loop {
        match Frontend::connect(path, u64::from(max_queues)) {
            Ok(frontend) => return Ok(frontend),
            Err(e) if Instant::now() < deadline => {
                log::debug!("vhost-user: connect {}: {e}; retrying", path.display());
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(TransportError::VhostUser {
                    op: "connect",
                    source,
                });
            }
        }
    }
}

impl VhostUserTransport {
    /// Connects to the daemon at `path` with a new memfd of
    /// `options.memory_size` bytes as guest RAM.
    pub fn connect_new(
        path: impl AsRef<Path>,
        options: VhostUserOptions,
    ) -> Result<VhostUserTransport, TransportError> {
        let mem = DmaMemory::new_memfd(options.memory_size, options.memory_base)?;
        Self::connect(path, mem, options)
    }

    /// Connects to the daemon at `path` with existing guest RAM (which must
    /// be file-backed), e.g. the memory of a transport whose daemon restarted.
    pub fn connect(
        path: impl AsRef<Path>,
        mem: Arc<DmaMemory>,
        options: VhostUserOptions,
    ) -> Result<VhostUserTransport, TransportError> {
        if mem.raw_fd().is_none() {
            return Err(TransportError::Unsupported(
                "vhost-user needs file-backed (memfd) DMA memory",
            ));
        }
        let path = path.as_ref().to_path_buf();
        let frontend =
            connect_with_retry(&path, options.default_num_queues, options.connect_timeout)?;
        let mut transport = VhostUserTransport {
            path,
            mem,
            extra: Vec::new(),
            next_extra: EXTRA_MEMORY_BASE,
            frontend,
            device_features: 0,
            protocol_features: VhostUserProtocolFeatures::empty(),
            num_queues: options.default_num_queues,
            driver_features: None,
            status: 0,
            queues: Vec::new(),
            watcher: None,
            options,
        };
        transport.handshake()?;
        Ok(transport)
    }

    /// Connects again to the same socket path with the same guest RAM (after
    /// the daemon restarted). Every queue is forgotten: the driver must run
    /// its initialisation again.
    pub fn reconnect(&mut self) -> Result<(), TransportError> {
        log::info!("vhost-user: reconnecting to {}", self.path.display());
        self.watcher = None;
        self.queues.clear();
        self.driver_features = None;
        self.status = 0;
        self.frontend = connect_with_retry(
            &self.path,
            self.options.default_num_queues,
            self.options.connect_timeout,
        )?;
        self.handshake()
    }

    /// Does what QEMU does when a restarted daemon accepts its reconnection
    /// (chardev `reconnect-ms`): the guest is not told, its rings stay where
    /// they are, and each queue resumes with its last available index set to
    /// the used index found in guest memory, so chains the old daemon took
    /// but never completed are delivered again. The driver's own state is
    /// untouched; the device is expected to answer those chains `STALE`.
    pub fn resume_after_backend_restart(&mut self) -> Result<(), TransportError> {
        let features = self
            .driver_features
            .ok_or(TransportError::BadState("resume before FEATURES_OK"))?;
        let layouts: Vec<(u16, QueueLayout)> = self
            .queues
            .iter()
            .enumerate()
            .filter(|(_, q)| q.started)
            .filter_map(|(i, q)| Some((u16::try_from(i).ok()?, q.layout?)))
            .collect();
        self.watcher = None;
        self.frontend = connect_with_retry(
            &self.path,
            self.options.default_num_queues,
            self.options.connect_timeout,
        )?;
        self.handshake()?;
        self.set_driver_features(features)?;
        self.send_memory_table()?;
        for &(index, layout) in &layouts {
            self.queues[usize::from(index)].layout = Some(layout);
            let used_idx: u16 = self
                .mem
                .load(layout.used + 2, std::sync::atomic::Ordering::Acquire)
                .map_err(|_| TransportError::BadQueue {
                    queue: index,
                    reason: "used ring unreadable",
                })?;
            self.start_queue(index, layout, used_idx)?;
        }
        if self.uses_protocol_features() {
            for &(index, _) in &layouts {
                self.frontend
                    .set_vring_enable(usize::from(index), true)
                    .map_err(vu("SET_VRING_ENABLE 1"))?;
            }
        }
        log::info!(
            "vhost-user: resumed {} queues on a restarted daemon",
            layouts.len()
        );
        Ok(())
    }

    fn handshake(&mut self) -> Result<(), TransportError> {
        self.frontend.set_owner().map_err(vu("SET_OWNER"))?;
        self.device_features = self.frontend.get_features().map_err(vu("GET_FEATURES"))?;
        self.protocol_features = VhostUserProtocolFeatures::empty();
        self.num_queues = self.options.default_num_queues;
        if self.device_features & VHOST_USER_F_PROTOCOL_FEATURES != 0 {
            let offered = self
                .frontend
                .get_protocol_features()
                .map_err(vu("GET_PROTOCOL_FEATURES"))?;
            let acked = offered & wanted_protocol_features();
            self.frontend
                .set_protocol_features(acked)
                .map_err(vu("SET_PROTOCOL_FEATURES"))?;
            self.protocol_features = acked;
            if acked.contains(VhostUserProtocolFeatures::REPLY_ACK) {
                // Every request then waits for the daemon's verdict, so a
                // refused message fails here rather than silently.
                self.frontend.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
            }
            if acked.contains(VhostUserProtocolFeatures::MQ) {
                let n = self.frontend.get_queue_num().map_err(vu("GET_QUEUE_NUM"))?;
                self.num_queues = u16::try_from(n).unwrap_or(u16::MAX);
            }
            if acked.contains(VhostUserProtocolFeatures::BACKEND_REQ) {
                let reply_ack = acked.contains(VhostUserProtocolFeatures::REPLY_ACK);
                self.watcher = Some(ConfigWatcher::start(&mut self.frontend, reply_ack)?);
            }
        }
        log::info!(
            "vhost-user: connected to {}: features {:#x}, protocol features {:?}, {} queues",
            self.path.display(),
            self.device_features,
            self.protocol_features,
            self.num_queues
        );
        self.queues = (0..self.num_queues)
            .map(|_| QueueState::default())
            .collect();
        Ok(())
    }
}

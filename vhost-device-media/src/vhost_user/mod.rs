//! The vhost-user adapter: the `VhostUserBackend` implementation QEMU
//! talks to, and serving one frontend connection.
//!
//! It only adapts vhost-user to the device core: features and configuration
//! space from the spec, queue events to [`crate::queues`] (each vring and
//! QEMU's guest memory wrapped as the queue layer's
//! [`Virtqueue`](crate::queues::Virtqueue), `vring`), ring stops to device
//! resets. Everything the device decides lives in [`crate::model`]. This
//! module and its `vring` are the only ones that name vhost-user-backend,
//! virtio-queue's ring or `GuestMemoryMmap`.

mod vring;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::{io, result};

use mediaredir_proto::device::{CAPQ, CONTROLQ, EVENTQ, TXQ_BASE, queue_count, transport};
use vhost::vhost_user::Listener;
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VhostUserDaemon, VringRwLock};
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    EventConsumer, EventFlag, EventNotifier, new_event_consumer_and_notifier,
};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use crate::core::DeviceCore;
use crate::guest_buffer::Waker;
use crate::limits::Limits;
use crate::queues::{self, CapqSink, EventqSink, QueueContext, Virtqueue};
pub use vring::VhostQueue;

/// Wakes the backend's epoll thread when credit returns.
#[derive(Debug)]
pub struct EventFdWaker(EventFd);

impl Waker for EventFdWaker {
    fn wake(&self) {
        if let Err(err) = self.0.write(1) {
            log::error!("cannot wake the queue thread: {err}");
        }
    }
}

/// The media-redirection device as a vhost-user backend.
pub struct MediaBackend {
    core: Arc<DeviceCore>,
    limits: Limits,
    mem: RwLock<GuestMemoryAtomic<GuestMemoryMmap>>,
    acked_features: AtomicU64,
    event_idx: AtomicBool,
    waker: Arc<EventFdWaker>,
    /// Per queue: whether completions may still go to it (replaced on stop).
    running: Mutex<Vec<Arc<AtomicBool>>>,
}

impl std::fmt::Debug for MediaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaBackend")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl MediaBackend {
    /// A backend serving `core` with `limits`.
    pub fn new(core: Arc<DeviceCore>, limits: Limits) -> io::Result<MediaBackend> {
        let queues = queue_count(limits.device.num_txqs) as usize;
        Ok(MediaBackend {
            core,
            limits,
            mem: RwLock::new(GuestMemoryAtomic::new(GuestMemoryMmap::new())),
            acked_features: AtomicU64::new(0),
            event_idx: AtomicBool::new(false),
            waker: Arc::new(EventFdWaker(EventFd::new(EFD_NONBLOCK)?)),
            running: Mutex::new(
                (0..queues)
                    .map(|_| Arc::new(AtomicBool::new(true)))
                    .collect(),
            ),
        })
    }

    /// The device-event id of the credit waker (registered by the daemon
    /// with the epoll handler).
    pub fn wake_event_id(&self) -> u64 {
        // Ids 0..=num_queues belong to the vrings and the exit event.
        u64::from(queue_count(self.limits.device.num_txqs)) + 1
    }

    /// The fd of the credit waker.
    pub fn wake_fd(&self) -> &EventFd {
        &self.waker.0
    }

    fn running(&self, queue: usize) -> Arc<AtomicBool> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running
            .get(queue)
            .cloned()
            .unwrap_or_else(|| Arc::new(AtomicBool::new(false)))
    }

    fn negotiated(&self, bit: u32) -> bool {
        self.acked_features.load(Ordering::Relaxed) & (1 << bit) != 0
    }

    /// Queue `index` of `vrings` as the queue layer sees it.
    fn queue(&self, vrings: &[VringRwLock], index: usize) -> Option<Arc<dyn Virtqueue>> {
        let vring = vrings.get(index)?;
        let mem = self.mem.read().unwrap_or_else(|p| p.into_inner()).clone();
        Some(Arc::new(VhostQueue::new(
            vring.clone(),
            mem,
            self.running(index),
        )))
    }

    fn with_context<R>(&self, f: impl FnOnce(&QueueContext<'_>) -> R) -> R {
        let ctx = QueueContext {
            core: &self.core,
            indirect: self.negotiated(transport::F_INDIRECT_DESC),
            event_idx: self.event_idx.load(Ordering::Relaxed),
            max_payload: self.limits.device.max_buffer_bytes,
        };
        f(&ctx)
    }

    fn process_controlq(&self, vrings: &[VringRwLock]) -> bool {
        let Some(queue) = self.queue(vrings, usize::from(CONTROLQ)) else {
            return false;
        };
        self.with_context(|ctx| {
            let drainer = |txq: u32, stream: u32| {
                let index = usize::from(TXQ_BASE) + txq as usize;
                if let Some(txq_queue) = self.queue(vrings, index) {
                    queues::drain_stream(ctx, txq_queue.as_ref(), txq, stream);
                }
            };
            queues::process_controlq(ctx, &queue, &drainer)
        })
    }

    fn process_txq(&self, vrings: &[VringRwLock], index: usize) -> bool {
        let Some(queue) = self.queue(vrings, index) else {
            return false;
        };
        let waker: Arc<dyn Waker> = self.waker.clone();
        let txq = u32::try_from(index - usize::from(TXQ_BASE)).unwrap_or(u32::MAX);
        self.with_context(|ctx| queues::process_txq(ctx, &queue, txq, &waker))
    }

    /// One pass over every queue that takes work (a wake-up after a credit
    /// release or a full batch).
    fn process_all(&self, vrings: &[VringRwLock]) -> bool {
        let mut more = self.process_controlq(vrings);
        for index in usize::from(TXQ_BASE)..vrings.len() {
            more |= self.process_txq(vrings, index);
        }
        more
    }
}

impl VhostUserBackend for MediaBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        queue_count(self.limits.device.num_txqs) as usize
    }

    fn max_queue_size(&self) -> usize {
        usize::from(self.limits.queue_size)
    }

    fn features(&self) -> u64 {
        (1 << mediaredir_proto::device::F_CAPTURE)
            | (1 << mediaredir_proto::device::F_CALL)
            | (1 << mediaredir_proto::device::F_CLIPPING)
            | (1 << mediaredir_proto::device::F_LINK_QUALITY)
            | (1 << transport::F_VERSION_1)
            | (1 << transport::F_EVENT_IDX)
            | (1 << transport::F_INDIRECT_DESC)
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn acked_features(&self, features: u64) {
        self.acked_features.store(features, Ordering::Relaxed);
        self.core
            .set_features(crate::model::Features::from_bits(features));
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::MQ
            | VhostUserProtocolFeatures::CONFIG
            | VhostUserProtocolFeatures::REPLY_ACK
            | VhostUserProtocolFeatures::RESET_DEVICE
            // Guest brokers add buffer pools one region at a time.
            | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
    }

    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        // Without an exit event the worker threads of a finished connection
        // could never be joined.
        new_event_consumer_and_notifier(EventFlag::NONBLOCK).ok()
    }

    fn reset_device(&self) {
        log::info!("frontend reset the device");
        self.core.set_event_sink(None);
        self.core.new_instance();
    }

    fn set_event_idx(&self, enabled: bool) {
        self.event_idx.store(enabled, Ordering::Relaxed);
    }

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        let config = self.core.model().config().to_bytes();
        let start = (offset as usize).min(config.len());
        let end = start.saturating_add(size as usize).min(config.len());
        config[start..end].to_vec()
    }

    fn update_memory(&self, mem: GuestMemoryAtomic<GuestMemoryMmap>) -> io::Result<()> {
        *self.mem.write().unwrap_or_else(|p| p.into_inner()) = mem;
        Ok(())
    }

    fn stop_vring(&self, queue_index: u32) -> io::Result<()> {
        // Completions in flight for this ring must not reach the next one.
        if let Some(flag) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(queue_index as usize)
        {
            flag.store(false, Ordering::Release);
            *flag = Arc::new(AtomicBool::new(true));
        }
        match u16::try_from(queue_index) {
            Ok(EVENTQ) => self.core.set_event_sink(None),
            Ok(CAPQ) => self.core.set_capture_sink(None),
            Ok(CONTROLQ) => {
                // QEMU stops every ring on a device reset (and on VM stop):
                // the device instance ends with it (spec, "Device reset").
                log::info!("frontend stopped the control queue: new device instance");
                self.core.new_instance();
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_event(
        &self,
        device_event: u16,
        evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> result::Result<(), io::Error> {
        if evset != EventSet::IN {
            return Err(io::Error::other(format!(
                "unexpected epoll events {evset:?}"
            )));
        }
        if u64::from(device_event) == self.wake_event_id() {
            let _ = self.waker.0.read();
            if self.process_all(vrings) {
                self.waker.wake();
            }
            return Ok(());
        }
        let index = usize::from(device_event);
        if index >= vrings.len() {
            return Err(io::Error::other(format!(
                "event for unknown queue {device_event}"
            )));
        }
        let more = match device_event {
            CONTROLQ => self.process_controlq(vrings),
            // Event and capture buffers wait until the core has something
            // for one.
            EVENTQ | CAPQ => {
                if let Some(queue) = self.queue(vrings, index) {
                    let indirect = self.negotiated(transport::F_INDIRECT_DESC);
                    let counters = Arc::clone(self.core.counters());
                    if device_event == EVENTQ {
                        let sink = EventqSink::new(queue, indirect, counters);
                        self.core.set_event_sink(Some(Arc::new(sink)));
                    } else {
                        let sink = CapqSink::new(queue, indirect, counters);
                        self.core.set_capture_sink(Some(Arc::new(sink)));
                    }
                }
                false
            }
            _ => self.process_txq(vrings, index),
        };
        if more {
            // A full batch: let the other queues run, then come back.
            self.waker.wake();
        }
        Ok(())
    }
}

/// Why serving frontends failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The backend could not be created.
    #[error("cannot create the backend: {0}")]
    Backend(io::Error),
    /// vhost-user failed.
    #[error("vhost-user daemon: {0}")]
    VhostUser(String),
}

/// The vhost-user socket, bound once: a frontend that connects while the
/// previous connection winds down waits in the backlog instead of finding
/// no listener.
pub struct Frontends(Listener);

impl std::fmt::Debug for Frontends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frontends").finish_non_exhaustive()
    }
}

impl Frontends {
    /// Binds the vhost-user socket at `path` (replacing a stale one).
    pub fn bind(path: &Path) -> Result<Frontends, ServeError> {
        Listener::new(path, true)
            .map(Frontends)
            .map_err(|e| ServeError::VhostUser(format!("{}: {e}", path.display())))
    }

    /// Serves one frontend connection with `core` until it ends.
    pub fn serve_one(&mut self, core: &Arc<DeviceCore>, limits: Limits) -> Result<(), ServeError> {
        let backend =
            Arc::new(MediaBackend::new(Arc::clone(core), limits).map_err(ServeError::Backend)?);
        let mut daemon = VhostUserDaemon::new(
            "vhost-user-mediaredir".to_string(),
            Arc::clone(&backend),
            GuestMemoryAtomic::new(GuestMemoryMmap::new()),
        )
        .map_err(|e| ServeError::VhostUser(e.to_string()))?;
        for handler in daemon.get_epoll_handlers() {
            use std::os::fd::AsRawFd;
            handler
                .register_listener(
                    backend.wake_fd().as_raw_fd(),
                    EventSet::IN,
                    backend.wake_event_id(),
                )
                .map_err(|e| ServeError::VhostUser(e.to_string()))?;
        }
        daemon
            .start(&mut self.0)
            .map_err(|e| ServeError::VhostUser(e.to_string()))?;
        if let Err(err) = daemon.wait() {
            // A frontend that goes away mid-message is an ordinary end.
            log::info!("frontend connection ended: {err}");
        }
        // Dropping the daemon stops and joins its worker threads.
        Ok(())
    }
}

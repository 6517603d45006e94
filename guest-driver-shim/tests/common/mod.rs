//! A minimal vhost-user device daemon built with `vhost-user-backend`, for
//! testing the frontend (this crate playing QEMU) end to end in one process.
//!
//! The device answers each chain through a closure given the queue, the
//! readable bytes and the writable capacity; it can also hold chains (event
//! buffers) and fill them later with [`TestBackend::push_event`], or
//! answer them late with [`TestBackend::answer_held`] (a slow device).
//! `toy` is a media device built on it.

#![allow(dead_code)]

pub(crate) mod toy;

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vhost::vhost_user::Listener;
use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost_user_backend::{ShutdownHandle, VhostUserBackend, VhostUserDaemon, VringRwLock, VringT};
use virtio_queue::QueueOwnedT;
use vm_memory::{
    Bytes, GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryLoadGuard,
    GuestMemoryMmap,
};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    EventConsumer, EventFlag, EventNotifier, new_event_consumer_and_notifier,
};

/// The queue whose held buffers receive pushed events.
pub(crate) const EVENT_QUEUE: u16 = 1;

/// What the device does with a chain.
pub(crate) enum Reply {
    /// Write these bytes into the writable part; used length = bytes written.
    Write(Vec<u8>),
    /// Write these bytes but report this used length.
    WriteLen(Vec<u8>, u32),
    /// Keep the chain (filled later by `push_event`, or never).
    Hold,
}

/// A held chain: queue, head, writable segments.
type HeldChain = (u16, u16, Vec<(GuestAddress, u32)>);

type Handler = dyn Fn(u16, &[u8], usize) -> Reply + Send + Sync;

struct Inner {
    features: u64,
    num_queues: usize,
    config: Mutex<Vec<u8>>,
    mem: Mutex<Option<GuestMemoryAtomic<GuestMemoryMmap>>>,
    event_idx: AtomicBool,
    handler: Box<Handler>,
    /// Held chains: (queue, head, writable segments).
    held: Mutex<VecDeque<HeldChain>>,
    /// Events waiting for a held buffer.
    events: Mutex<VecDeque<Vec<u8>>>,
    vrings: Mutex<Option<Vec<VringRwLock>>>,
    kicks: AtomicUsize,
    chains: AtomicUsize,
}

/// The test device.
#[derive(Clone)]
pub(crate) struct TestBackend {
    inner: Arc<Inner>,
}

/// `VIRTIO_F_VERSION_1`, `RING_EVENT_IDX`, `INDIRECT_DESC` and
/// `VHOST_USER_F_PROTOCOL_FEATURES`.
pub(crate) const STANDARD_FEATURES: u64 = (1 << 32) | (1 << 29) | (1 << 28) | (1 << 30);

impl TestBackend {
    pub(crate) fn new(
        features: u64,
        num_queues: usize,
        config: Vec<u8>,
        handler: impl Fn(u16, &[u8], usize) -> Reply + Send + Sync + 'static,
    ) -> TestBackend {
        TestBackend {
            inner: Arc::new(Inner {
                features,
                num_queues,
                config: Mutex::new(config),
                mem: Mutex::new(None),
                event_idx: AtomicBool::new(false),
                handler: Box::new(handler),
                held: Mutex::new(VecDeque::new()),
                events: Mutex::new(VecDeque::new()),
                vrings: Mutex::new(None),
                kicks: AtomicUsize::new(0),
                chains: AtomicUsize::new(0),
            }),
        }
    }

    /// An echo device: readable bytes are copied into the writable part.
    pub(crate) fn echo(num_queues: usize, config: Vec<u8>) -> TestBackend {
        Self::new(STANDARD_FEATURES, num_queues, config, |_, readable, _| {
            Reply::Write(readable.to_vec())
        })
    }

    /// Queues an event for the next held buffer (delivered at the next
    /// kick, or now when buffers are held and the rings are known).
    pub(crate) fn push_event(&self, bytes: Vec<u8>) {
        self.inner.events.lock().unwrap().push_back(bytes);
        let vrings = self.inner.vrings.lock().unwrap().clone();
        if let Some(vrings) = vrings {
            self.deliver_events(&vrings);
        }
    }

    /// Kicks handled so far.
    pub(crate) fn kicks(&self) -> usize {
        self.inner.kicks.load(Ordering::Acquire)
    }

    /// Chains answered so far.
    pub(crate) fn chains(&self) -> usize {
        self.inner.chains.load(Ordering::Acquire)
    }

    /// Chains held.
    pub(crate) fn held(&self) -> usize {
        self.inner.held.lock().unwrap().len()
    }

    fn memory(&self) -> Option<GuestMemoryLoadGuard<GuestMemoryMmap>> {
        self.inner.mem.lock().unwrap().as_ref().map(|m| m.memory())
    }

    fn write_segments(
        mem: &GuestMemoryMmap,
        segments: &[(GuestAddress, u32)],
        bytes: &[u8],
    ) -> u32 {
        let mut done = 0usize;
        for &(addr, len) in segments {
            if done >= bytes.len() {
                break;
            }
            let n = (len as usize).min(bytes.len() - done);
            if mem.write_slice(&bytes[done..done + n], addr).is_err() {
                break;
            }
            done += n;
        }
        u32::try_from(done).unwrap()
    }

    /// Answers the oldest held chain of `queue` with `bytes`, as a device
    /// that was slow to answer; `false` when none is held within 2 s (a
    /// chain just submitted reaches the device at its kick).
    pub(crate) fn answer_held(&self, queue: u16, bytes: &[u8]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        let chain = loop {
            if let Some(chain) = self.take_held(queue) {
                break chain;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let vrings = self.inner.vrings.lock().unwrap().clone();
        let (Some(vrings), Some(mem)) = (vrings, self.memory()) else {
            return false;
        };
        Self::complete_held(&mem, &vrings, chain, bytes);
        true
    }

    fn take_held(&self, queue: u16) -> Option<HeldChain> {
        let mut held = self.inner.held.lock().unwrap();
        let slot = held.iter().position(|&(q, _, _)| q == queue)?;
        held.remove(slot)
    }

    fn complete_held(
        mem: &GuestMemoryMmap,
        vrings: &[VringRwLock],
        chain: HeldChain,
        bytes: &[u8],
    ) {
        let (queue, head, segments) = chain;
        let len = Self::write_segments(mem, &segments, bytes);
        let vring = &vrings[usize::from(queue)];
        vring.add_used(head, len).unwrap();
        if vring.needs_notification().unwrap_or(true) {
            let _ = vring.signal_used_queue();
        }
    }

    fn deliver_events(&self, vrings: &[VringRwLock]) {
        let Some(mem) = self.memory() else { return };
        loop {
            // Both locks while pairing, so concurrent deliveries keep the
            // events in order.
            let mut events = self.inner.events.lock().unwrap();
            let mut held = self.inner.held.lock().unwrap();
            let slot = held.iter().position(|&(q, _, _)| q == EVENT_QUEUE);
            let (Some(slot), false) = (slot, events.is_empty()) else {
                break;
            };
            let event = events.pop_front().unwrap();
            let chain = held.remove(slot).unwrap();
            drop((events, held));
            Self::complete_held(&mem, vrings, chain, &event);
        }
    }

    fn process(&self, queue: u16, vring: &VringRwLock) -> io::Result<()> {
        let Some(mem) = self.memory() else {
            return Ok(());
        };
        let event_idx = self.inner.event_idx.load(Ordering::Acquire);
        loop {
            if event_idx {
                vring.disable_notification().map_err(io::Error::other)?;
            }
            let chains: Vec<_> = vring
                .get_mut()
                .get_queue_mut()
                .iter(mem.clone())
                .map_err(io::Error::other)?
                .collect();
            for chain in chains {
                let head = chain.head_index();
                let mut readable = Vec::new();
                let mut writable = Vec::new();
                for desc in chain.clone() {
                    if desc.is_write_only() {
                        writable.push((desc.addr(), desc.len()));
                    } else {
                        let mut buf = vec![0u8; desc.len() as usize];
                        if mem.read_slice(&mut buf, desc.addr()).is_ok() {
                            readable.extend_from_slice(&buf);
                        }
                    }
                }
                let capacity: usize = writable.iter().map(|&(_, len)| len as usize).sum();
                self.inner.chains.fetch_add(1, Ordering::AcqRel);
                match (self.inner.handler)(queue, &readable, capacity) {
                    Reply::Write(bytes) => {
                        let len = Self::write_segments(&mem, &writable, &bytes);
                        vring.add_used(head, len).map_err(io::Error::other)?;
                    }
                    Reply::WriteLen(bytes, len) => {
                        Self::write_segments(&mem, &writable, &bytes);
                        vring.add_used(head, len).map_err(io::Error::other)?;
                    }
                    Reply::Hold => {
                        self.inner
                            .held
                            .lock()
                            .unwrap()
                            .push_back((queue, head, writable));
                    }
                }
            }
            if !event_idx || !vring.enable_notification().map_err(io::Error::other)? {
                break;
            }
        }
        if vring.needs_notification().map_err(io::Error::other)? {
            vring.signal_used_queue()?;
        }
        Ok(())
    }
}

impl VhostUserBackend for TestBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        self.inner.num_queues
    }

    fn max_queue_size(&self) -> usize {
        256
    }

    fn features(&self) -> u64 {
        self.inner.features
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::MQ
            | VhostUserProtocolFeatures::CONFIG
            | VhostUserProtocolFeatures::BACKEND_REQ
    }

    fn set_event_idx(&self, enabled: bool) {
        self.inner.event_idx.store(enabled, Ordering::Release);
    }

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        let config = self.inner.config.lock().unwrap();
        let start = offset as usize;
        let end = start + size as usize;
        if end > config.len() {
            return Vec::new();
        }
        config[start..end].to_vec()
    }

    fn update_memory(&self, mem: GuestMemoryAtomic<GuestMemoryMmap>) -> io::Result<()> {
        *self.inner.mem.lock().unwrap() = Some(mem);
        Ok(())
    }

    fn reset_device(&self) {
        self.inner.held.lock().unwrap().clear();
    }

    fn stop_vring(&self, queue_index: u32) -> io::Result<()> {
        self.inner
            .held
            .lock()
            .unwrap()
            .retain(|&(q, _, _)| u32::from(q) != queue_index);
        Ok(())
    }

    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        new_event_consumer_and_notifier(EventFlag::empty()).ok()
    }

    fn handle_event(
        &self,
        device_event: u16,
        evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        if evset != EventSet::IN || usize::from(device_event) >= vrings.len() {
            return Ok(());
        }
        self.inner.kicks.fetch_add(1, Ordering::AcqRel);
        *self.inner.vrings.lock().unwrap() = Some(vrings.to_vec());
        self.process(device_event, &vrings[usize::from(device_event)])?;
        self.deliver_events(vrings);
        Ok(())
    }
}

/// A daemon serving one connection in a thread.
pub(crate) struct Daemon {
    shutdown: mpsc::Receiver<ShutdownHandle>,
    handle: Option<ShutdownHandle>,
    thread: Option<JoinHandle<()>>,
}

impl Daemon {
    /// Listens on `path` (replacing a stale socket) and serves the first
    /// connection with `backend`.
    pub(crate) fn spawn(path: &Path, backend: TestBackend) -> Daemon {
        let mut listener = Listener::new(path, true).unwrap();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mem = GuestMemoryAtomic::new(GuestMemoryMmap::new());
            let mut daemon = VhostUserDaemon::new("test-device".into(), backend, mem).unwrap();
            if daemon.start(&mut listener).is_err() {
                return;
            }
            if let Some(handle) = daemon.shutdown_handle() {
                let _ = tx.send(handle);
            }
            let _ = daemon.wait();
        });
        Daemon {
            shutdown: rx,
            handle: None,
            thread: Some(thread),
        }
    }

    /// Closes the connection, as a crashed daemon would, and waits for the
    /// serving thread.
    pub(crate) fn kill(mut self) {
        if self.handle.is_none() {
            self.handle = self.shutdown.recv().ok();
        }
        if let Some(handle) = &self.handle {
            handle.shutdown();
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// Initialises logging once (RUST_LOG).
pub(crate) fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

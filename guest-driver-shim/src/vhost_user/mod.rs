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

use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vhost::vhost_user::message::{
    VhostUserConfigFlags, VhostUserHeaderFlag, VhostUserProtocolFeatures,
};
use vhost::vhost_user::{
    Frontend, FrontendReqHandler, VhostUserFrontend, VhostUserFrontendReqHandler,
};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vmm_sys_util::eventfd::EventFd;

use crate::dma::{DEFAULT_DMA_SIZE, DmaMemory};
use crate::transport::{Transport, TransportError, status};
use crate::virtqueue::QueueLayout;

/// `VHOST_USER_F_PROTOCOL_FEATURES` (a vhost-user bit, not a virtio one).
pub const VHOST_USER_F_PROTOCOL_FEATURES: u64 = 1 << 30;

/// Protocol features this frontend uses when the daemon offers them.
fn wanted_protocol_features() -> VhostUserProtocolFeatures {
    VhostUserProtocolFeatures::MQ
        | VhostUserProtocolFeatures::REPLY_ACK
        | VhostUserProtocolFeatures::CONFIG
        | VhostUserProtocolFeatures::BACKEND_REQ
        | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
}

/// Guest-physical address of the first memory made by
/// [`Transport::new_memory`]: far above any RAM the tests give the main
/// memory, so the two never overlap.
const EXTRA_MEMORY_BASE: u64 = 1 << 40;

/// Size and address granularity of extra memory (a huge page, as QEMU
/// aligns RAM blocks).
const EXTRA_MEMORY_ALIGN: u64 = 2 << 20;

/// Memory regions `SET_MEM_TABLE` may carry (vhost-user's
/// `VHOST_MEMORY_BASELINE_NREGIONS`); more need `CONFIGURE_MEM_SLOTS`.
const SET_MEM_TABLE_MAX_REGIONS: usize = 8;

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

/// Per-queue state.
#[derive(Debug, Default)]
struct QueueState {
    layout: Option<QueueLayout>,
    kick: Option<EventFd>,
    call: Option<EventFd>,
    started: bool,
}

/// Sets a flag when the daemon announces a configuration change.
#[derive(Debug, Default)]
struct ConfigFlag {
    changed: AtomicBool,
}

impl VhostUserFrontendReqHandler for ConfigFlag {
    fn handle_config_change(&self) -> std::io::Result<u64> {
        log::debug!("vhost-user: configuration change announced");
        self.changed.store(true, Ordering::Release);
        Ok(0)
    }
}

/// The thread serving the backend request channel.
#[derive(Debug)]
struct ConfigWatcher {
    flag: Arc<ConfigFlag>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ConfigWatcher {
    /// Creates the channel, hands its other end to the daemon, and starts
    /// serving it.
    fn start(frontend: &mut Frontend, reply_ack: bool) -> Result<ConfigWatcher, TransportError> {
        let flag = Arc::new(ConfigFlag::default());
        let mut handler = FrontendReqHandler::new(Arc::clone(&flag)).map_err(|source| {
            TransportError::VhostUser {
                op: "backend request channel",
                source: vhost::Error::VhostUserProtocol(source),
            }
        })?;
        handler.set_reply_ack_flag(reply_ack);
        let tx: RawFd = handler.get_tx_raw_fd();
        frontend
            .set_backend_request_fd(&tx)
            .map_err(|source| TransportError::VhostUser {
                op: "SET_BACKEND_REQ_FD",
                source,
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("vhost-user-backend-req".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Acquire) {
                    match poll_readable(handler.as_raw_fd(), Duration::from_millis(50)) {
                        Ok(false) => continue,
                        Ok(true) => {}
                        Err(e) => {
                            log::error!("vhost-user backend channel: poll: {e}");
                            return;
                        }
                    }
                    if let Err(e) = handler.handle_request() {
                        log::debug!("vhost-user backend channel closed: {e}");
                        return;
                    }
                }
            })
            .map_err(|source| TransportError::Io {
                op: "spawn the backend request thread",
                source,
            })?;
        Ok(ConfigWatcher {
            flag,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls `fd` for input for at most `timeout`; `Ok(true)` when readable
/// (or hung up: a read then reports it).
fn poll_readable(fd: RawFd, timeout: Duration) -> std::io::Result<bool> {
    let mut fds = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    let n = poll(&mut fds, timeout)?;
    Ok(n > 0 && fds[0].revents != 0)
}

/// `poll(2)` that retries on EINTR until `timeout` has passed.
fn poll(fds: &mut [libc::pollfd], timeout: Duration) -> std::io::Result<usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        // Round up so a sub-millisecond wait does not become a busy poll.
        let ms = remaining.as_micros().div_ceil(1000);
        let ms = libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX);
        let nfds = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
        // SAFETY: `fds` is a valid, exclusively borrowed array of `nfds`
        // pollfd structures for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), nfds, ms) };
        if n >= 0 {
            return Ok(usize::try_from(n).unwrap_or(0));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// The vhost-user description of `memory` (fd, guest-physical base, size and
/// this process's address).
fn region_info(memory: &DmaMemory) -> Result<VhostUserMemoryRegionInfo, TransportError> {
    VhostUserMemoryRegionInfo::from_guest_region(memory.guest_region()).map_err(vu("memory region"))
}

fn vu(op: &'static str) -> impl FnOnce(vhost::Error) -> TransportError {
    move |source| TransportError::VhostUser { op, source }
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

    /// Whether the daemon takes single regions (`ADD_MEM_REG`/`REM_MEM_REG`).
    fn has_mem_slots(&self) -> bool {
        self.protocol_features
            .contains(VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS)
    }

    /// Whether the daemon has a memory table (set at DRIVER_OK).
    fn table_sent(&self) -> bool {
        self.status & status::DRIVER_OK != 0
    }

    /// Sends the whole memory table: the main memory and every extra
    /// memory, as QEMU does at start and after a memory hot-plug.
    fn send_memory_table(&mut self) -> Result<(), TransportError> {
        let mut regions = vec![region_info(&self.mem)?];
        if self.has_mem_slots() {
            self.frontend
                .set_mem_table(&regions)
                .map_err(vu("SET_MEM_TABLE"))?;
            for memory in &self.extra {
                self.frontend
                    .add_mem_region(&region_info(memory)?)
                    .map_err(vu("ADD_MEM_REG"))?;
            }
            return Ok(());
        }
        for memory in &self.extra {
            regions.push(region_info(memory)?);
        }
        if regions.len() > SET_MEM_TABLE_MAX_REGIONS {
            return Err(TransportError::Unsupported(
                "more than 8 memory regions without CONFIGURE_MEM_SLOTS",
            ));
        }
        self.frontend
            .set_mem_table(&regions)
            .map_err(vu("SET_MEM_TABLE"))?;
        Ok(())
    }

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

    fn queue(&self, queue: u16) -> Result<&QueueState, TransportError> {
        self.queues
            .get(usize::from(queue))
            .ok_or(TransportError::NoSuchQueue(queue))
    }

    fn host_address(&self, queue: u16, gpa: u64) -> Result<u64, TransportError> {
        self.mem.host_address(gpa).ok_or(TransportError::BadQueue {
            queue,
            reason: "ring outside the DMA memory",
        })
    }

    fn start_queue(
        &mut self,
        index: u16,
        layout: QueueLayout,
        base: u16,
    ) -> Result<(), TransportError> {
        let i = usize::from(index);
        let config = VringConfigData {
            queue_max_size: self.options.max_queue_size,
            queue_size: layout.size,
            flags: 0,
            desc_table_addr: self.host_address(index, layout.desc)?,
            used_ring_addr: self.host_address(index, layout.used)?,
            avail_ring_addr: self.host_address(index, layout.avail)?,
            log_addr: None,
        };
        let eventfd = || {
            EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(|source| {
                TransportError::Io {
                    op: "eventfd",
                    source,
                }
            })
        };
        let kick = eventfd()?;
        let call = eventfd()?;
        self.frontend
            .set_vring_num(i, layout.size)
            .map_err(vu("SET_VRING_NUM"))?;
        self.frontend
            .set_vring_base(i, base)
            .map_err(vu("SET_VRING_BASE"))?;
        self.frontend
            .set_vring_addr(i, &config)
            .map_err(vu("SET_VRING_ADDR"))?;
        self.frontend
            .set_vring_kick(i, &kick)
            .map_err(vu("SET_VRING_KICK"))?;
        self.frontend
            .set_vring_call(i, &call)
            .map_err(vu("SET_VRING_CALL"))?;
        let state = &mut self.queues[i];
        state.kick = Some(kick);
        state.call = Some(call);
        state.started = true;
        Ok(())
    }
}

impl Transport for VhostUserTransport {
    fn dma(&self) -> &Arc<DmaMemory> {
        &self.mem
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        let mut first_error = None;
        let enable = self.uses_protocol_features();
        for index in 0..self.queues.len() {
            if !self.queues[index].started {
                continue;
            }
            if enable && let Err(e) = self.frontend.set_vring_enable(index, false) {
                first_error.get_or_insert(TransportError::VhostUser {
                    op: "SET_VRING_ENABLE 0",
                    source: e,
                });
            }
            match self.frontend.get_vring_base(index) {
                Ok(base) => log::debug!("vhost-user: queue {index} stopped at {base}"),
                Err(e) => {
                    first_error.get_or_insert(TransportError::VhostUser {
                        op: "GET_VRING_BASE",
                        source: e,
                    });
                }
            }
        }
        for state in &mut self.queues {
            *state = QueueState::default();
        }
        self.driver_features = None;
        self.status = 0;
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
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
        let bad = |reason| TransportError::BadQueue { queue, reason };
        let state = self.queue(queue)?;
        if state.started {
            return Err(bad("already started; reset first"));
        }
        if !layout.size.is_power_of_two() || layout.size > self.options.max_queue_size {
            return Err(bad("size not a power of two or above the maximum"));
        }
        let rings = [
            (layout.desc, QueueLayout::desc_bytes(layout.size)),
            (layout.avail, QueueLayout::avail_bytes(layout.size)),
            (layout.used, QueueLayout::used_bytes(layout.size)),
        ];
        if rings
            .iter()
            .any(|&(gpa, len)| !self.mem.contains(gpa, len as u64))
        {
            return Err(bad("ring outside the DMA memory"));
        }
        self.queues[usize::from(queue)].layout = Some(*layout);
        Ok(())
    }

    fn activate(&mut self) -> Result<(), TransportError> {
        if self.driver_features.is_none() {
            return Err(TransportError::BadState("DRIVER_OK before FEATURES_OK"));
        }
        self.send_memory_table()?;
        let layouts: Vec<(u16, QueueLayout)> = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| Some((u16::try_from(i).ok()?, q.layout?)))
            .collect();
        for &(index, layout) in &layouts {
            self.start_queue(index, layout, 0)?;
        }
        if self.uses_protocol_features() {
            for &(index, _) in &layouts {
                self.frontend
                    .set_vring_enable(usize::from(index), true)
                    .map_err(vu("SET_VRING_ENABLE 1"))?;
            }
        }
        self.status |= status::DRIVER_OK;
        log::debug!("vhost-user: DRIVER_OK with {} queues", layouts.len());
        Ok(())
    }

    fn notify(&mut self, queue: u16) -> Result<(), TransportError> {
        let kick = self
            .queue(queue)?
            .kick
            .as_ref()
            .ok_or(TransportError::BadState("notify before DRIVER_OK"))?;
        kick.write(1).map_err(|source| TransportError::Io {
            op: "kick eventfd",
            source,
        })
    }

    fn wait_used(&mut self, queue: u16, timeout: Duration) -> Result<bool, TransportError> {
        let call = self
            .queue(queue)?
            .call
            .as_ref()
            .ok_or(TransportError::BadState("wait before DRIVER_OK"))?;
        let mut fds = [
            libc::pollfd {
                fd: call.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.frontend.as_raw_fd(),
                events: libc::POLLRDHUP,
                revents: 0,
            },
        ];
        poll(&mut fds, timeout).map_err(|source| TransportError::Io {
            op: "poll call eventfd",
            source,
        })?;
        if fds[1].revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
            return Err(TransportError::Disconnected);
        }
        if fds[0].revents & libc::POLLIN == 0 {
            return Ok(false);
        }
        match call.read() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(true),
            Err(source) => Err(TransportError::Io {
                op: "read call eventfd",
                source,
            }),
        }
    }

    fn used_fd(&self, queue: u16) -> Option<BorrowedFd<'_>> {
        self.queues
            .get(usize::from(queue))?
            .call
            .as_ref()
            .map(|call| {
                // SAFETY: the fd belongs to the EventFd in `self.queues`,
                // which stays open for as long as `self` is borrowed.
                unsafe { BorrowedFd::borrow_raw(call.as_raw_fd()) }
            })
    }

    fn new_memory(&mut self, size: usize) -> Result<Arc<DmaMemory>, TransportError> {
        let size = (size as u64)
            .checked_next_multiple_of(EXTRA_MEMORY_ALIGN)
            .filter(|&s| s > 0)
            .ok_or(TransportError::Unsupported("extra memory size"))?;
        let gpa = self.next_extra;
        let memory = DmaMemory::new_memfd(
            usize::try_from(size).map_err(|_| TransportError::Unsupported("extra memory size"))?,
            gpa,
        )?;
        if self.table_sent() {
            if self.has_mem_slots() {
                self.frontend
                    .add_mem_region(&region_info(&memory)?)
                    .map_err(vu("ADD_MEM_REG"))?;
                self.extra.push(Arc::clone(&memory));
            } else {
                self.extra.push(Arc::clone(&memory));
                if let Err(e) = self.send_memory_table() {
                    self.extra.pop();
                    return Err(e);
                }
            }
        } else {
            self.extra.push(Arc::clone(&memory));
        }
        self.next_extra = gpa + size;
        log::debug!("vhost-user: extra memory of {size} bytes at {gpa:#x}");
        Ok(memory)
    }

    fn release_memory(&mut self, memory: &Arc<DmaMemory>) -> Result<(), TransportError> {
        let index = self
            .extra
            .iter()
            .position(|m| Arc::ptr_eq(m, memory))
            .ok_or(TransportError::BadState("release of unknown memory"))?;
        self.extra.remove(index);
        if self.table_sent() {
            if self.has_mem_slots() {
                self.frontend
                    .remove_mem_region(&region_info(memory)?)
                    .map_err(vu("REM_MEM_REG"))?;
            } else {
                self.send_memory_table()?;
            }
        }
        Ok(())
    }

    fn config_changed(&mut self) -> Result<bool, TransportError> {
        Ok(self
            .watcher
            .as_ref()
            .is_some_and(|w| w.flag.changed.swap(false, Ordering::AcqRel)))
    }
}

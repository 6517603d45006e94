//! The broker's event loop: one thread, `poll(2)` over the listening
//! socket, every client and the device's used-buffer notifications.
//!
//! Control requests are forwarded one at a time and answered before the
//! next client message is read (the device answers them promptly; the
//! driver's timeout bounds a stuck one). Data buffers are asynchronous:
//! a `QUEUE` becomes a chain on the stream's txq and its `COMPLETE` goes
//! out when the device returns the chain. When a txq is full the request
//! waits in a per-queue backlog, in order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mediaredir_proto::ProtoError;
use mediaredir_proto::broker::{BROKER_VERSION, BrokerMessage, MAX_MESSAGE, Sender};
use mediaredir_proto::control::{ControlRequest, Limits, Request, ResponseHeader};
use mediaredir_proto::data::DataHeader;
use mediaredir_proto::device::{CAPQ, EVENTQ, TXQ_BASE};
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;

use super::client::{CapturePost, Client};
use super::ownership::is_broadcast;
use super::{BrokerError, BrokerOptions};
use crate::dma::DmaMemory;
use crate::driver::{CapturedSample, DataToken, DriverError, MediaDevice};
use crate::seqpacket::{Received, SeqpacketListener};
use crate::transport::Transport;

/// Client messages handled per client per loop turn (fairness).
const BURST: usize = 32;

/// Wait of one loop turn when the transport offers no notification fd.
const POLL_FALLBACK: Duration = Duration::from_millis(5);

/// Pause between two attempts to reset a device that is not ready.
const RESET_RETRY_INTERVAL: Duration = Duration::from_millis(500);

type ClientId = u64;

/// A pool: DMA memory shared with one client.
#[derive(Debug)]
struct Pool {
    memory: Arc<DmaMemory>,
    /// Buffers of the pool the device holds.
    in_flight: usize,
    /// `POOL_DESTROY` waiting for `in_flight` to reach 0 (its tag), or the
    /// owner is gone (`Some(None)`).
    destroy: Option<Option<u32>>,
}

/// A `QUEUE` the device holds.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    client: ClientId,
    tag: u32,
    pool: u32,
}

/// A `QUEUE` waiting for room on its txq.
#[derive(Debug)]
struct Waiting {
    client: ClientId,
    tag: u32,
    pool: u32,
    header: DataHeader,
    segments: Vec<(u64, u32)>,
}

/// The broker: owns the device and serves players on a socket.
#[derive(Debug)]
pub struct Broker<T: Transport> {
    dev: MediaDevice<T>,
    listener: SeqpacketListener,
    options: BrokerOptions,
    clients: BTreeMap<ClientId, Client>,
    next_client: ClientId,
    pools: HashMap<(ClientId, u32), Pool>,
    in_flight: HashMap<DataToken, InFlight>,
    waiting: BTreeMap<u16, VecDeque<Waiting>>,
    generation: u32,
    limits: Limits,
    buf: Vec<u8>,
}

impl<T: Transport> Broker<T> {
    /// A broker for the initialised device `dev`, serving on `listener`.
    pub fn new(
        dev: MediaDevice<T>,
        listener: SeqpacketListener,
        options: BrokerOptions,
    ) -> Result<Broker<T>, BrokerError> {
        let config = dev.cached_config()?;
        log::info!(
            "broker: serving {} (device generation {:#x}, {} txqs)",
            listener.path().display(),
            config.generation,
            config.num_txqs
        );
        Ok(Broker {
            dev,
            listener,
            options,
            clients: BTreeMap::new(),
            next_client: 1,
            pools: HashMap::new(),
            in_flight: HashMap::new(),
            waiting: BTreeMap::new(),
            generation: config.generation,
            limits: Limits::from(&config),
            buf: vec![0; MAX_MESSAGE],
        })
    }

    /// Serves until `stop` is set (checked at least every `tick`).
    pub fn run(&mut self, stop: &AtomicBool, tick: Duration) -> Result<(), BrokerError> {
        while !stop.load(Ordering::Acquire) {
            self.run_once(tick)?;
        }
        Ok(())
    }

    /// Connected clients.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// The device.
    pub fn device(&self) -> &MediaDevice<T> {
        &self.dev
    }

    /// One turn: waits up to `timeout` for something to do, then does it.
    pub fn run_once(&mut self, timeout: Duration) -> Result<(), BrokerError> {
        let device_fds = self.device_fds();
        let mut fds = Vec::with_capacity(1 + self.clients.len() + device_fds.len());
        fds.push(pollfd(self.listener.as_fd().as_raw_fd(), libc::POLLIN));
        let ids: Vec<ClientId> = self.clients.keys().copied().collect();
        for client in self.clients.values() {
            let mut events = 0;
            if client.wants_input() {
                events |= libc::POLLIN;
            }
            if client.wants_output() {
                events |= libc::POLLOUT;
            }
            fds.push(pollfd(client.conn.as_fd().as_raw_fd(), events));
        }
        for &(fd, _) in &device_fds {
            fds.push(pollfd(fd, libc::POLLIN));
        }
        let wait = if device_fds.is_empty() {
            timeout.min(POLL_FALLBACK)
        } else {
            timeout
        };
        poll(&mut fds, wait)?;
        // Device first: completions free room that waiting requests need.
        let device_ready = fds[1 + ids.len()..]
            .iter()
            .zip(&device_fds)
            .filter(|(p, _)| p.revents != 0)
            .map(|(_, &(_, q))| q)
            .collect::<Vec<_>>();
        for queue in device_ready {
            // Consume the notification; the rings are read below anyway.
            self.dev.transport_mut().wait_used(queue, Duration::ZERO)?;
        }
        self.service_device()?;
        if fds[0].revents != 0 {
            self.accept();
        }
        for (i, id) in ids.iter().enumerate() {
            let revents = fds[1 + i].revents;
            if revents & libc::POLLOUT != 0
                && let Some(client) = self.clients.get_mut(id)
            {
                client.flush();
            }
            if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                self.read_client(*id)?;
            }
        }
        self.service_device()?;
        self.sweep_dead()?;
        Ok(())
    }

    /// Notification fds of the eventq and the txqs (deduplicated: a PCI
    /// device has one interrupt for all).
    fn device_fds(&self) -> Vec<(RawFd, u16)> {
        let transport = self.dev.transport();
        let mut out: Vec<(RawFd, u16)> = Vec::new();
        let txqs = self
            .dev
            .cached_config()
            .map(|c| c.num_txqs)
            .unwrap_or_default();
        let queues = [EVENTQ, CAPQ]
            .into_iter()
            .chain((0..txqs).filter_map(|t| u16::try_from(t).ok().map(|t| TXQ_BASE + t)));
        for queue in queues {
            if let Some(fd) = transport.used_fd(queue) {
                let raw = fd.as_raw_fd();
                if !out.iter().any(|&(f, _)| f == raw) {
                    out.push((raw, queue));
                }
            }
        }
        out
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok(conn) => {
                    if self.clients.len() >= self.options.max_clients {
                        log::warn!(
                            "broker: {} clients already; connection closed",
                            self.clients.len()
                        );
                        continue;
                    }
                    let id = self.next_client;
                    self.next_client += 1;
                    let mut client = Client::new(conn);
                    client.generation = self.generation;
                    self.clients.insert(id, client);
                    log::info!("broker: client {id} connected");
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("broker: accept: {e}");
                    return;
                }
            }
        }
    }

    fn read_client(&mut self, id: ClientId) -> Result<(), BrokerError> {
        for _ in 0..BURST {
            let Some(client) = self.clients.get_mut(&id) else {
                return Ok(());
            };
            if !client.wants_input() {
                return Ok(());
            }
            let received = match client.conn.recv(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => {
                    log::info!("broker: client {id}: {e}");
                    client.dead = true;
                    return Ok(());
                }
            };
            let (len, truncated) = match received {
                Received::Closed => {
                    client.dead = true;
                    return Ok(());
                }
                // A client never sends descriptors; one that does has it
                // closed here (dropped).
                Received::Packet { len, truncated, .. } => (len, truncated),
            };
            if truncated {
                log::warn!("broker: client {id}: packet over {MAX_MESSAGE} bytes refused");
                client.send(
                    0,
                    &BrokerMessage::Status {
                        status: Status::Invalid,
                    },
                    None,
                );
                continue;
            }
            // The buffer is lent out while the packet is handled: no
            // allocation per message.
            let buf = std::mem::take(&mut self.buf);
            let handled = self.handle_packet(id, &buf[..len]);
            self.buf = buf;
            handled?;
        }
        Ok(())
    }

    fn reply(&mut self, id: ClientId, tag: u32, message: &BrokerMessage, fd: Option<OwnedFd>) {
        if let Some(client) = self.clients.get_mut(&id) {
            client.send(tag, message, fd);
        }
    }

    fn status(&mut self, id: ClientId, tag: u32, status: Status) {
        self.reply(id, tag, &BrokerMessage::Status { status }, None);
    }

    fn handle_packet(&mut self, id: ClientId, packet: &[u8]) -> Result<(), BrokerError> {
        let tag = packet
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes);
        let message = match BrokerMessage::decode(packet, Sender::Client) {
            Ok((_, message)) => message,
            Err(e) => {
                let status = match e {
                    ProtoError::UnknownBrokerMessage(_) => Status::UnknownRequest,
                    _ => Status::Invalid,
                };
                log::warn!("broker: client {id}: malformed message: {e}");
                self.status(id, tag, status);
                return Ok(());
            }
        };
        let Some(client) = self.clients.get(&id) else {
            return Ok(());
        };
        if let BrokerMessage::Hello { version } = message {
            return self.hello(id, tag, version);
        }
        if !client.hello {
            self.status(id, tag, Status::BadState);
            return Ok(());
        }
        let stale = client.stale;
        match message {
            BrokerMessage::Control(bytes) if stale => {
                self.control_status(id, tag, &bytes, Status::Stale);
            }
            BrokerMessage::Control(bytes) => self.control(id, tag, &bytes)?,
            BrokerMessage::CapturePost { .. } if stale => self.status(id, tag, Status::Stale),
            BrokerMessage::Queue { .. } if stale => {
                self.reply(
                    id,
                    tag,
                    &BrokerMessage::Complete {
                        status: Status::Stale,
                    },
                    None,
                );
            }
            BrokerMessage::Queue {
                pool_id,
                offset,
                header,
            } => self.queue(id, tag, pool_id, offset, header)?,
            BrokerMessage::PoolCreate { size } => self.pool_create(id, tag, size),
            BrokerMessage::PoolDestroy { pool_id } => self.pool_destroy(id, tag, pool_id)?,
            BrokerMessage::CapturePost {
                pool_id,
                offset,
                len,
            } => self.capture_post(id, tag, pool_id, offset, len),
            _ => self.status(id, tag, Status::Invalid),
        }
        Ok(())
    }

    fn hello(&mut self, id: ClientId, tag: u32, version: u32) -> Result<(), BrokerError> {
        if version != BROKER_VERSION {
            self.status(id, tag, Status::Unsupported);
            return Ok(());
        }
        let generation = self.generation;
        if let Some(client) = self.clients.get_mut(&id) {
            client.hello = true;
            client.stale = false;
            client.generation = generation;
        }
        self.reply(
            id,
            tag,
            &BrokerMessage::HelloReply {
                version: BROKER_VERSION,
                generation,
            },
            None,
        );
        Ok(())
    }

    /// Answers a `CONTROL` with a bare response header.
    fn control_status(&mut self, id: ClientId, tag: u32, request: &[u8], status: Status) {
        let target = request
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes);
        let header = ResponseHeader { status, id: target };
        self.reply(
            id,
            tag,
            &BrokerMessage::ControlReply(header.to_bytes().to_vec()),
            None,
        );
    }

    fn control(&mut self, id: ClientId, tag: u32, bytes: &[u8]) -> Result<(), BrokerError> {
        let request = match ControlRequest::decode(bytes, &self.limits) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("broker: client {id}: malformed control request: {e}");
                self.control_status(id, tag, bytes, e.status());
                return Ok(());
            }
        };
        let code = request.request.code();
        let allowed = self
            .clients
            .get(&id)
            .is_some_and(|c| c.owned.may_address(code, request.target));
        if !allowed {
            log::info!(
                "broker: client {id}: {code:?} for {} it does not own",
                request.target
            );
            self.control_status(id, tag, bytes, Status::NoEntity);
            return Ok(());
        }
        let answer = match self.forward_control(&request) {
            Ok(answer) => answer,
            Err(e) => {
                log::warn!("broker: {code:?}: {e}");
                self.control_status(id, tag, bytes, Status::Io);
                if matches!(e, DriverError::Timeout { .. }) {
                    // The device stopped answering (its host daemon is
                    // gone): reset it once it is back.
                    self.reset_device()?;
                }
                return Ok(());
            }
        };
        let header = ResponseHeader::decode(&answer).map(|(h, _)| h);
        match header {
            Ok(h) if h.status == Status::Ok => {
                if let Some(client) = self.clients.get_mut(&id) {
                    client.owned.record(&request.request, request.target, h.id);
                }
                self.reply(id, tag, &BrokerMessage::ControlReply(answer), None);
            }
            Ok(h) if h.status == Status::Stale => {
                self.reply(id, tag, &BrokerMessage::ControlReply(answer), None);
                log::warn!("broker: the device answered STALE: it restarted");
                self.reset_device()?;
            }
            Ok(_) => self.reply(id, tag, &BrokerMessage::ControlReply(answer), None),
            Err(e) => {
                log::warn!("broker: {code:?}: unreadable response: {e}");
                self.control_status(id, tag, bytes, Status::Io);
            }
        }
        Ok(())
    }

    /// Sends `request` with the current generation; the raw response.
    fn forward_control(&mut self, request: &ControlRequest) -> Result<Vec<u8>, DriverError> {
        let bytes = ControlRequest {
            generation: self.generation,
            target: request.target,
            request: request.request.clone(),
        }
        .encode();
        let capacity = self.dev.response_capacity(request.request.code())?;
        let answer = self.dev.control_raw(&bytes, capacity)?;
        Ok(answer.bytes)
    }

    fn queue(
        &mut self,
        id: ClientId,
        tag: u32,
        pool_id: u32,
        offset: u64,
        mut header: DataHeader,
    ) -> Result<(), BrokerError> {
        let complete = |status| BrokerMessage::Complete { status };
        let Some(client) = self.clients.get(&id) else {
            return Ok(());
        };
        let Some(stream) = client.owned.streams.get(&header.stream_id).copied() else {
            self.reply(id, tag, &complete(Status::NoEntity), None);
            return Ok(());
        };
        let Some(pool) = self
            .pools
            .get(&(id, pool_id))
            .filter(|p| p.destroy.is_none())
        else {
            self.reply(id, tag, &complete(Status::NoEntity), None);
            return Ok(());
        };
        if !stream.playback {
            self.reply(id, tag, &complete(Status::Invalid), None);
            return Ok(());
        }
        let segments = if header.payload_len == 0 {
            Ok(Vec::new())
        } else {
            pool.memory.segments(offset, u64::from(header.payload_len))
        };
        let Ok(segments) = segments else {
            log::warn!(
                "broker: client {id}: QUEUE {offset}+{} outside pool {pool_id}",
                header.payload_len
            );
            self.reply(id, tag, &complete(Status::Invalid), None);
            return Ok(());
        };
        header.generation = self.generation;
        let waiting = Waiting {
            client: id,
            tag,
            pool: pool_id,
            header,
            segments,
        };
        let backlog = self.waiting.entry(stream.txq).or_default();
        if backlog.is_empty() {
            self.submit_or_wait(stream.txq, waiting, false)?;
        } else {
            backlog.push_back(waiting);
        }
        Ok(())
    }

    /// Submits `w`, or keeps it in the txq's backlog (at the front when it
    /// came from there) when the ring is full. Returns whether the ring took
    /// it (or it was answered with an error).
    fn submit_or_wait(&mut self, txq: u16, w: Waiting, front: bool) -> Result<bool, BrokerError> {
        match self.dev.submit_data(txq, &w.header, &w.segments) {
            Ok(token) => {
                if let Some(pool) = self.pools.get_mut(&(w.client, w.pool)) {
                    pool.in_flight += 1;
                }
                self.in_flight.insert(
                    token,
                    InFlight {
                        client: w.client,
                        tag: w.tag,
                        pool: w.pool,
                    },
                );
                Ok(true)
            }
            Err(DriverError::QueueFull(_)) => {
                let backlog = self.waiting.entry(txq).or_default();
                if front {
                    backlog.push_front(w);
                } else {
                    backlog.push_back(w);
                }
                Ok(false)
            }
            Err(DriverError::NoSuchTxq(_)) => {
                self.reply(
                    w.client,
                    w.tag,
                    &BrokerMessage::Complete {
                        status: Status::Invalid,
                    },
                    None,
                );
                Ok(true)
            }
            Err(e) => {
                log::warn!("broker: submitting on txq {txq}: {e}");
                self.reply(
                    w.client,
                    w.tag,
                    &BrokerMessage::Complete { status: Status::Io },
                    None,
                );
                Ok(true)
            }
        }
    }

    /// `CAPTURE_POST`: keeps `pool[offset..offset + len]` for the next
    /// capture sample of one of the client's streams.
    fn capture_post(&mut self, id: ClientId, tag: u32, pool_id: u32, offset: u64, len: u64) {
        let Some(pool) = self
            .pools
            .get(&(id, pool_id))
            .filter(|p| p.destroy.is_none())
        else {
            self.status(id, tag, Status::NoEntity);
            return;
        };
        let fits = offset
            .checked_add(len)
            .is_some_and(|end| len > 0 && end <= pool.memory.size());
        if !fits {
            log::warn!("broker: client {id}: CAPTURE_POST {offset}+{len} outside pool {pool_id}");
            self.status(id, tag, Status::Invalid);
            return;
        }
        log::debug!("broker: client {id}: capture post {tag} in pool {pool_id} at {offset}+{len}");
        if let Some(client) = self.clients.get_mut(&id) {
            client.posts.push_back(CapturePost {
                pool: pool_id,
                offset,
                len,
                tag,
            });
        }
    }

    /// Copies a captured sample into the oldest post of the client that
    /// owns its stream (spec 9.2: capq buffers are shared, so the player
    /// gets a copy, never a mapping of them).
    fn deliver_capture(&mut self, sample: &CapturedSample) {
        let stream = sample.header.stream_id;
        let Some((&id, _)) = self
            .clients
            .iter()
            .find(|(_, c)| c.owned.streams.contains_key(&stream))
        else {
            log::debug!("broker: capture sample of unowned stream {stream} dropped");
            return;
        };
        loop {
            let Some(post) = self.clients.get_mut(&id).and_then(|c| c.posts.pop_front()) else {
                log::info!(
                    "broker: client {id} has no capture post; sample of stream {stream} dropped"
                );
                return;
            };
            if (sample.payload.len() as u64) > post.len {
                self.status(id, post.tag, Status::Limit);
                continue;
            }
            let Some(pool) = self.pools.get(&(id, post.pool)) else {
                self.status(id, post.tag, Status::Cancelled);
                continue;
            };
            let gpa = pool.memory.base() + post.offset;
            if let Err(e) = pool.memory.write(gpa, &sample.payload) {
                log::warn!("broker: writing a capture sample: {e}");
                self.status(id, post.tag, Status::Io);
                continue;
            }
            self.reply(
                id,
                post.tag,
                &BrokerMessage::CaptureFilled {
                    header: sample.header,
                },
                None,
            );
            return;
        }
    }

    fn pool_create(&mut self, id: ClientId, tag: u32, size: u64) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if size == 0 {
            self.status(id, tag, Status::Invalid);
            return;
        }
        if client.pool_count >= self.options.max_pools_per_client
            || client.pool_bytes.saturating_add(size) > self.options.max_pool_bytes_per_client
        {
            log::info!("broker: client {id}: pool of {size} bytes over the limits");
            self.status(id, tag, Status::Limit);
            return;
        }
        let Ok(wanted) = usize::try_from(size) else {
            self.status(id, tag, Status::Limit);
            return;
        };
        let memory = match self.dev.new_memory(wanted) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("broker: pool of {size} bytes: {e}");
                self.status(id, tag, Status::Io);
                return;
            }
        };
        let fd = memory
            .file()
            .and_then(|f| f.try_clone().ok())
            .map(OwnedFd::from);
        let Some(fd) = fd else {
            log::warn!("broker: pool memory has no file to share");
            let _ = self.dev.release_memory(&memory);
            self.status(id, tag, Status::Io);
            return;
        };
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let pool_id = client.pool_id();
        client.pool_count += 1;
        client.pool_bytes += memory.size();
        let actual = memory.size();
        self.pools.insert(
            (id, pool_id),
            Pool {
                memory,
                in_flight: 0,
                destroy: None,
            },
        );
        log::debug!("broker: client {id}: pool {pool_id} of {actual} bytes");
        self.reply(
            id,
            tag,
            &BrokerMessage::PoolCreateReply {
                pool_id,
                size: actual,
            },
            Some(fd),
        );
    }

    fn pool_destroy(&mut self, id: ClientId, tag: u32, pool_id: u32) -> Result<(), BrokerError> {
        match self.pools.get_mut(&(id, pool_id)) {
            None => self.status(id, tag, Status::NoEntity),
            Some(pool) if pool.destroy.is_some() => self.status(id, tag, Status::BadState),
            Some(pool) => {
                pool.destroy = Some(Some(tag));
                let returned: Vec<u32> = match self.clients.get_mut(&id) {
                    Some(client) => {
                        let (gone, kept) = std::mem::take(&mut client.posts)
                            .into_iter()
                            .partition(|p| p.pool == pool_id);
                        client.posts = kept;
                        gone.into_iter().map(|p: CapturePost| p.tag).collect()
                    }
                    None => Vec::new(),
                };
                for post in returned {
                    self.status(id, post, Status::Cancelled);
                }
                self.release_idle_pool(id, pool_id)?;
            }
        }
        Ok(())
    }

    /// Unmaps pool `(id, pool_id)` if it is being destroyed and the device
    /// holds none of its buffers; answers its `POOL_DESTROY`.
    fn release_idle_pool(&mut self, id: ClientId, pool_id: u32) -> Result<(), BrokerError> {
        let ready = self
            .pools
            .get(&(id, pool_id))
            .is_some_and(|p| p.destroy.is_some() && p.in_flight == 0);
        // Waiting requests of the pool have not reached the device.
        let queued = self
            .waiting
            .values()
            .flatten()
            .any(|w| w.client == id && w.pool == pool_id);
        if !ready || queued {
            return Ok(());
        }
        let Some(pool) = self.pools.remove(&(id, pool_id)) else {
            return Ok(());
        };
        if let Err(e) = self.dev.release_memory(&pool.memory) {
            log::warn!("broker: releasing pool memory: {e}");
        }
        if let Some(client) = self.clients.get_mut(&id) {
            client.pool_count -= 1;
            client.pool_bytes -= pool.memory.size();
        }
        if let Some(Some(tag)) = pool.destroy {
            self.status(id, tag, Status::Ok);
        }
        Ok(())
    }

    /// Completions, events and the backlogs.
    fn service_device(&mut self) -> Result<(), BrokerError> {
        let txqs: Vec<u16> = (0..self.dev.cached_config()?.num_txqs)
            .filter_map(|t| u16::try_from(t).ok())
            .collect();
        let mut stale = false;
        for &txq in &txqs {
            for done in self.dev.poll_data_completions(txq)? {
                let Some(w) = self.in_flight.remove(&done.token) else {
                    continue;
                };
                let status = done.status.unwrap_or_else(|e| {
                    log::warn!("broker: txq {txq}: unreadable completion: {e}");
                    Status::Io
                });
                stale |= status == Status::Stale;
                self.reply(w.client, w.tag, &BrokerMessage::Complete { status }, None);
                if let Some(pool) = self.pools.get_mut(&(w.client, w.pool)) {
                    pool.in_flight -= 1;
                }
                self.release_idle_pool(w.client, w.pool)?;
            }
            self.drain_backlog(txq)?;
        }
        if stale {
            // A new device instance (a restarted daemon) refuses the old
            // generation's buffers, maybe before its DEVICE_STARTED.
            log::warn!("broker: a buffer completed STALE: the device restarted");
            return self.reset_device();
        }
        for sample in self.dev.poll_captures()? {
            self.deliver_capture(&sample);
        }
        while let Some((event, generation)) = self.dev.next_event(Duration::ZERO)? {
            self.route_event(&event, generation)?;
        }
        Ok(())
    }

    fn drain_backlog(&mut self, txq: u16) -> Result<(), BrokerError> {
        while let Some(w) = self.waiting.get_mut(&txq).and_then(VecDeque::pop_front) {
            if !self.clients.contains_key(&w.client) {
                continue;
            }
            if !self.submit_or_wait(txq, w, true)? {
                return Ok(());
            }
        }
        Ok(())
    }

    fn route_event(&mut self, event: &Event, generation: u32) -> Result<(), BrokerError> {
        if generation != self.generation {
            // A new device instance (spec 7.16): its DEVICE_STARTED, or any
            // event of it, tells the driver to reset.
            log::warn!(
                "broker: device generation {:#x} -> {generation:#x}: resetting it",
                self.generation
            );
            self.reset_device()?;
            return Ok(());
        }
        if matches!(event, Event::DeviceStarted) {
            // The instance this broker initialised announcing itself.
            return Ok(());
        }
        let raw = event.encode(generation);
        let broadcast = is_broadcast(event);
        for client in self.clients.values_mut() {
            if client.hello && (broadcast || client.owned.owns_event(event)) {
                client.send_event(raw);
            }
        }
        Ok(())
    }

    /// Asks for a device reset, as when the device restarted: buffers in
    /// flight complete `STALE`, clients get `DEVICE_STARTED` and must say
    /// `HELLO` again. For a player that runs this broker in its own process
    /// and wants to reset the device mid-stream (players reach the device
    /// only through the broker).
    pub fn reset(&mut self) -> Result<(), BrokerError> {
        log::info!("broker: device reset asked");
        self.reset_device()
    }

    /// Resets and initialises the device, retrying for
    /// [`BrokerOptions::reset_retry`]: while a restarted host daemon is not
    /// up yet the device reads back an empty configuration and its
    /// initialisation fails.
    fn reset_until_ready(&mut self) -> Result<(), BrokerError> {
        let deadline = Instant::now() + self.options.reset_retry;
        loop {
            match self.dev.reset() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() < deadline => {
                    log::warn!("broker: device not ready yet ({e}); retrying");
                    std::thread::sleep(RESET_RETRY_INTERVAL);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Resets the device (DRV-RST-1): pending buffers complete `STALE`,
    /// clients that owned objects become stale, pools stay.
    fn reset_device(&mut self) -> Result<(), BrokerError> {
        self.reset_until_ready()?;
        let config = self.dev.cached_config()?;
        self.generation = config.generation;
        self.limits = Limits::from(&config);
        let stale = |status| BrokerMessage::Complete { status };
        for (_, w) in std::mem::take(&mut self.in_flight) {
            self.reply(w.client, w.tag, &stale(Status::Stale), None);
        }
        for w in std::mem::take(&mut self.waiting).into_values().flatten() {
            self.reply(w.client, w.tag, &stale(Status::Stale), None);
        }
        for pool in self.pools.values_mut() {
            pool.in_flight = 0;
        }
        let started = Event::DeviceStarted.encode(self.generation);
        for client in self.clients.values_mut() {
            client.generation = self.generation;
            if !client.owned.is_empty() {
                client.stale = true;
                client.owned.clear();
            }
            if client.hello {
                client.send_event(started);
            }
        }
        let keys: Vec<(ClientId, u32)> = self.pools.keys().copied().collect();
        for (id, pool) in keys {
            self.release_idle_pool(id, pool)?;
        }
        log::info!("broker: device reset, generation {:#x}", self.generation);
        Ok(())
    }

    /// Drops clients whose socket closed: destroys what they created
    /// (their buffers complete `CANCELLED`) and frees their pools once the
    /// device holds none of their buffers (BRK-5).
    fn sweep_dead(&mut self) -> Result<(), BrokerError> {
        let dead: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.dead)
            .map(|(&id, _)| id)
            .collect();
        for id in dead {
            let Some(client) = self.clients.remove(&id) else {
                continue;
            };
            log::info!("broker: client {id} gone; destroying what it created");
            for w in self.waiting.values_mut() {
                w.retain(|w| w.client != id);
            }
            for &presentation in &client.owned.presentations {
                let request = ControlRequest {
                    generation: self.generation,
                    target: presentation,
                    request: Request::PresDestroy,
                };
                if let Err(e) = self.forward_control(&request) {
                    log::warn!("broker: destroying presentation {presentation}: {e}");
                }
            }
            for &session in &client.owned.sessions {
                let request = ControlRequest {
                    generation: self.generation,
                    target: session,
                    request: Request::CallEnd,
                };
                if let Err(e) = self.forward_control(&request) {
                    log::warn!("broker: ending call {session}: {e}");
                }
            }
            let pools: Vec<u32> = self
                .pools
                .keys()
                .filter(|(c, _)| *c == id)
                .map(|&(_, p)| p)
                .collect();
            for pool in pools {
                if let Some(p) = self.pools.get_mut(&(id, pool)) {
                    p.destroy = Some(None);
                }
                self.release_idle_pool(id, pool)?;
            }
        }
        Ok(())
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn poll(fds: &mut [libc::pollfd], timeout: Duration) -> Result<(), BrokerError> {
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd of the
    // length passed.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(BrokerError::Io {
                op: "poll",
                source: e,
            });
        }
    }
    Ok(())
}

//! The broker's event loop: one thread, `poll(2)` over the listening
//! socket, every client and the device's used-buffer notifications.
//!
//! The loop never waits for the device. A `CONTROL` is put on the controlq
//! and remembered in a table of pending requests (client, tag, token,
//! deadline, request); its answer is relayed when the device returns the
//! chain, so one slow request (`CALL_CREATE` waits up to 10 s for the
//! client's SDP) holds up only its own client, whose next `CONTROL` waits
//! for it (answers in order). Data buffers are asynchronous the same way:
//! a `QUEUE` becomes a chain on the stream's txq and its `COMPLETE` goes
//! out when the device returns the chain. When a txq is full the request
//! waits in a per-queue backlog, in order.
//!
//! The loop is here; what it does on each turn is split by what it serves:
//! `clients` (connections, packets, `HELLO`, departures), `control`
//! (checking and submitting control requests), `control_answers`
//! (relaying answers, timeouts), `pools` (the players' shared DMA memory),
//! `playback` (`QUEUE` onto the txqs and their backlogs), `capture`
//! (capture posts and samples) and `device` (completions, events, device
//! resets).

mod capture;
mod clients;
mod control;
mod control_answers;
mod device;
mod playback;
mod pools;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mediaredir_player::seqpacket::SeqpacketListener;
use mediaredir_proto::broker::MAX_MESSAGE;
use mediaredir_proto::control::Limits;
use mediaredir_proto::device::{CAPQ, CONTROLQ, EVENTQ, TXQ_BASE};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use super::client::Client;
use super::{BrokerError, BrokerOptions};
use crate::driver::{ControlToken, DataToken, MediaDevice};
use crate::transport::Transport;
use control::{MAX_WAITING_CONTROLS, PendingControl, WaitingControl};
use playback::{InFlight, Waiting};
use pools::Pool;

/// Wait of one loop turn when the transport offers no notification fd.
const POLL_FALLBACK: Duration = Duration::from_millis(5);

type ClientId = u64;

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
    /// Control requests at the device, until answered or given up.
    controls: HashMap<ControlToken, PendingControl>,
    /// Control requests waiting for their turn, in arrival order.
    control_waiting: VecDeque<WaitingControl>,
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
            config.limits.num_txqs
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
            controls: HashMap::new(),
            control_waiting: VecDeque::new(),
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

    /// Whether to read more messages from client `id` now: not while its
    /// replies pile up or its `CONTROL`s wait for their turn.
    fn reads_from(&self, id: ClientId) -> bool {
        self.clients.get(&id).is_some_and(|c| c.wants_input())
            && self.controls_waiting(id) < MAX_WAITING_CONTROLS
    }

    /// One turn: waits up to `timeout` for something to do, then does it.
    pub fn run_once(&mut self, timeout: Duration) -> Result<(), BrokerError> {
        let ids: Vec<ClientId> = self.clients.keys().copied().collect();
        let (device_queues, revents) = {
            let device_fds = self.device_fds();
            let mut fds = Vec::with_capacity(1 + ids.len() + device_fds.len());
            fds.push(PollFd::new(&self.listener, PollFlags::IN));
            for (&id, client) in &self.clients {
                let mut events = PollFlags::empty();
                if self.reads_from(id) {
                    events |= PollFlags::IN;
                }
                if client.wants_output() {
                    events |= PollFlags::OUT;
                }
                fds.push(PollFd::new(&client.conn, events));
            }
            for &(fd, _) in &device_fds {
                fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
            }
            let mut wait = if device_fds.is_empty() {
                timeout.min(POLL_FALLBACK)
            } else {
                timeout
            };
            if let Some(deadline) = self.next_control_deadline() {
                // Wake up when a control request is due (1 ms past it).
                let due = deadline.saturating_duration_since(Instant::now());
                wait = wait.min(due + Duration::from_millis(1));
            }
            poll(&mut fds, wait)?;
            let queues: Vec<u16> = device_fds.iter().map(|&(_, q)| q).collect();
            (queues, fds.iter().map(PollFd::revents).collect::<Vec<_>>())
        };
        // Device first: completions free room that waiting requests need.
        let device_ready = revents[1 + ids.len()..]
            .iter()
            .zip(&device_queues)
            .filter(|(r, _)| !r.is_empty())
            .map(|(_, &q)| q)
            .collect::<Vec<_>>();
        for queue in device_ready {
            // Consume the notification; the rings are read below anyway.
            self.dev.transport_mut().wait_used(queue, Duration::ZERO)?;
        }
        self.service_device()?;
        if !revents[0].is_empty() {
            self.accept();
        }
        for (i, id) in ids.iter().enumerate() {
            let revents = revents[1 + i];
            if revents.contains(PollFlags::OUT)
                && let Some(client) = self.clients.get_mut(id)
            {
                client.flush();
            }
            if revents.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
                self.read_client(*id)?;
            }
        }
        self.service_device()?;
        self.sweep_dead()?;
        Ok(())
    }

    /// Notification fds of the controlq, the eventq, capq and the txqs
    /// (deduplicated: a PCI device has one interrupt for all).
    fn device_fds(&self) -> Vec<(BorrowedFd<'_>, u16)> {
        let transport = self.dev.transport();
        let mut out: Vec<(BorrowedFd<'_>, u16)> = Vec::new();
        let txqs = self
            .dev
            .cached_config()
            .map(|c| c.limits.num_txqs)
            .unwrap_or_default();
        let queues = [CONTROLQ, EVENTQ, CAPQ]
            .into_iter()
            .chain((0..txqs).filter_map(|t| u16::try_from(t).ok().map(|t| TXQ_BASE + t)));
        for queue in queues {
            if let Some(fd) = transport.used_fd(queue) {
                let raw = fd.as_raw_fd();
                if !out.iter().any(|&(f, _)| f.as_raw_fd() == raw) {
                    out.push((fd, queue));
                }
            }
        }
        out
    }
}

fn poll(fds: &mut [PollFd<'_>], timeout: Duration) -> Result<(), BrokerError> {
    let timeout = Timespec::try_from(timeout).ok();
    match rustix::event::poll(fds, timeout.as_ref()) {
        Ok(_) | Err(Errno::INTR) => Ok(()),
        Err(e) => Err(BrokerError::Io {
            op: "poll",
            source: e.into(),
        }),
    }
}

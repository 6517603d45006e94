//! What the socket uplink and its connection threads share: the current
//! connection, the queue of outgoing messages and samples, the per-stream
//! book of samples held until the client acknowledges them, and ending a
//! connection (completing what it held with `NO_CLIENT`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Instant;

use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{self, Message};

use crate::counters::Counters;
use crate::guest_buffer::GuestBuffer;
use crate::uplink::ClientEvents;
use crate::uplink::stream::ClientStream;

use super::link::LinkMeter;

/// What the writer sends next.
pub(super) enum Outgoing {
    /// A control message.
    Message(Message),
    /// A sample and the buffer holding its payload.
    Sample(wire::SampleHeader, GuestBuffer),
}

/// How many destroyed streams a connection remembers (acks in flight).
pub(super) const RETIRED_STREAMS: usize = 64;

/// Per-stream bookkeeping of samples in flight to the client.
#[derive(Default)]
pub(super) struct StreamBook {
    /// Written, waiting for an ack.
    pub(super) unacked: VecDeque<(u64, GuestBuffer)>,
    /// Highest cumulative ack seen.
    pub(super) acked: u64,
    /// Samples up to this seq were cancelled with this status.
    pub(super) cancelled: Option<(u64, Status)>,
    /// Highest seq handed to the uplink.
    pub(super) queued: u64,
}

/// The uplink's state, under [`Shared::state`].
#[derive(Default)]
pub(super) struct State {
    /// Connection number of the current client (0: none).
    pub(super) current: u64,
    /// The last connection number given out.
    pub(super) next_conn: u64,
    /// The current client's byte stream.
    pub(super) stream: Option<Arc<ClientStream>>,
    /// What the writer sends next, in order.
    pub(super) queue: VecDeque<Outgoing>,
    /// Samples in flight, per stream.
    pub(super) books: HashMap<u32, StreamBook>,
    /// Streams this client was told of that the guest has destroyed since,
    /// newest last (at most [`RETIRED_STREAMS`]): an ack the client sent
    /// before it saw the destroy is not a protocol violation.
    pub(super) retired: VecDeque<u32>,
    /// The current connection's writer failed (when, and why): its reader
    /// ends the connection once it has read what was already sent.
    pub(super) hung_up: Option<(u64, Instant, String)>,
    /// The current connection's link measurement.
    pub(super) link: Option<LinkMeter>,
}

/// State shared by the uplink, its acceptor and its connection threads.
pub(super) struct Shared {
    /// The state proper.
    pub(super) state: Mutex<State>,
    /// Wakes the writer (queue changed, connection ended).
    pub(super) wake: Condvar,
    /// Whom client events go to.
    pub(super) events: OnceLock<Weak<dyn ClientEvents>>,
    /// The daemon's counters.
    pub(super) counters: Arc<Counters>,
    /// The uplink is shutting down: the acceptor stops.
    pub(super) shutdown: AtomicBool,
    /// The server name sent in `Welcome`.
    pub(super) name: String,
    /// The session sent in `Welcome`.
    pub(super) session: u64,
}

impl State {
    /// Payload bytes written to the client and not yet acknowledged.
    pub(super) fn inflight_bytes(&self) -> u64 {
        self.books
            .values()
            .flat_map(|b| &b.unacked)
            .map(|(_, buf)| u64::from(buf.payload_len()))
            .sum()
    }

    /// When connection `conn` was hung up, if it was.
    pub(super) fn hung_up_for(&self, conn: u64) -> Option<Instant> {
        self.hung_up
            .as_ref()
            .filter(|(c, _, _)| *c == conn)
            .map(|(_, at, _)| *at)
    }
}

impl Shared {
    /// The state, even if a thread panicked holding it.
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The receiver of client events, while it lives.
    pub(super) fn events(&self) -> Option<Arc<dyn ClientEvents>> {
        self.events.get().and_then(Weak::upgrade)
    }

    /// Ends connection `conn` if it is the current one: completes every
    /// held buffer with `NO_CLIENT` and tells the device.
    pub(super) fn disconnect(&self, conn: u64, why: &str) {
        let mut doomed = Vec::new();
        {
            let mut s = self.lock();
            if s.current != conn || conn == 0 {
                return;
            }
            s.current = 0;
            s.hung_up = None;
            s.link = None;
            if let Some(stream) = s.stream.take() {
                stream.shutdown();
            }
            for item in s.queue.drain(..) {
                if let Outgoing::Sample(_, buf) = item {
                    doomed.push(buf);
                }
            }
            for book in s.books.values_mut() {
                doomed.extend(book.unacked.drain(..).map(|(_, b)| b));
            }
            s.books.clear();
            s.retired.clear();
        }
        log::info!("client disconnected: {why}");
        for mut buf in doomed {
            buf.set_status(Status::NoClient);
        }
        self.wake.notify_all();
        if let Some(events) = self.events() {
            events.client_disconnected();
        }
    }

    /// The writer of connection `conn` failed: shuts the stream down, so
    /// that its reader reaches the end of input right after what the client
    /// already sent, and leaves the disconnection to that reader.
    pub(super) fn hang_up(&self, conn: u64, why: String) {
        let mut s = self.lock();
        if s.current != conn || conn == 0 || s.hung_up.is_some() {
            return;
        }
        if let Some(stream) = &s.stream {
            stream.shutdown();
        }
        s.hung_up = Some((conn, Instant::now(), why));
    }

    /// Why connection `conn` was hung up (`None`: it was not).
    pub(super) fn hung_up(&self, conn: u64) -> Option<String> {
        let s = self.lock();
        s.hung_up_for(conn)?;
        s.hung_up.as_ref().map(|(_, _, why)| why.clone())
    }
}

/// Queues `item` for connection `conn`, if it is still the current one.
pub(super) fn enqueue(shared: &Shared, conn: u64, item: Outgoing) {
    let mut s = shared.lock();
    if s.current != conn {
        return;
    }
    s.queue.push_back(item);
    drop(s);
    shared.wake.notify_all();
}

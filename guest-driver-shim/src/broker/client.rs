//! One connected player, as the broker sees it: its socket, what it owns,
//! and the packets it has not read yet.
//!
//! The broker never blocks on a player: replies and events that do not fit
//! the socket wait in an outbox, events bounded per client (spec 9.2: 256,
//! overflow turned into one `EVENTS_LOST`), and a client whose outbox is
//! long is not read from until it drains (so it cannot make the broker
//! buffer without bound by sending requests and never reading replies).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use mediaredir_player::seqpacket::SeqpacketConn;
use mediaredir_proto::broker::BrokerMessage;
use mediaredir_proto::event::{EVENT_SIZE, Event};

use super::ownership::Owned;

/// Undelivered events kept per client (spec 9.2).
pub(crate) const MAX_EVENTS: usize = 256;

/// Replies waiting in an outbox before the broker stops reading requests
/// from that client.
pub(crate) const READ_PAUSE_OUTBOX: usize = 64;

/// A packet not yet sent.
#[derive(Debug)]
struct Outgoing {
    packet: Vec<u8>,
    fd: Option<OwnedFd>,
    event: bool,
}

/// A region of a pool the player offered for a capture sample
/// (`CAPTURE_POST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CapturePost {
    pub(crate) pool: u32,
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) tag: u32,
}

/// A connected player.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) conn: SeqpacketConn,
    /// `HELLO` received.
    pub(crate) hello: bool,
    /// Owned objects when the device was reset: refused until `HELLO`.
    pub(crate) stale: bool,
    pub(crate) owned: Owned,
    /// Pools: count and bytes, for the limits.
    pub(crate) pool_count: usize,
    pub(crate) pool_bytes: u64,
    next_pool: u32,
    outbox: VecDeque<Outgoing>,
    queued_events: usize,
    lost_events: u64,
    /// The socket failed: the client is dropped at the next sweep.
    pub(crate) dead: bool,
    /// Device generation stamped on the broker's own events.
    pub(crate) generation: u32,
    /// Capture posts, oldest first.
    pub(crate) posts: VecDeque<CapturePost>,
}

impl Client {
    pub(crate) fn new(conn: SeqpacketConn) -> Client {
        Client {
            conn,
            hello: false,
            stale: false,
            owned: Owned::default(),
            pool_count: 0,
            pool_bytes: 0,
            next_pool: 1,
            outbox: VecDeque::new(),
            queued_events: 0,
            lost_events: 0,
            dead: false,
            generation: 0,
            posts: VecDeque::new(),
        }
    }

    /// A new pool id for this client.
    pub(crate) fn pool_id(&mut self) -> u32 {
        let id = self.next_pool;
        self.next_pool = self.next_pool.wrapping_add(1).max(1);
        id
    }

    /// Whether the broker should read more requests now.
    pub(crate) fn wants_input(&self) -> bool {
        !self.dead && self.outbox.len() < READ_PAUSE_OUTBOX
    }

    /// Whether packets wait for the socket to drain.
    pub(crate) fn wants_output(&self) -> bool {
        !self.dead && !self.outbox.is_empty()
    }

    /// Sends `message` with `tag`, or keeps it for later.
    pub(crate) fn send(&mut self, tag: u32, message: &BrokerMessage, fd: Option<OwnedFd>) {
        self.push(message.encode(tag), fd, false);
    }

    /// Sends an event (tag 0), bounded by [`MAX_EVENTS`].
    pub(crate) fn send_event(&mut self, raw: [u8; EVENT_SIZE]) {
        if self.queued_events >= MAX_EVENTS {
            self.lost_events += 1;
            return;
        }
        self.queued_events += 1;
        self.push(BrokerMessage::Event(raw).encode(0), None, true);
    }

    fn push(&mut self, packet: Vec<u8>, fd: Option<OwnedFd>, event: bool) {
        if self.dead {
            return;
        }
        self.outbox.push_back(Outgoing { packet, fd, event });
        self.flush();
    }

    /// Sends what the socket takes now.
    pub(crate) fn flush(&mut self) {
        while let Some(next) = self.outbox.front() {
            match self
                .conn
                .send(&next.packet, next.fd.as_ref().map(AsFd::as_fd))
            {
                Ok(()) => {
                    if next.event {
                        self.queued_events -= 1;
                    }
                    self.outbox.pop_front();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::info!("broker: client socket failed: {e}");
                    self.dead = true;
                    self.outbox.clear();
                    return;
                }
            }
            if self.lost_events > 0 && self.queued_events < MAX_EVENTS {
                let count = std::mem::take(&mut self.lost_events);
                log::warn!("broker: a client lost {count} events (not reading them)");
                self.queued_events += 1;
                self.outbox.push_back(Outgoing {
                    packet: BrokerMessage::Event(
                        Event::EventsLost { count }.encode(self.generation),
                    )
                    .encode(0),
                    fd: None,
                    event: true,
                });
            }
        }
    }
}

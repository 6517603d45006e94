//! The player's end of the broker socket (spec §9): message tags, sending
//! without blocking forever on a broker that is not reading, and reading
//! packets into the queues the API takes from (replies by tag,
//! `COMPLETE`s by tag, events in order), so that a caller may dequeue what
//! arrived in any order.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::{MediaRedir, PlayerError};
use crate::seqpacket::{Received, wait_readable};
use mediaredir_proto::broker::{BrokerMessage, Sender};
use mediaredir_proto::event::Event;

impl MediaRedir {
    /// A new message tag (never 0: the broker's own events carry 0).
    pub(super) fn tag(&mut self) -> u32 {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        tag
    }

    pub(super) fn send(&mut self, tag: u32, message: &BrokerMessage) -> Result<(), PlayerError> {
        let packet = message.encode(tag);
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.conn.send(&packet, None) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The broker is not reading: take what it sent meanwhile
                    // (it may be waiting for us to drain), then retry.
                    self.pump(Some(Duration::from_millis(10)))?;
                    if Instant::now() >= deadline {
                        return Err(PlayerError::Timeout(self.timeout));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads one packet, waiting up to `wait` (`None`: do not wait).
    /// Returns whether one arrived.
    pub(super) fn pump(&mut self, wait: Option<Duration>) -> Result<bool, PlayerError> {
        if let Some(wait) = wait {
            // (No caller asks for a wait too long for a timespec.)
            wait_readable(&self.conn, wait)?;
        }
        let (len, fd) = match self.conn.recv(&mut self.buf) {
            Ok(Received::Packet { len, fd, .. }) => (len, fd),
            Ok(Received::Closed) => {
                return Err(
                    io::Error::new(io::ErrorKind::ConnectionReset, "the broker closed").into(),
                );
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let (tag, message) = BrokerMessage::decode(&self.buf[..len], Sender::Broker)?;
        match message {
            BrokerMessage::Event(raw) => {
                let (event, _) = Event::decode(&raw)?;
                self.events.push_back(event);
            }
            BrokerMessage::Complete { status } => {
                self.completions.insert(tag, status);
            }
            other => {
                self.replies.insert(tag, (other, fd));
            }
        }
        Ok(true)
    }

    /// Reads everything the socket holds now.
    pub(super) fn pump_all(&mut self) -> Result<(), PlayerError> {
        while self.pump(None)? {}
        Ok(())
    }

    /// Reads packets until `take` finds what it looks for, waiting at most
    /// the timeout (the blocking `DQBUF`s).
    pub(super) fn wait_for<R>(
        &mut self,
        mut take: impl FnMut(&mut MediaRedir) -> Option<R>,
    ) -> Result<R, PlayerError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PlayerError::Timeout(self.timeout));
            }
            self.pump(Some(left))?;
            if let Some(found) = take(self) {
                return Ok(found);
            }
        }
    }

    /// Sends `message` and waits for the reply with its tag.
    pub(super) fn request(
        &mut self,
        message: &BrokerMessage,
    ) -> Result<(BrokerMessage, Option<OwnedFd>), PlayerError> {
        let tag = self.tag();
        self.send(tag, message)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(reply) = self.replies.remove(&tag) {
                return Ok(reply);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PlayerError::Timeout(self.timeout));
            }
            self.pump(Some(left))?;
        }
    }
}

//! Counters of what the daemon did, readable by tests and logged at exit.
//!
//! `payload_bytes_copied` is the proof of the zero-copy rule: it counts every
//! payload byte the daemon copies in user space. It stays 0 on the local
//! uplink and on plain Unix/TCP sockets; TLS counts its copies (the payload
//! must be encrypted), and so will the Spice uplink's library copy.

use std::sync::atomic::{AtomicU64, Ordering};

/// Error kinds that are counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A descriptor chain that is structurally invalid.
    MalformedChain,
    /// A request or header with an invalid field.
    InvalidRequest,
    /// A request that is not legal in the current state.
    BadState,
    /// A limit was hit.
    Limit,
    /// A stale generation.
    Stale,
    /// The uplink failed.
    Uplink,
    /// An event was lost.
    EventLost,
}

/// The daemon's counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Streams created.
    pub streams_created: AtomicU64,
    /// Control requests answered.
    pub control_requests: AtomicU64,
    /// Data buffers taken from txqs.
    pub buffers: AtomicU64,
    /// Data buffers completed (any status).
    pub buffers_completed: AtomicU64,
    /// Payload bytes forwarded to the uplink.
    pub payload_bytes: AtomicU64,
    /// Payload bytes copied in user space.
    pub payload_bytes_copied: AtomicU64,
    /// Bytes the socket uplink wrote to its client (frame prefixes and
    /// FlatBuffers headers of every message, plus sample payloads): what the
    /// media costs on the wire before the transport's own framing.
    pub wire_bytes: AtomicU64,
    /// Events delivered to the guest.
    pub events: AtomicU64,
    errors: [AtomicU64; 7],
}

/// A plain copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Streams created.
    pub streams_created: u64,
    /// Control requests answered.
    pub control_requests: u64,
    /// Data buffers taken.
    pub buffers: u64,
    /// Data buffers completed.
    pub buffers_completed: u64,
    /// Payload bytes forwarded.
    pub payload_bytes: u64,
    /// Payload bytes copied in user space.
    pub payload_bytes_copied: u64,
    /// Bytes written to the uplink's client (headers and payloads).
    pub wire_bytes: u64,
    /// Events delivered.
    pub events: u64,
    /// Malformed chains.
    pub malformed_chains: u64,
    /// Invalid requests.
    pub invalid_requests: u64,
    /// Requests in a bad state.
    pub bad_state: u64,
    /// Limits hit.
    pub limit: u64,
    /// Stale generations.
    pub stale: u64,
    /// Uplink failures.
    pub uplink_errors: u64,
    /// Events lost.
    pub events_lost: u64,
}

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one error of `kind`.
    pub fn error(&self, kind: ErrorKind) {
        Self::add(&self.errors[kind as usize], 1);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let err = |k: ErrorKind| get(&self.errors[k as usize]);
        Snapshot {
            streams_created: get(&self.streams_created),
            control_requests: get(&self.control_requests),
            buffers: get(&self.buffers),
            buffers_completed: get(&self.buffers_completed),
            payload_bytes: get(&self.payload_bytes),
            payload_bytes_copied: get(&self.payload_bytes_copied),
            wire_bytes: get(&self.wire_bytes),
            events: get(&self.events),
            malformed_chains: err(ErrorKind::MalformedChain),
            invalid_requests: err(ErrorKind::InvalidRequest),
            bad_state: err(ErrorKind::BadState),
            limit: err(ErrorKind::Limit),
            stale: err(ErrorKind::Stale),
            uplink_errors: err(ErrorKind::Uplink),
            events_lost: err(ErrorKind::EventLost),
        }
    }
}

impl Snapshot {
    /// One line of `key=value` pairs, for logs and for tests that read the
    /// daemon's output.
    pub fn to_line(&self) -> String {
        format!(
            "counters: streams_created={} control_requests={} buffers={} buffers_completed={} \
             payload_bytes={} payload_bytes_copied={} wire_bytes={} events={} malformed_chains={} \
             invalid_requests={} bad_state={} limit={} stale={} uplink_errors={} events_lost={}",
            self.streams_created,
            self.control_requests,
            self.buffers,
            self.buffers_completed,
            self.payload_bytes,
            self.payload_bytes_copied,
            self.wire_bytes,
            self.events,
            self.malformed_chains,
            self.invalid_requests,
            self.bad_state,
            self.limit,
            self.stale,
            self.uplink_errors,
            self.events_lost,
        )
    }

    /// Parses a line written by [`Snapshot::to_line`].
    pub fn parse_line(line: &str) -> Option<Snapshot> {
        let rest = line.split("counters: ").nth(1)?;
        let mut s = Snapshot::default();
        for pair in rest.split_whitespace() {
            let (key, value) = pair.split_once('=')?;
            let value: u64 = value.parse().ok()?;
            let slot = match key {
                "streams_created" => &mut s.streams_created,
                "control_requests" => &mut s.control_requests,
                "buffers" => &mut s.buffers,
                "buffers_completed" => &mut s.buffers_completed,
                "payload_bytes" => &mut s.payload_bytes,
                "payload_bytes_copied" => &mut s.payload_bytes_copied,
                "wire_bytes" => &mut s.wire_bytes,
                "events" => &mut s.events,
                "malformed_chains" => &mut s.malformed_chains,
                "invalid_requests" => &mut s.invalid_requests,
                "bad_state" => &mut s.bad_state,
                "limit" => &mut s.limit,
                "stale" => &mut s.stale,
                "uplink_errors" => &mut s.uplink_errors,
                "events_lost" => &mut s.events_lost,
                _ => return None,
            };
            *slot = value;
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_round_trip() {
        let c = Counters::default();
        Counters::add(&c.payload_bytes, 1234);
        Counters::add(&c.wire_bytes, 1300);
        c.error(ErrorKind::Stale);
        c.error(ErrorKind::Stale);
        let snap = c.snapshot();
        assert_eq!(snap.payload_bytes, 1234);
        assert_eq!(snap.stale, 2);
        assert_eq!(snap.wire_bytes, 1300);
        assert_eq!(Snapshot::parse_line(&snap.to_line()), Some(snap));
    }
}

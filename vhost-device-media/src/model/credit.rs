//! Per-stream credit: how much a stream may have in flight.
//!
//! The device takes a buffer from a txq only while the stream's
//! unacknowledged payload stays within `max_inflight_bytes` and its
//! unacknowledged media within `max_inflight_ms` (spec, "Flow control"). A
//! buffer releases its credit when it completes, on whichever thread that
//! happens (uplink reader, GStreamer streaming thread, flush), so the credit is
//! shared and locked on its own, apart from the device model.

use std::collections::VecDeque;
use std::sync::Mutex;

/// One buffer in flight.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    seq: u64,
    bytes: u64,
    start_ns: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    bytes: u64,
    window: VecDeque<InFlight>,
    blocked: bool,
}

/// Credit of one stream.
#[derive(Debug)]
pub struct Credit {
    max_bytes: u64,
    max_ns: u64,
    state: Mutex<State>,
}

/// Outcome of a credit request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Taken: the buffer may go.
    Granted,
    /// Not now: wait for a release.
    Wait,
}

impl Credit {
    /// A credit of `max_bytes` payload bytes and `max_ms` of media.
    pub fn new(max_bytes: u32, max_ms: u32) -> Credit {
        Credit {
            max_bytes: u64::from(max_bytes),
            max_ns: u64::from(max_ms) * 1_000_000,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks for room for a buffer. An idle stream always gets one buffer,
    /// whatever its size, so a single large buffer cannot stall a stream.
    pub fn acquire(&self, seq: u64, bytes: u64, pts: Option<u64>, duration: Option<u64>) -> Grant {
        let mut s = self.lock();
        let end_ns = match (pts, duration) {
            (Some(p), Some(d)) => p.checked_add(d),
            (Some(p), None) => Some(p),
            _ => None,
        };
        if !s.window.is_empty() {
            let over_bytes = s.bytes + bytes > self.max_bytes;
            let first_start = s.window.iter().find_map(|f| f.start_ns);
            let over_time = match (first_start, end_ns) {
                (Some(start), Some(end)) => end.saturating_sub(start) > self.max_ns,
                _ => false,
            };
            if over_bytes || over_time {
                s.blocked = true;
                return Grant::Wait;
            }
        }
        s.bytes += bytes;
        s.window.push_back(InFlight {
            seq,
            bytes,
            start_ns: pts,
        });
        Grant::Granted
    }

    /// Returns the credit of buffer `seq`. Returns `true` when a sender was
    /// waiting for credit and should be woken.
    pub fn release(&self, seq: u64) -> bool {
        let mut s = self.lock();
        if let Some(pos) = s.window.iter().position(|f| f.seq == seq) {
            let Some(f) = s.window.remove(pos) else {
                return false;
            };
            s.bytes -= f.bytes;
        }
        std::mem::take(&mut s.blocked)
    }

    /// Bytes in flight.
    pub fn inflight_bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Buffers in flight.
    pub fn inflight_buffers(&self) -> usize {
        self.lock().window.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_bound_and_release_wakes() {
        let c = Credit::new(1000, 10_000);
        assert_eq!(c.acquire(1, 600, None, None), Grant::Granted);
        assert_eq!(c.acquire(2, 600, None, None), Grant::Wait);
        assert!(c.release(1));
        assert!(!c.release(1));
        assert_eq!(c.acquire(2, 600, None, None), Grant::Granted);
        assert_eq!(c.inflight_bytes(), 600);
    }

    #[test]
    fn an_idle_stream_takes_one_oversized_buffer() {
        let c = Credit::new(100, 10);
        assert_eq!(
            c.acquire(1, 5000, Some(0), Some(1_000_000_000)),
            Grant::Granted
        );
        assert_eq!(c.acquire(2, 1, Some(1_000_000_000), Some(1)), Grant::Wait);
    }

    #[test]
    fn duration_bound() {
        let ms = 1_000_000;
        let c = Credit::new(u32::MAX, 100);
        assert_eq!(c.acquire(1, 1, Some(0), Some(40 * ms)), Grant::Granted);
        assert_eq!(
            c.acquire(2, 1, Some(40 * ms), Some(40 * ms)),
            Grant::Granted
        );
        assert_eq!(c.acquire(3, 1, Some(80 * ms), Some(40 * ms)), Grant::Wait);
        c.release(1);
        assert_eq!(
            c.acquire(3, 1, Some(80 * ms), Some(40 * ms)),
            Grant::Granted
        );
        assert_eq!(c.inflight_buffers(), 2);
    }
}

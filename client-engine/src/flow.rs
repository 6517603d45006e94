//! Acknowledgement policy (spec 10.7): an acknowledgement returns a guest
//! buffer, so when the engine acknowledges decides how much compressed media
//! it holds. This module is the pure bookkeeping of one stream; the stream
//! feeds it "received" (pushed into `appsrc`) and "taken" (left `appsrc`
//! towards the decoder) and sends the acknowledgements it returns.
//!
//! - level below the low watermark: acknowledge on receipt;
//! - between the watermarks: acknowledge when the decoder takes a sample;
//! - at or above the high watermark (bytes or duration): withhold every
//!   acknowledgement until the level falls to the low watermark.

use std::collections::VecDeque;

use crate::config::Watermarks;

/// The bookkeeping of one stream's unacknowledged samples.
#[derive(Debug, Default)]
pub struct FlowBook {
    pending: VecDeque<(u64, u64, u64)>,
    level_bytes: u64,
    level_ns: u64,
    received: u64,
    acked: u64,
    withholding: bool,
}

impl FlowBook {
    /// A book with nothing received.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes received and not yet taken by the decoder.
    pub fn level_bytes(&self) -> u64 {
        self.level_bytes
    }

    /// Media duration (ns) received and not yet taken by the decoder.
    pub fn level_ns(&self) -> u64 {
        self.level_ns
    }

    /// Highest sequence number received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Highest sequence number acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    fn below_low(&self, wm: &Watermarks) -> bool {
        self.level_bytes <= wm.low_bytes && self.level_ns <= wm.low_ns
    }

    fn advance(&mut self, to: u64) -> Option<u64> {
        (to > self.acked).then(|| {
            self.acked = to;
            to
        })
    }

    /// Sample `seq` of `bytes` bytes and `ns` duration was received; returns
    /// the sequence number to acknowledge now, if any.
    pub fn on_received(&mut self, seq: u64, bytes: u64, ns: u64, wm: &Watermarks) -> Option<u64> {
        self.pending.push_back((seq, bytes, ns));
        self.level_bytes += bytes;
        self.level_ns += ns;
        self.received = self.received.max(seq);
        if self.level_bytes >= wm.high_bytes || self.level_ns >= wm.high_ns {
            self.withholding = true;
        }
        if !self.withholding && self.below_low(wm) {
            return self.advance(self.received);
        }
        None
    }

    /// The decoder took every sample up to `seq`; returns the sequence
    /// number to acknowledge now, if any.
    pub fn on_taken(&mut self, seq: u64, wm: &Watermarks) -> Option<u64> {
        while let Some(&(s, bytes, ns)) = self.pending.front() {
            if s > seq {
                break;
            }
            self.pending.pop_front();
            self.level_bytes -= bytes;
            self.level_ns -= ns;
        }
        if self.withholding {
            if !self.below_low(wm) {
                return None;
            }
            self.withholding = false;
        }
        if self.below_low(wm) {
            return self.advance(self.received);
        }
        self.advance(seq.min(self.received))
    }

    /// Everything received was discarded (flush, failure, destroy): returns
    /// the sequence number to acknowledge (with a non-`Ok` status), if any.
    pub fn on_discard(&mut self) -> Option<u64> {
        self.pending.clear();
        self.level_bytes = 0;
        self.level_ns = 0;
        self.withholding = false;
        self.advance(self.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WM: Watermarks = Watermarks {
        low_bytes: 100,
        high_bytes: 200,
        low_ns: 1000,
        high_ns: 2000,
    };

    #[test]
    fn below_low_acks_on_receipt() {
        let mut b = FlowBook::new();
        assert_eq!(b.on_received(1, 10, 10, &WM), Some(1));
        assert_eq!(b.on_received(2, 10, 10, &WM), Some(2));
        assert_eq!(b.on_taken(2, &WM), None);
        assert_eq!(b.level_bytes(), 0);
    }

    #[test]
    fn between_watermarks_acks_when_taken() {
        let mut b = FlowBook::new();
        assert_eq!(b.on_received(1, 90, 0, &WM), Some(1));
        assert_eq!(b.on_received(2, 50, 0, &WM), None);
        assert_eq!(b.on_received(3, 40, 0, &WM), None);
        // Takes 1: level 90 <= low: everything received is acknowledged.
        assert_eq!(b.on_taken(1, &WM), Some(3));
    }

    #[test]
    fn above_high_withholds_until_low() {
        let mut b = FlowBook::new();
        for seq in 1..=5 {
            b.on_received(seq, 50, 0, &WM);
        }
        // 250 bytes >= high: withholding.
        assert_eq!(b.acked(), 2);
        assert_eq!(b.on_taken(1, &WM), None); // 200
        assert_eq!(b.on_taken(2, &WM), None); // 150
        assert_eq!(b.on_taken(3, &WM), Some(5)); // 100 <= low
    }

    #[test]
    fn duration_watermark_counts() {
        let mut b = FlowBook::new();
        assert_eq!(b.on_received(1, 1, 2500, &WM), None);
        assert_eq!(b.on_taken(1, &WM), Some(1));
    }

    #[test]
    fn discard_acks_everything_once() {
        let mut b = FlowBook::new();
        b.on_received(1, 150, 0, &WM);
        b.on_received(2, 150, 0, &WM);
        assert_eq!(b.on_discard(), Some(2));
        assert_eq!(b.on_discard(), None);
        assert_eq!(b.level_bytes(), 0);
    }
}

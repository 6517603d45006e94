//! Captured samples waiting for capture-queue buffers (spec 7.10): kept in
//! arrival order across streams, bounded per stream by the device's
//! `max_inflight_bytes` and `max_inflight_ms`; a sample beyond that is
//! dropped on arrival.
//!
//! The capture queue itself is reached through [`CaptureSink`], which the
//! queue layer implements (`queues::capq`): the core and this backlog know
//! nothing of virtqueues or guest memory.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use mediaredir_proto::data::{DATA_HDR_SIZE, DataHeader};

/// What became of a sample offered to the capture queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Written into the buffer at the head of capq, which was completed.
    Written,
    /// The buffer at the head is too small for it; the buffer stays posted.
    TooSmall,
    /// No buffer is posted (or the queue is not running).
    NoBuffer,
}

/// Writes captured samples into the capture queue's posted buffers.
pub trait CaptureSink: Send + Sync {
    /// Writes `header` then `payload` into the next posted buffer.
    fn try_deliver(&self, header: &[u8; DATA_HDR_SIZE], payload: &[u8]) -> Delivery;
}

/// A sample accepted by the model, waiting for a buffer.
#[derive(Debug)]
pub struct Waiting {
    /// Header to write (generation, flags and lengths filled in).
    pub header: DataHeader,
    /// The client's sequence number (for its acknowledgement).
    pub seq: u64,
    /// The sample.
    pub payload: Vec<u8>,
}

/// What became of a waiting sample.
#[derive(Debug)]
pub enum Outcome {
    /// Written into a capq buffer.
    Delivered(Waiting),
    /// Dropped (no room).
    Dropped(Waiting),
}

/// Samples waiting for capq buffers, and the sink that writes them.
#[derive(Default)]
pub struct CaptureBacklog {
    sink: Option<Arc<dyn CaptureSink>>,
    waiting: VecDeque<Waiting>,
    /// Per stream: bytes and nanoseconds waiting.
    held: BTreeMap<u32, (u64, u64)>,
}

impl std::fmt::Debug for CaptureBacklog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureBacklog")
            .field("waiting", &self.waiting.len())
            .finish_non_exhaustive()
    }
}

impl CaptureBacklog {
    /// Where samples go from now on (`None` while capq is down).
    pub fn set_sink(&mut self, sink: Option<Arc<dyn CaptureSink>>) {
        self.sink = sink;
    }

    /// Queues `sample` unless its stream already holds `budget` (bytes,
    /// ms) of waiting samples; then it comes back as dropped.
    pub fn push(&mut self, sample: Waiting, budget: (u64, u64), out: &mut Vec<Outcome>) {
        let (bytes, ns) = self
            .held
            .get(&sample.header.stream_id)
            .copied()
            .unwrap_or((0, 0));
        let len = u64::from(sample.header.payload_len);
        let duration = sample.header.duration.unwrap_or(0);
        let over = bytes + len > budget.0 || ns + duration > budget.1.saturating_mul(1_000_000);
        if over && !self.waiting.is_empty() {
            out.push(Outcome::Dropped(sample));
            return;
        }
        let held = self.held.entry(sample.header.stream_id).or_default();
        held.0 += len;
        held.1 += duration;
        self.waiting.push_back(sample);
    }

    /// Writes waiting samples into posted buffers, in order, while there
    /// are buffers; a sample too large for the buffer at the head is
    /// dropped.
    pub fn drain(&mut self, out: &mut Vec<Outcome>) {
        let Some(sink) = self.sink.clone() else {
            return;
        };
        while let Some(front) = self.waiting.front() {
            let result = sink.try_deliver(&front.header.to_bytes(), &front.payload);
            if result == Delivery::NoBuffer {
                return;
            }
            let Some(sample) = self.waiting.pop_front() else {
                return;
            };
            if let Some(held) = self.held.get_mut(&sample.header.stream_id) {
                held.0 = held.0.saturating_sub(u64::from(sample.header.payload_len));
                held.1 = held.1.saturating_sub(sample.header.duration.unwrap_or(0));
            }
            out.push(match result {
                Delivery::Written => Outcome::Delivered(sample),
                _ => Outcome::Dropped(sample),
            });
        }
    }

    /// Takes every waiting sample (device reset).
    pub fn clear(&mut self) -> Vec<Waiting> {
        self.held.clear();
        self.waiting.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A sink with `n` buffers of `size` bytes.
    struct Buffers(Mutex<Vec<usize>>);

    impl CaptureSink for Buffers {
        fn try_deliver(&self, _: &[u8; 48], payload: &[u8]) -> Delivery {
            let mut b = self.0.lock().unwrap();
            match b.first().copied() {
                None => Delivery::NoBuffer,
                Some(size) if size < 48 + payload.len() => Delivery::TooSmall,
                Some(_) => {
                    b.remove(0);
                    Delivery::Written
                }
            }
        }
    }

    fn sample(stream: u32, len: u32) -> Waiting {
        Waiting {
            header: DataHeader {
                clip: Default::default(),
                stream_id: stream,
                generation: 1,
                flags: 0,
                payload_len: len,
                pts: None,
                dts: None,
                duration: Some(20_000_000),
            },
            seq: 1,
            payload: vec![0; len as usize],
        }
    }

    #[test]
    fn samples_wait_for_buffers_in_order_and_overflow_drops() {
        let mut b = CaptureBacklog::default();
        let mut out = Vec::new();
        for _ in 0..3 {
            b.push(sample(1, 100), (250, 1000), &mut out);
        }
        assert_eq!(out.len(), 1, "the third sample exceeds 250 bytes");
        assert!(matches!(out[0], Outcome::Dropped(_)));
        out.clear();
        b.drain(&mut out);
        assert!(out.is_empty(), "no sink, nothing written");
        let sink = Arc::new(Buffers(Mutex::new(vec![1000])));
        b.set_sink(Some(sink.clone()));
        b.drain(&mut out);
        assert_eq!(out.len(), 1);
        assert!(matches!(out[0], Outcome::Delivered(_)));
        sink.0.lock().unwrap().push(100);
        out.clear();
        b.drain(&mut out);
        assert!(
            matches!(out[..], [Outcome::Dropped(_)]),
            "too small: dropped"
        );
        assert!(b.clear().is_empty());
    }
}

//! The capture queue from the device's side (spec 7.10): buffers the driver
//! posted on capq are filled, one captured sample each, as samples arrive.
//!
//! Capture is the one direction where the device copies: the sample comes
//! off the client's connection into daemon memory and is written into the
//! guest's buffer (a few kbit/s to a few Mbit/s; playback, the heavy
//! direction, stays zero-copy). The writes are counted as copied bytes.

use std::sync::Arc;

use mediaredir_proto::data::DATA_HDR_SIZE;

use super::guest_bytes::{skip_bytes, write_scatter};
use super::{PostedBuffers, QueueName, Virtqueue};
use crate::capture::{CaptureSink, Delivery};
use crate::counters::Counters;

/// [`CaptureSink`] over the capture queue.
pub struct CapqSink(PostedBuffers);

impl CapqSink {
    /// A sink over the capture queue `queue`.
    pub fn new(queue: Arc<dyn Virtqueue>, indirect: bool, counters: Arc<Counters>) -> CapqSink {
        CapqSink(PostedBuffers {
            queue,
            indirect,
            counters,
            name: QueueName::Capture,
            min: DATA_HDR_SIZE,
        })
    }
}

impl CaptureSink for CapqSink {
    fn try_deliver(&self, header: &[u8; DATA_HDR_SIZE], payload: &[u8]) -> Delivery {
        let queue = &self.0.queue;
        let mem = queue.memory();
        let need = (DATA_HDR_SIZE + payload.len()) as u64;
        let Some(chain) = self.0.next(mem.as_ref()) else {
            return Delivery::NoBuffer;
        };
        if chain.writable_len() < need {
            // Too small for this sample: it stays at the head for the next
            // one (spec 7.10).
            queue.unpop();
            return Delivery::TooSmall;
        }
        let written = write_scatter(mem.as_ref(), &chain.writable, header);
        let rest = skip_bytes(chain.writable, DATA_HDR_SIZE as u64);
        let body = write_scatter(mem.as_ref(), &rest, payload);
        Counters::add(&self.0.counters.payload_bytes_copied, body as u64);
        let used = u32::try_from(written + body).unwrap_or(u32::MAX);
        queue.complete(chain.head, used);
        Delivery::Written
    }
}

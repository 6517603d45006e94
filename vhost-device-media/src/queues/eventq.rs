//! The event queue: buffers the driver posts there wait in the ring until
//! the device core has an event for one ([`EventSink`]).

use std::sync::Arc;

use mediaredir_proto::event::EVENT_SIZE;

use super::guest_bytes::write_scatter;
use super::{PostedBuffers, QueueName, Virtqueue};
use crate::core::EventSink;
use crate::counters::Counters;

/// Writes events into the event queue's posted buffers.
pub struct EventqSink(PostedBuffers);

impl EventqSink {
    /// A sink over the event queue `queue`.
    pub fn new(queue: Arc<dyn Virtqueue>, indirect: bool, counters: Arc<Counters>) -> EventqSink {
        EventqSink(PostedBuffers {
            queue,
            indirect,
            counters,
            name: QueueName::Event,
            min: EVENT_SIZE,
        })
    }
}

impl EventSink for EventqSink {
    fn try_deliver(&self, event: &[u8; EVENT_SIZE]) -> bool {
        let mem = self.0.queue.memory();
        let Some(chain) = self.0.next(mem.as_ref()) else {
            return false;
        };
        let n = write_scatter(mem.as_ref(), &chain.writable, event);
        self.0
            .queue
            .complete(chain.head, u32::try_from(n).unwrap_or(0));
        true
    }
}

//! The eventq: event buffers stay posted, and each one the device fills is
//! read, zeroed and posted again at once before its event is decoded.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediaredir_proto::ProtoError;
use mediaredir_proto::device::EVENTQ;
use mediaredir_proto::event::{EVENT_SIZE, Event};

use super::{DriverError, MediaDevice, next_used, notify_if_needed};
use crate::dma::{DmaBuffer, DmaMemory};
use crate::transport::Transport;
use crate::virtqueue::Virtqueue;

/// Event buffers posted on the eventq.
#[derive(Debug)]
pub(super) struct EventPool {
    buffer: DmaBuffer,
    by_head: HashMap<u16, usize>,
}

impl EventPool {
    /// Posts `wanted` event buffers on `eventq` (at least one, at most the
    /// queue size).
    pub(super) fn post(
        dma: &Arc<DmaMemory>,
        eventq: &mut Virtqueue,
        wanted: u16,
    ) -> Result<EventPool, DriverError> {
        let n = usize::from(wanted.min(eventq.size()).max(1));
        let buffer = dma.alloc(n * EVENT_SIZE, 64)?;
        let mut by_head = HashMap::with_capacity(n);
        for slot in 0..n {
            let segment = buffer.segment(slot * EVENT_SIZE, EVENT_SIZE)?;
            let head = eventq.add_chain(&[], &[segment])?;
            by_head.insert(head, slot);
        }
        Ok(EventPool { buffer, by_head })
    }
}

impl<T: Transport> MediaDevice<T> {
    /// The next event, waiting up to `timeout` (`None` on timeout), with the
    /// generation it carries. The event buffer is posted again at once.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<(Event, u32)>, DriverError> {
        let deadline = Instant::now() + timeout;
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        loop {
            let vq = &mut state.queues[usize::from(EVENTQ)];
            let Some(used) = next_used(&mut self.transport, vq, deadline)? else {
                return Ok(None);
            };
            let Some(slot) = state.events.by_head.remove(&used.head) else {
                log::warn!("eventq: used head {} is not an event buffer", used.head);
                continue;
            };
            let offset = slot * EVENT_SIZE;
            let bytes = state.events.buffer.read_vec(offset, EVENT_SIZE)?;
            // Repost at once, zeroed so a short write cannot show stale data.
            state.events.buffer.write_at(offset, &[0u8; EVENT_SIZE])?;
            let segment = state.events.buffer.segment(offset, EVENT_SIZE)?;
            let head = vq.add_chain(&[], &[segment])?;
            state.events.by_head.insert(head, slot);
            notify_if_needed(&mut self.transport, vq)?;
            if (used.len as usize) < EVENT_SIZE {
                return Err(ProtoError::Truncated {
                    what: "event",
                    need: EVENT_SIZE,
                    got: used.len as usize,
                }
                .into());
            }
            match Event::decode(&bytes) {
                // DRV-EVT-2: a newer device's event this driver does not
                // know is skipped, not an error.
                Err(ProtoError::UnknownEvent(kind)) => {
                    log::debug!("eventq: unknown event type {kind:#x} ignored");
                }
                decoded => return decoded.map(Some).map_err(Into::into),
            }
        }
    }
}

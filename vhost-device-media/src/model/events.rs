//! The device's pending events: what waits for the driver to post event
//! buffers.
//!
//! A guest that posts no event buffers must not make the daemon grow, so the
//! queue is bounded (spec: 256). Position, QoS and call statistics of one id
//! replace their older entry instead of queueing behind it; past the bound the
//! oldest events are dropped and counted, and an `EVENTS_LOST` event goes out
//! first once buffers are available again.

use std::collections::VecDeque;

use mediaredir_proto::event::Event;

/// Pending events a device keeps at most (spec, DEV-EVT).
pub const MAX_PENDING_EVENTS: usize = 256;

/// Bounded, coalescing queue of events waiting for event buffers.
#[derive(Debug, Default)]
pub struct EventQueue {
    pending: VecDeque<Event>,
    lost: u64,
}

impl EventQueue {
    /// Queues an event; returns how many events were dropped to make room.
    pub fn push(&mut self, event: Event) -> u64 {
        if let Some(slot) = self.pending.iter_mut().find(|e| e.coalesces_with(&event)) {
            *slot = event;
            return 0;
        }
        let mut dropped = 0;
        while self.pending.len() >= MAX_PENDING_EVENTS {
            self.pending.pop_front();
            dropped += 1;
        }
        self.lost += dropped;
        self.pending.push_back(event);
        dropped
    }

    /// The next event to deliver: `EVENTS_LOST` first when events were
    /// dropped.
    pub fn pop(&mut self) -> Option<Event> {
        if self.lost > 0 {
            let count = std::mem::take(&mut self.lost);
            return Some(Event::EventsLost { count });
        }
        self.pending.pop_front()
    }

    /// Puts back an event that could not be delivered (no room in the
    /// buffer), keeping it first.
    pub fn unpop(&mut self, event: Event) {
        match event {
            Event::EventsLost { count } => self.lost += count,
            other => self.pending.push_front(other),
        }
    }

    /// Whether anything waits.
    pub fn is_empty(&self) -> bool {
        self.lost == 0 && self.pending.is_empty()
    }

    /// Number of queued events.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Drops every pending event (device reset).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.lost = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_and_bounds() {
        let mut q = EventQueue::default();
        for i in 0..10 {
            q.push(Event::Position {
                presentation: 1,
                position_ns: i,
                buffered_ns: 0,
            });
        }
        assert_eq!(q.len(), 1);
        assert_eq!(
            q.pop(),
            Some(Event::Position {
                presentation: 1,
                position_ns: 9,
                buffered_ns: 0
            })
        );
        for i in 0..(u32::try_from(MAX_PENDING_EVENTS).unwrap() + 5) {
            q.push(Event::Eos { stream: i + 1 });
        }
        assert_eq!(q.len(), MAX_PENDING_EVENTS);
        assert_eq!(q.pop(), Some(Event::EventsLost { count: 5 }));
        assert_eq!(q.pop(), Some(Event::Eos { stream: 6 }));
        q.unpop(Event::Eos { stream: 6 });
        assert_eq!(q.pop(), Some(Event::Eos { stream: 6 }));
    }
}

//! Notification suppression: whether the device wants a kick for the
//! chains just published (`avail_event` with EVENT_IDX, else the used
//! ring's `VIRTQ_USED_F_NO_NOTIFY`), and the driver's own hint not to be
//! interrupted. Both read or write fields the other side may change at any
//! time, so the fences here are what keeps either side from missing a
//! notification.

use std::sync::atomic::{Ordering, fence};

use super::{VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_USED_F_NO_NOTIFY, Virtqueue};

/// `vring_need_event` of the virtio spec: whether moving an index from `old`
/// to `new` passes `event`.
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

impl Virtqueue {
    /// Whether the device wants a notification for the chains published
    /// since the last call (honours `avail_event` with EVENT_IDX, else
    /// `VIRTQ_USED_F_NO_NOTIFY`).
    pub fn needs_notify(&mut self) -> bool {
        // The avail.idx store must be visible before avail_event/flags are
        // read, or both sides could skip the notification.
        fence(Ordering::SeqCst);
        let old = self.kicked_avail;
        let new = self.avail_idx;
        self.kicked_avail = new;
        if old == new {
            return false;
        }
        if self.features.event_idx {
            match self
                .mem
                .load::<u16>(self.layout.avail_event(), Ordering::Acquire)
            {
                Ok(event) => need_event(event, new, old),
                Err(e) => {
                    log::error!("queue {}: avail_event unreadable: {e}", self.index);
                    true
                }
            }
        } else {
            match self.mem.load::<u16>(self.layout.used, Ordering::Acquire) {
                Ok(flags) => flags & VIRTQ_USED_F_NO_NOTIFY == 0,
                Err(e) => {
                    log::error!("queue {}: used flags unreadable: {e}", self.index);
                    true
                }
            }
        }
    }

    /// Asks the device not to interrupt (`VIRTQ_AVAIL_F_NO_INTERRUPT`; a
    /// hint that devices with EVENT_IDX ignore) or to interrupt again.
    pub fn set_interrupt_suppression(&mut self, suppress: bool) {
        let flags = if suppress {
            VIRTQ_AVAIL_F_NO_INTERRUPT
        } else {
            0
        };
        if let Err(e) = self.mem.store(self.layout.avail, flags, Ordering::Release) {
            log::error!("queue {}: avail flags unwritable: {e}", self.index);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::virtqueue::QueueFeatures;
    use crate::virtqueue::fake_device::setup;

    #[test]
    fn event_idx_notification_decisions() {
        let feats = QueueFeatures {
            event_idx: true,
            indirect: false,
        };
        let (mem, mut vq, mut dev) = setup(8, feats);
        let buf = mem.alloc(16, 8).unwrap();
        let seg = buf.whole().unwrap();
        // avail_event = 0: the device wants a kick when entry 0 is published.
        vq.add_chain(&[seg], &[]).unwrap();
        assert!(vq.needs_notify());
        // The device has not consumed anything: avail_event stays 0, so
        // publishing entry 1 needs no new kick.
        vq.add_chain(&[seg], &[]).unwrap();
        assert!(!vq.needs_notify());
        // The device consumes both and sets avail_event = 2.
        dev.pop().unwrap();
        dev.pop().unwrap();
        vq.add_chain(&[seg], &[]).unwrap();
        assert!(vq.needs_notify());
        // Batch: two chains at once, event inside the batch.
        dev.pop().unwrap();
        vq.add_chain(&[seg], &[]).unwrap();
        vq.add_chain(&[seg], &[]).unwrap();
        assert!(vq.needs_notify());
        // The driver's used_event follows what it consumed.
        assert_eq!(dev.used_event(), 0);
        dev.push_used(0, 0);
        vq.poll_used().unwrap();
        assert_eq!(dev.used_event(), 1);
        assert!(need_event(0, 1, 0));
        assert!(!need_event(5, 3, 2));
        assert!(need_event(0xffff, 0, 0xfffe), "wraps around");
    }

    #[test]
    fn no_notify_flag_without_event_idx() {
        let (mem, mut vq, _dev) = setup(8, QueueFeatures::default());
        let buf = mem.alloc(16, 8).unwrap();
        let seg = buf.whole().unwrap();
        mem.store(vq.layout().used, VIRTQ_USED_F_NO_NOTIFY, Ordering::Release)
            .unwrap();
        vq.add_chain(&[seg], &[]).unwrap();
        assert!(!vq.needs_notify());
        mem.store(vq.layout().used, 0u16, Ordering::Release)
            .unwrap();
        vq.add_chain(&[seg], &[]).unwrap();
        assert!(vq.needs_notify());
    }
}

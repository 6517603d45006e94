//! Reading the used ring, which the device writes and the driver must not
//! trust: `used.idx` is loaded with Acquire before its entries, an entry
//! for a head the driver does not hold (out of range, not in flight,
//! returned twice) is logged and skipped, a used length is clamped to the
//! chain's writable bytes, and with EVENT_IDX `used_event` is moved on so
//! the device interrupts at the next entry.

use std::sync::atomic::{Ordering, fence};

use super::{UsedElem, Virtqueue};

impl Virtqueue {
    fn used_idx(&self) -> u16 {
        self.mem
            .load::<u16>(self.layout.used + 2, Ordering::Acquire)
            .unwrap_or_else(|e| {
                log::error!("queue {}: used.idx unreadable: {e}", self.index);
                self.last_used
            })
    }

    /// Whether the device has returned entries not yet read. Call it after
    /// [`Virtqueue::poll_used`] found nothing and before sleeping on the
    /// transport: it orders the `used_event` update before the re-check.
    pub fn has_used(&self) -> bool {
        fence(Ordering::SeqCst);
        self.used_idx() != self.last_used
    }

    /// Reads the next used entry for a chain the driver holds, frees its
    /// descriptors and returns it. Entries for heads the driver does not
    /// hold (out of range, not in flight, already returned) are logged and
    /// skipped. With EVENT_IDX, `used_event` asks for a notification at the
    /// next entry.
    pub fn poll_used(&mut self) -> Option<UsedElem> {
        loop {
            let used_idx = self.used_idx();
            if used_idx == self.last_used {
                return None;
            }
            let pending = used_idx.wrapping_sub(self.last_used);
            if pending > self.size && !self.warned_overrun {
                self.warned_overrun = true;
                log::warn!(
                    "queue {}: device claims {pending} used entries in a queue of {}",
                    self.index,
                    self.size
                );
            }
            let slot = self.last_used & (self.size - 1);
            let mut entry = [0u8; 8];
            let read = self.mem.read(self.layout.used_elem(slot), &mut entry);
            self.last_used = self.last_used.wrapping_add(1);
            if self.features.event_idx
                && let Err(e) =
                    self.mem
                        .store(self.layout.used_event(), self.last_used, Ordering::Release)
            {
                log::error!("queue {}: used_event unwritable: {e}", self.index);
            }
            if let Err(e) = read {
                log::error!("queue {}: used entry unreadable: {e}", self.index);
                continue;
            }
            let [i0, i1, i2, i3, l0, l1, l2, l3] = entry;
            let id = u32::from_le_bytes([i0, i1, i2, i3]);
            let len = u32::from_le_bytes([l0, l1, l2, l3]);
            let held = u16::try_from(id)
                .ok()
                .filter(|&head| self.is_in_flight(head));
            let Some(head) = held else {
                log::warn!(
                    "queue {}: used entry for head {id} that the driver does not hold; ignored",
                    self.index
                );
                continue;
            };
            let Some(chain) = self.inflight[usize::from(head)].take() else {
                continue;
            };
            self.give_back(&chain.descs);
            let len = match chain.writable {
                Some(max) if u64::from(len) > max => {
                    log::warn!(
                        "queue {}: head {head} used length {len} exceeds its {max} writable bytes",
                        self.index
                    );
                    u32::try_from(max).unwrap_or(u32::MAX)
                }
                _ => len,
            };
            return Some(UsedElem { head, len });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::virtqueue::fake_device::setup;
    use crate::virtqueue::{QueueFeatures, UsedElem};

    #[test]
    fn unknown_and_duplicate_used_heads_are_skipped() {
        let (mem, mut vq, mut dev) = setup(8, QueueFeatures::default());
        let buf = mem.alloc(16, 8).unwrap();
        let head = vq.add_chain(&[], &[buf.whole().unwrap()]).unwrap();
        dev.pop().unwrap();
        dev.push_used(7, 1); // a free slot
        dev.push_used(1000, 1); // out of range
        dev.push_used(u32::MAX, 1);
        dev.push_used(u32::from(head), 1000); // longer than the buffer
        dev.push_used(u32::from(head), 1); // returned twice
        assert_eq!(vq.poll_used(), Some(UsedElem { head, len: 16 }));
        assert_eq!(vq.poll_used(), None);
        assert_eq!(vq.last_used_idx(), 5);
        assert_eq!(vq.num_free(), 8);
    }
}

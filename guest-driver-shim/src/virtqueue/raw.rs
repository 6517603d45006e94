//! The raw interface for conformance tests: writes arbitrary descriptor
//! entries (loops, out-of-range indices, wrong directions, indirect tables
//! of any length), publishes arbitrary heads and `avail.idx` values, and
//! reads descriptors back, so tests can feed a device malformed chains
//! while the queue keeps its own bookkeeping consistent.

use std::sync::atomic::{Ordering, fence};

use super::{DESC_SIZE, Inflight, QueueError, RawDesc, Virtqueue};
use crate::dma::DmaBuffer;

impl Virtqueue {
    /// First slot of `n` consecutive free descriptor slots.
    pub fn find_free_run(&self, n: u16) -> Option<u16> {
        let n = usize::from(n);
        if n == 0 {
            return Some(0);
        }
        let mut run = 0;
        for (slot, &free) in self.is_free.iter().enumerate() {
            run = if free { run + 1 } else { 0 };
            if run == n {
                return u16::try_from(slot + 1 - n).ok();
            }
        }
        None
    }

    /// Writes `descs[i]` verbatim into descriptor slot `first + i` (any
    /// address, length, flags and `next`: loops, out-of-range indices,
    /// wrong directions, indirect tables of any length) and publishes
    /// `head`, which may be any value, even outside the queue.
    ///
    /// The slots must be free. They stay reserved until the device returns
    /// `head` (when `head` is one of them) or, otherwise, until
    /// [`Virtqueue::reclaim_raw_orphans`] or the queue is dropped.
    pub fn add_raw_descriptors(
        &mut self,
        first: u16,
        descs: &[RawDesc],
        head: u16,
    ) -> Result<u16, QueueError> {
        let slots: Vec<u16> = (0..descs.len())
            .map(|i| {
                let slot = u32::from(first) + u32::try_from(i).unwrap_or(u32::MAX);
                u16::try_from(slot)
                    .ok()
                    .filter(|&s| self.is_free.get(usize::from(s)).copied().unwrap_or(false))
                    .ok_or(QueueError::SlotBusy(slot))
            })
            .collect::<Result<_, _>>()?;
        for &slot in &slots {
            self.is_free[usize::from(slot)] = false;
        }
        self.free.retain(|s| !slots.contains(s));
        for (desc, &slot) in descs.iter().zip(&slots) {
            self.write_desc(self.layout.desc_entry(slot), desc)?;
        }
        let tracked = slots.contains(&head) && !self.is_in_flight(head);
        if tracked {
            self.inflight[usize::from(head)] = Some(Inflight {
                descs: slots,
                _indirect: None,
                writable: None,
            });
        } else {
            self.raw_orphans.extend(slots);
        }
        self.publish(head)?;
        Ok(head)
    }

    /// Writes `descs` as a table in new DMA memory (for raw indirect
    /// descriptors); keep the buffer alive while the device may read it.
    pub fn write_raw_table(&self, descs: &[RawDesc]) -> Result<DmaBuffer, QueueError> {
        let table = self
            .mem
            .alloc((descs.len() * DESC_SIZE).max(DESC_SIZE), 16)?;
        for (i, desc) in descs.iter().enumerate() {
            self.write_desc(table.gpa() + (i * DESC_SIZE) as u64, desc)?;
        }
        Ok(table)
    }

    /// Stores `idx` as `avail.idx` without adding entries (e.g. to jump it
    /// by more than the queue size). The queue's own bookkeeping follows it.
    pub fn publish_raw_avail_idx(&mut self, idx: u16) -> Result<(), QueueError> {
        self.avail_idx = idx;
        fence(Ordering::Release);
        self.mem
            .store(self.layout.avail + 2, idx, Ordering::Release)?;
        Ok(())
    }

    /// Returns raw slots published under untracked heads to the free list.
    /// Only sound once the device can no longer read them (after a reset).
    pub fn reclaim_raw_orphans(&mut self) {
        let orphans = std::mem::take(&mut self.raw_orphans);
        self.give_back(&orphans);
    }

    /// Reads descriptor slot `index` as it is in memory.
    pub fn read_descriptor(&self, index: u16) -> Result<RawDesc, QueueError> {
        let mut bytes = [0u8; DESC_SIZE];
        self.mem
            .read(self.layout.desc_entry(index % self.size), &mut bytes)?;
        Ok(RawDesc::from_bytes(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtqueue::fake_device::setup;
    use crate::virtqueue::{QueueFeatures, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};

    #[test]
    fn raw_descriptors_are_written_verbatim() {
        let (_mem, mut vq, _dev) = setup(8, QueueFeatures::default());
        let first = vq.find_free_run(2).unwrap();
        let looped = [
            RawDesc {
                addr: 0xdead_beef_0000,
                len: u32::MAX,
                flags: VIRTQ_DESC_F_NEXT,
                next: first + 1,
            },
            RawDesc {
                addr: 0,
                len: 4,
                flags: VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE,
                next: first,
            },
        ];
        let head = vq.add_raw_descriptors(first, &looped, first).unwrap();
        assert_eq!(vq.read_descriptor(first).unwrap(), looped[0]);
        assert_eq!(vq.read_descriptor(first + 1).unwrap(), looped[1]);
        assert!(vq.is_in_flight(head));
        assert_eq!(vq.num_free(), 6);
        assert!(matches!(
            vq.add_raw_descriptors(first, &looped, first),
            Err(QueueError::SlotBusy(_))
        ));
        // A head outside the queue: published, slots kept as orphans.
        vq.add_raw_descriptors(first + 2, &looped[..1], 500)
            .unwrap();
        assert_eq!(vq.num_free(), 5);
        vq.reclaim_raw_orphans();
        assert_eq!(vq.num_free(), 6);
        let table = vq.write_raw_table(&looped).unwrap();
        assert_eq!(table.len(), 32);
        vq.publish_raw_avail_idx(1000).unwrap();
        assert_eq!(vq.avail_idx(), 1000);
    }
}

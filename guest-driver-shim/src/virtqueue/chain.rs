//! Building descriptor chains: checks a chain's segments against the
//! memory the device reaches (the queue's own DMA memory and any extra
//! memory such as a broker's buffer pools), translates them to the
//! device's view (hugepage memory becomes physical segments), takes free
//! slots and writes the chain directly into the descriptor table or into
//! an indirect table, then publishes its head.

use std::borrow::Cow;

use super::{
    DESC_SIZE, ExtraMemory, Inflight, QueueError, RawDesc, VIRTQ_DESC_F_INDIRECT,
    VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, Virtqueue,
};

impl Virtqueue {
    fn check_chain(
        &self,
        readable: &[(u64, u32)],
        writable: &[(u64, u32)],
    ) -> Result<usize, QueueError> {
        let total = readable.len() + writable.len();
        if total == 0 {
            return Err(QueueError::EmptyChain);
        }
        if total > usize::from(self.size) {
            return Err(QueueError::ChainTooLong {
                len: total,
                size: self.size,
            });
        }
        for &(addr, len) in readable.iter().chain(writable) {
            if !self.reaches(addr, u64::from(len)) {
                return Err(QueueError::BadSegment { addr, len });
            }
        }
        Ok(total)
    }

    /// The device's view of driver segments (borrowed when no memory is
    /// translated), checked against the queue size again since a segment
    /// may have become several. Each segment is translated by the memory
    /// that holds it (the queue's own or an extra one).
    fn device_view<'a>(
        &self,
        segments: &'a [(u64, u32)],
    ) -> Result<Cow<'a, [(u64, u32)]>, QueueError> {
        let extra = self.extra.as_ref().map(|e| {
            e.read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        });
        let extra = extra.unwrap_or_default();
        if !self.mem.is_translated() && extra.iter().all(|m| !m.is_translated()) {
            return Ok(Cow::Borrowed(segments));
        }
        let mut out = Vec::with_capacity(segments.len());
        for &(addr, len) in segments {
            let owner = if self.mem.contains(addr, u64::from(len)) {
                &self.mem
            } else {
                extra
                    .iter()
                    .find(|m| m.contains(addr, u64::from(len)))
                    .ok_or(QueueError::BadSegment { addr, len })?
            };
            out.extend(owner.device_segments(addr, len)?);
        }
        Ok(Cow::Owned(out))
    }

    fn check_device_len(&self, total: usize) -> Result<usize, QueueError> {
        if total > usize::from(self.size) {
            return Err(QueueError::ChainTooLong {
                len: total,
                size: self.size,
            });
        }
        Ok(total)
    }

    fn writable_len(writable: &[(u64, u32)]) -> u64 {
        writable.iter().map(|&(_, len)| u64::from(len)).sum()
    }

    /// Chained descriptors for `readable` then `writable` segments, where
    /// `index(i)` is the slot (or table position) of segment `i`.
    fn chain_descs(
        readable: &[(u64, u32)],
        writable: &[(u64, u32)],
        index: impl Fn(usize) -> u16,
    ) -> Vec<RawDesc> {
        let total = readable.len() + writable.len();
        readable
            .iter()
            .map(|&seg| (seg, 0))
            .chain(writable.iter().map(|&seg| (seg, VIRTQ_DESC_F_WRITE)))
            .enumerate()
            .map(|(i, ((addr, len), write))| {
                let last = i + 1 == total;
                RawDesc {
                    addr,
                    len,
                    flags: write | if last { 0 } else { VIRTQ_DESC_F_NEXT },
                    next: if last { 0 } else { index(i + 1) },
                }
            })
            .collect()
    }

    /// Lets buffers lie in `extra` memory too.
    pub fn set_extra_memory(&mut self, extra: ExtraMemory) {
        self.extra = Some(extra);
    }

    /// Whether `addr..addr + len` lies in memory the device reaches.
    fn reaches(&self, addr: u64, len: u64) -> bool {
        if self.mem.contains(addr, len) {
            return true;
        }
        self.extra.as_ref().is_some_and(|extra| {
            extra
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .any(|m| m.contains(addr, len))
        })
    }

    /// Adds a chain of direct descriptors: device-readable segments first,
    /// then device-writable ones (`(guest-physical address, length)`), and
    /// publishes it. Returns the head index, the chain's token until the
    /// device returns it. Does not notify: see [`Virtqueue::needs_notify`].
    pub fn add_chain(
        &mut self,
        readable: &[(u64, u32)],
        writable: &[(u64, u32)],
    ) -> Result<u16, QueueError> {
        self.check_chain(readable, writable)?;
        let readable = self.device_view(readable)?;
        let writable = self.device_view(writable)?;
        let total = self.check_device_len(readable.len() + writable.len())?;
        let (readable, writable) = (&*readable, &*writable);
        let slots = self.take_free(total)?;
        let descs = Self::chain_descs(readable, writable, |i| slots[i]);
        let result = descs
            .iter()
            .zip(&slots)
            .try_for_each(|(desc, &slot)| self.write_desc(self.layout.desc_entry(slot), desc));
        if let Err(e) = result {
            self.give_back(&slots);
            return Err(e);
        }
        let head = slots[0];
        self.inflight[usize::from(head)] = Some(Inflight {
            descs: slots,
            _indirect: None,
            writable: Some(Self::writable_len(writable)),
        });
        self.publish(head)?;
        Ok(head)
    }

    /// Adds a chain through an indirect descriptor table allocated in DMA
    /// memory (one slot of the queue), and publishes it. Needs
    /// `VIRTIO_F_INDIRECT_DESC`.
    pub fn add_indirect_chain(
        &mut self,
        readable: &[(u64, u32)],
        writable: &[(u64, u32)],
    ) -> Result<u16, QueueError> {
        if !self.features.indirect {
            return Err(QueueError::IndirectNotNegotiated);
        }
        self.check_chain(readable, writable)?;
        let readable = self.device_view(readable)?;
        let writable = self.device_view(writable)?;
        let total = self.check_device_len(readable.len() + writable.len())?;
        let (readable, writable) = (&*readable, &*writable);
        let table = self.mem.alloc_contiguous(total * DESC_SIZE, 16)?;
        let descs = Self::chain_descs(readable, writable, |i| {
            // `total <= size <= 32768`, so every position fits.
            u16::try_from(i).unwrap_or(u16::MAX)
        });
        for (i, desc) in descs.iter().enumerate() {
            self.write_desc(table.gpa() + (i * DESC_SIZE) as u64, desc)?;
        }
        let slots = self.take_free(1)?;
        let head = slots[0];
        let main = RawDesc {
            addr: self
                .mem
                .device_address(table.gpa(), (total * DESC_SIZE) as u64)?,
            len: u32::try_from(total * DESC_SIZE).unwrap_or(u32::MAX),
            flags: VIRTQ_DESC_F_INDIRECT,
            next: 0,
        };
        if let Err(e) = self.write_desc(self.layout.desc_entry(head), &main) {
            self.give_back(&slots);
            return Err(e);
        }
        self.inflight[usize::from(head)] = Some(Inflight {
            descs: slots,
            _indirect: Some(table),
            writable: Some(Self::writable_len(writable)),
        });
        self.publish(head)?;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::virtqueue::fake_device::{setup, translated};
    use crate::virtqueue::{QueueFeatures, UsedElem};

    #[test]
    fn extra_memory_segments_are_translated_by_their_own_memory() {
        let ring_mem = translated(1 << 46, (0..64).map(|i| 0x100_0000 + i * 4096).collect());
        let mut vq = Virtqueue::new(&ring_mem, 0, 8, QueueFeatures::default()).unwrap();
        let pool = translated(1 << 47, vec![0x20_0000, 0x7_0000]);
        let extra = ExtraMemory::default();
        vq.set_extra_memory(Arc::clone(&extra));
        let seg = ((1 << 47) + 4000, 200);
        assert!(matches!(
            vq.add_chain(&[seg], &[]),
            Err(QueueError::BadSegment { .. })
        ));
        extra.write().unwrap().push(Arc::clone(&pool));
        let head = vq.add_chain(&[seg], &[]).unwrap();
        let first = vq.read_descriptor(head).unwrap();
        assert_eq!((first.addr, first.len), (0x20_0000 + 4000, 96));
        assert_ne!(first.flags & VIRTQ_DESC_F_NEXT, 0);
        let second = vq.read_descriptor(first.next).unwrap();
        assert_eq!((second.addr, second.len), (0x7_0000, 104));
    }

    #[test]
    fn echo_through_a_fake_device() {
        let (mem, mut vq, mut dev) = setup(8, QueueFeatures::default());
        let out = mem.alloc(5, 8).unwrap();
        out.write_at(0, b"hello").unwrap();
        let inb = mem.alloc(16, 8).unwrap();
        let head = vq
            .add_chain(&[out.whole().unwrap()], &[inb.whole().unwrap()])
            .unwrap();
        assert_eq!(vq.num_free(), 6);
        assert!(vq.needs_notify());
        assert!(!vq.needs_notify(), "nothing new since the last decision");
        let (got_head, chain) = dev.pop().unwrap();
        assert_eq!(got_head, head);
        assert_eq!(chain, vec![(out.gpa(), 5, false), (inb.gpa(), 16, true)]);
        let data = mem.read_vec(chain[0].0, 5).unwrap();
        mem.write(chain[1].0, &data).unwrap();
        assert_eq!(vq.poll_used(), None);
        assert!(!vq.has_used());
        dev.push_used(u32::from(head), 5);
        assert!(vq.has_used());
        assert_eq!(vq.poll_used(), Some(UsedElem { head, len: 5 }));
        assert_eq!(inb.read_vec(0, 5).unwrap(), b"hello");
        assert_eq!(vq.num_free(), 8);
        assert_eq!(vq.in_flight(), 0);
    }

    #[test]
    fn free_list_reuse_and_queue_full() {
        let (mem, mut vq, mut dev) = setup(4, QueueFeatures::default());
        let buf = mem.alloc(64, 8).unwrap();
        let seg = buf.segment(0, 8).unwrap();
        let a = vq.add_chain(&[seg, seg], &[]).unwrap();
        let b = vq.add_chain(&[seg], &[seg]).unwrap();
        assert!(matches!(
            vq.add_chain(&[seg], &[]),
            Err(QueueError::Full { needed: 1, free: 0 })
        ));
        assert!(matches!(
            vq.add_chain(&[seg; 5], &[]),
            Err(QueueError::ChainTooLong { .. })
        ));
        assert!(matches!(
            vq.add_chain(&[], &[]),
            Err(QueueError::EmptyChain)
        ));
        assert!(matches!(
            vq.add_chain(&[(u64::MAX - 4, 8)], &[]),
            Err(QueueError::BadSegment { .. })
        ));
        let (h, _) = dev.pop().unwrap();
        assert_eq!(h, a);
        dev.push_used(u32::from(a), 0);
        assert_eq!(vq.poll_used().unwrap().head, a);
        assert_eq!(vq.num_free(), 2);
        let c = vq.add_chain(&[seg], &[seg]).unwrap();
        assert_eq!(c, a, "the freed slots are reused");
        assert!(vq.is_in_flight(b) && vq.is_in_flight(c));
        let (_, chain_b) = dev.pop().unwrap();
        assert_eq!(chain_b.len(), 2);
        let (_, chain_c) = dev.pop().unwrap();
        assert_eq!(chain_c, vec![(seg.0, 8, false), (seg.0, 8, true)]);
    }

    #[test]
    fn indirect_tables() {
        let feats = QueueFeatures {
            event_idx: false,
            indirect: true,
        };
        let (mem, mut vq, mut dev) = setup(4, feats);
        let free_before = mem.free_bytes();
        let buf = mem.alloc(256, 16).unwrap();
        let segs: Vec<(u64, u32)> = (0..3).map(|i| buf.segment(i * 16, 16).unwrap()).collect();
        let out = buf.segment(128, 64).unwrap();
        let head = vq.add_indirect_chain(&segs, &[out]).unwrap();
        assert_eq!(vq.num_free(), 3, "one slot for a chain of four");
        let main = vq.read_descriptor(head).unwrap();
        assert_eq!(main.flags, VIRTQ_DESC_F_INDIRECT);
        assert_eq!(main.len, 64);
        let (h, chain) = dev.pop().unwrap();
        assert_eq!(h, head);
        assert_eq!(chain.len(), 4);
        assert_eq!(chain[3], (out.0, 64, true));
        assert!(chain[..3].iter().all(|c| !c.2));
        dev.push_used(u32::from(head), 64);
        assert_eq!(vq.poll_used(), Some(UsedElem { head, len: 64 }));
        drop(buf);
        assert_eq!(mem.free_bytes(), free_before, "the table is freed");
        let (_, mut plain, _) = setup(4, QueueFeatures::default());
        assert!(matches!(
            plain.add_indirect_chain(&[(0x4000_0000, 1)], &[]),
            Err(QueueError::IndirectNotNegotiated)
        ));
    }
}

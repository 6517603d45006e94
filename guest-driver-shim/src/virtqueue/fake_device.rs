//! A device-side view of a split queue for the queue's unit tests: it pops
//! chains from the avail ring and pushes used entries (any id, even one the
//! driver never published), working on DMA memory as a real device would.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{
    DESC_SIZE, QueueFeatures, QueueLayout, RawDesc, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT,
    VIRTQ_DESC_F_WRITE, Virtqueue,
};
use crate::dma::DmaMemory;

/// A device-side view of a split queue, working on DMA memory like a
/// real device would (for tests only).
pub(crate) struct FakeDevice {
    pub(crate) mem: Arc<DmaMemory>,
    pub(crate) layout: QueueLayout,
    pub(crate) next_avail: u16,
    pub(crate) used_idx: u16,
    pub(crate) event_idx: bool,
}

/// A chain as the device sees it: `(addr, len, writable)` segments.
pub(crate) type Chain = Vec<(u64, u32, bool)>;

impl FakeDevice {
    pub(crate) fn new(mem: &Arc<DmaMemory>, layout: QueueLayout, event_idx: bool) -> Self {
        FakeDevice {
            mem: Arc::clone(mem),
            layout,
            next_avail: 0,
            used_idx: 0,
            event_idx,
        }
    }

    fn desc_at(&self, gpa: u64) -> RawDesc {
        let mut bytes = [0u8; DESC_SIZE];
        self.mem.read(gpa, &mut bytes).unwrap();
        RawDesc::from_bytes(&bytes)
    }

    /// Pops the next available head and walks its chain.
    pub(crate) fn pop(&mut self) -> Option<(u16, Chain)> {
        let avail_idx: u16 = self
            .mem
            .load(self.layout.avail + 2, Ordering::Acquire)
            .unwrap();
        if avail_idx == self.next_avail {
            return None;
        }
        let slot = self.next_avail % self.layout.size;
        let head: u16 = self
            .mem
            .load(self.layout.avail_elem(slot), Ordering::Relaxed)
            .unwrap();
        self.next_avail = self.next_avail.wrapping_add(1);
        if self.event_idx {
            self.mem
                .store(
                    self.layout.avail_event(),
                    self.next_avail,
                    Ordering::Release,
                )
                .unwrap();
        }
        let mut chain = Vec::new();
        let mut desc = self.desc_at(self.layout.desc_entry(head));
        if desc.flags & VIRTQ_DESC_F_INDIRECT != 0 {
            let table = desc.addr;
            let mut i = 0u16;
            loop {
                let d = self.desc_at(table + u64::from(i) * DESC_SIZE as u64);
                chain.push((d.addr, d.len, d.flags & VIRTQ_DESC_F_WRITE != 0));
                if d.flags & VIRTQ_DESC_F_NEXT == 0 {
                    break;
                }
                i = d.next;
            }
            return Some((head, chain));
        }
        loop {
            chain.push((desc.addr, desc.len, desc.flags & VIRTQ_DESC_F_WRITE != 0));
            if desc.flags & VIRTQ_DESC_F_NEXT == 0 {
                break;
            }
            desc = self.desc_at(self.layout.desc_entry(desc.next));
        }
        Some((head, chain))
    }

    /// Appends a used entry with an arbitrary id.
    pub(crate) fn push_used(&mut self, id: u32, len: u32) {
        let slot = self.used_idx % self.layout.size;
        let mut entry = [0u8; 8];
        entry[..4].copy_from_slice(&id.to_le_bytes());
        entry[4..].copy_from_slice(&len.to_le_bytes());
        self.mem.write(self.layout.used_elem(slot), &entry).unwrap();
        self.used_idx = self.used_idx.wrapping_add(1);
        self.mem
            .store(self.layout.used + 2, self.used_idx, Ordering::Release)
            .unwrap();
    }

    pub(crate) fn used_event(&self) -> u16 {
        self.mem
            .load(self.layout.used_event(), Ordering::Acquire)
            .unwrap()
    }
}

/// A queue of `size` descriptors in 1 MiB of memfd memory, and a fake
/// device on it.
pub(crate) fn setup(size: u16, features: QueueFeatures) -> (Arc<DmaMemory>, Virtqueue, FakeDevice) {
    let mem = DmaMemory::new_memfd(1 << 20, 0x4000_0000).unwrap();
    let vq = Virtqueue::new(&mem, 0, size, features).unwrap();
    let dev = FakeDevice::new(&mem, vq.layout(), features.event_idx);
    (mem, vq, dev)
}

/// 4 KiB of memfd memory at `driver_base` whose pages the device sees
/// at `pages` (a stand-in for hugepage memory).
pub(crate) fn translated(driver_base: u64, pages: Vec<u64>) -> Arc<DmaMemory> {
    use vm_memory::{FileOffset, MmapRegion};
    let size = pages.len() * 4096;
    let backing = DmaMemory::new_memfd(size, 0).unwrap();
    let file = backing.file().unwrap().try_clone().unwrap();
    let region = MmapRegion::from_file(FileOffset::new(file, 0), size).unwrap();
    let phys = crate::dma::PhysPages {
        page_size: 4096,
        pages,
    };
    DmaMemory::from_mmap_region_translated(region, driver_base, phys).unwrap()
}

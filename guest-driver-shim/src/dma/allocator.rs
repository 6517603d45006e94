//! Allocating DMA memory: a small first-fit allocator over the memory's
//! offsets (aligned for guest-physical addresses, coalescing freed blocks),
//! and the [`DmaMemory`] methods that hand out zeroed [`DmaBuffer`]s,
//! physically contiguous ones for rings and indirect tables.

use std::collections::BTreeMap;
use std::sync::{Arc, MutexGuard};

use super::{DmaBuffer, DmaError, DmaMemory};

/// Smallest allocation unit and default alignment of the allocator.
const MIN_ALIGN: u64 = 16;

/// Free-block bookkeeping (offsets relative to the region start).
#[derive(Debug, Default)]
pub(super) struct Allocator {
    /// Free blocks: start offset -> length.
    free: BTreeMap<u64, u64>,
    /// Allocated blocks: start offset -> length.
    used: BTreeMap<u64, u64>,
}

impl Allocator {
    pub(super) fn new(size: u64) -> Self {
        let mut free = BTreeMap::new();
        if size > 0 {
            free.insert(0, size);
        }
        Allocator {
            free,
            used: BTreeMap::new(),
        }
    }

    /// First fit; `base` is the guest-physical base so that the alignment
    /// holds for guest-physical addresses.
    fn alloc(&mut self, base: u64, size: u64, align: u64) -> Option<u64> {
        let size = size.max(1).checked_next_multiple_of(MIN_ALIGN)?;
        let align = align.max(MIN_ALIGN);
        let (start, len, offset) = self.free.iter().find_map(|(&start, &len)| {
            let gpa = base.checked_add(start)?;
            let aligned = gpa.checked_next_multiple_of(align)? - base;
            let end = aligned.checked_add(size)?;
            (end <= start + len).then_some((start, len, aligned))
        })?;
        self.free.remove(&start);
        if offset > start {
            self.free.insert(start, offset - start);
        }
        let end = offset + size;
        if end < start + len {
            self.free.insert(end, start + len - end);
        }
        self.used.insert(offset, size);
        Some(offset)
    }

    fn free(&mut self, offset: u64) -> bool {
        let Some(mut len) = self.used.remove(&offset) else {
            return false;
        };
        let mut start = offset;
        if let Some((&prev, &prev_len)) = self.free.range(..start).next_back()
            && prev + prev_len == start
        {
            self.free.remove(&prev);
            start = prev;
            len += prev_len;
        }
        if let Some(&next_len) = self.free.get(&(start + len)) {
            self.free.remove(&(start + len));
            len += next_len;
        }
        self.free.insert(start, len);
        true
    }

    fn free_bytes(&self) -> u64 {
        self.free.values().sum()
    }
}

impl DmaMemory {
    fn allocator(&self) -> MutexGuard<'_, Allocator> {
        // The allocator's invariants hold between statements, so a panic
        // elsewhere while holding the lock leaves it usable.
        self.allocator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Allocates `size` zeroed bytes whose guest-physical address is a
    /// multiple of `align` (a power of two; at least 16 is used).
    pub fn alloc(self: &Arc<Self>, size: usize, align: usize) -> Result<DmaBuffer, DmaError> {
        if !align.is_power_of_two() {
            return Err(DmaError::Invalid("alignment must be a power of two"));
        }
        let offset = self.allocator().alloc(self.base, size as u64, align as u64);
        let offset = offset.ok_or_else(|| DmaError::OutOfMemory {
            size: size as u64,
            align: align as u64,
            free: self.free_bytes(),
        })?;
        let buffer = DmaBuffer {
            mem: Arc::clone(self),
            gpa: self.base + offset,
            len: size,
        };
        self.fill(buffer.gpa, size, 0)?;
        Ok(buffer)
    }

    /// Like [`DmaMemory::alloc`], for memory the device must see as one
    /// physically contiguous range (rings, indirect tables). With hugepage
    /// memory a block of at most one page is aligned to its size rounded up
    /// to a power of two, so it never crosses a page boundary.
    pub fn alloc_contiguous(
        self: &Arc<Self>,
        size: usize,
        align: usize,
    ) -> Result<DmaBuffer, DmaError> {
        let align = match &self.phys {
            Some(phys) if (size as u64) <= phys.page_size => {
                align.max(size.max(1).next_power_of_two())
            }
            _ => align,
        };
        let buffer = self.alloc(size, align)?;
        self.device_address(buffer.gpa, size as u64)?;
        Ok(buffer)
    }

    /// Bytes not allocated (possibly fragmented).
    pub fn free_bytes(&self) -> u64 {
        self.allocator().free_bytes()
    }

    pub(super) fn release(&self, gpa: u64) {
        if !self.allocator().free(gpa - self.base) {
            log::error!("DMA block {gpa:#x} freed twice or never allocated");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_zeroed_and_reused() {
        let mem = DmaMemory::new_memfd(1 << 20, 0x10_0000).unwrap();
        assert_eq!(mem.free_bytes(), 1 << 20);
        let a = mem.alloc(100, 16).unwrap();
        assert_eq!(a.gpa() % 16, 0);
        a.write_at(0, &[0xaa; 100]).unwrap();
        let b = mem.alloc(10, 4096).unwrap();
        assert_eq!(b.gpa() % 4096, 0);
        assert!(mem.contains(b.gpa(), 10));
        let a_gpa = a.gpa();
        drop(a);
        let c = mem.alloc(100, 16).unwrap();
        assert_eq!(c.gpa(), a_gpa, "first fit reuses the freed block");
        assert_eq!(c.read_vec(0, 100).unwrap(), vec![0; 100], "zeroed");
        drop((b, c));
        assert_eq!(mem.free_bytes(), 1 << 20, "blocks coalesce");
        assert!(mem.alloc(2 << 20, 16).is_err());
    }
}

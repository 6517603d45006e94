//! Addresses: what the device must be given for a range of driver
//! addresses (the identity for memfd memory, physical pages for hugepage
//! memory, where a range crossing discontiguous pages becomes several
//! segments), and where a driver address lies in this process's mapping
//! (what vhost-user calls a "user address").

use super::{DmaError, DmaMemory, PhysPages};

impl DmaMemory {
    /// Whether driver addresses differ from device addresses (hugepage
    /// memory).
    pub fn is_translated(&self) -> bool {
        self.phys.is_some()
    }

    /// The physical pages behind translated (hugepage) memory.
    pub fn phys_pages(&self) -> Option<&PhysPages> {
        self.phys.as_ref()
    }

    /// What the device must be given for `len` bytes at driver address
    /// `gpa`: one `(device address, length)` segment per physically
    /// contiguous piece (exactly `[(gpa, len)]` for memfd memory).
    pub fn device_segments(&self, gpa: u64, len: u32) -> Result<Vec<(u64, u32)>, DmaError> {
        let out_of_range = DmaError::OutOfRange {
            gpa,
            len: u64::from(len),
        };
        if !self.contains(gpa, u64::from(len)) {
            return Err(out_of_range);
        }
        match &self.phys {
            None => Ok(vec![(gpa, len)]),
            Some(phys) => phys
                .segments(gpa - self.base, u64::from(len))
                .ok_or(out_of_range),
        }
    }

    /// The device address of `len` bytes at driver address `gpa`, which
    /// must be physically contiguous (rings, indirect tables).
    pub fn device_address(&self, gpa: u64, len: u64) -> Result<u64, DmaError> {
        if self.phys.is_none() {
            return if self.contains(gpa, len) {
                Ok(gpa)
            } else {
                Err(DmaError::OutOfRange { gpa, len })
            };
        }
        let len32 = u32::try_from(len).map_err(|_| DmaError::NotContiguous { gpa, len })?;
        match self.device_segments(gpa, len32)?.as_slice() {
            [(addr, _)] => Ok(*addr),
            _ => Err(DmaError::NotContiguous { gpa, len }),
        }
    }

    /// Host virtual address of guest-physical `gpa` in this process's
    /// mapping (what vhost-user calls a "user address").
    pub fn host_address(&self, gpa: u64) -> Option<u64> {
        self.contains(gpa, 0)
            .then(|| self.host as u64 + (gpa - self.base))
    }

    /// The descriptors (guest-physical address, length) that cover
    /// `offset..offset + len` of this memory: one per physically
    /// contiguous run, each at most `u32::MAX` bytes.
    pub fn segments(&self, offset: u64, len: u64) -> Result<Vec<(u64, u32)>, DmaError> {
        let out_of_range = DmaError::OutOfRange {
            gpa: self.base.saturating_add(offset),
            len,
        };
        let end = offset
            .checked_add(len)
            .ok_or(DmaError::Invalid("range overflows"))?;
        if end > self.size {
            return Err(out_of_range);
        }
        let mut out = Vec::new();
        let mut at = offset;
        while at < end {
            let run = (end - at).min(u64::from(u32::MAX));
            out.push((self.base + at, u32::try_from(run).unwrap_or(u32::MAX)));
            at += run;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use vm_memory::{FileOffset, MmapRegion};

    use super::*;

    #[test]
    fn memfd_memory_is_its_own_device_address() {
        let mem = DmaMemory::new_memfd(1 << 20, 0x10_0000).unwrap();
        assert!(!mem.is_translated());
        let buf = mem.alloc_contiguous(4096, 16).unwrap();
        assert_eq!(buf.segments(8, 100).unwrap(), vec![(buf.gpa() + 8, 100)]);
        assert_eq!(mem.device_address(buf.gpa(), 4096).unwrap(), buf.gpa());
        assert!(mem.device_address(0x10_0000 + (1 << 20), 1).is_err());
    }

    #[test]
    fn translated_memory_splits_and_keeps_rings_contiguous() {
        let region = {
            let mem = DmaMemory::new_memfd(4 * 4096, 0).unwrap();
            let file = mem.file().unwrap().try_clone().unwrap();
            MmapRegion::from_file(FileOffset::new(file, 0), 4 * 4096).unwrap()
        };
        // Pages 0/1 adjacent, 2 and 3 elsewhere.
        let phys = PhysPages {
            page_size: 4096,
            pages: vec![0x8000, 0x9000, 0x2_0000, 0x5_0000],
        };
        let mem = DmaMemory::from_mmap_region_translated(region, 1 << 40, phys).unwrap();
        assert!(mem.is_translated());
        assert_eq!(
            mem.device_segments((1 << 40) + 0x1ff0, 0x20).unwrap(),
            vec![(0x9ff0, 0x10), (0x2_0000, 0x10)]
        );
        assert!(matches!(
            mem.device_address((1 << 40) + 0x1ff0, 0x20),
            Err(DmaError::NotContiguous { .. })
        ));
        // Fill most of the memory so a naive placement would straddle.
        let _a = mem.alloc(0x1f00, 16).unwrap();
        let ring = mem.alloc_contiguous(0x200, 16).unwrap();
        assert_eq!(ring.gpa() % 0x200, 0);
        let addr = mem.device_address(ring.gpa(), 0x200).unwrap();
        ring.write_at(0, &[7; 0x200]).unwrap();
        assert_eq!(ring.segments(0, 0x200).unwrap(), vec![(addr, 0x200)]);
        let bad = PhysPages {
            page_size: 4096,
            pages: vec![0],
        };
        let region = MmapRegion::new(8192).unwrap();
        assert!(DmaMemory::from_mmap_region_translated(region, 0, bad).is_err());
    }
}

//! Hugepage-backed DMA memory for a real guest, and the translation from
//! the driver's addresses to the physical addresses the device sees.
//!
//! In a guest the device (QEMU, and the daemon through QEMU's memory table)
//! reaches guest-*physical* memory, while the driver runs in a process that
//! only has virtual addresses. Hugepages stay resident and do not move, so
//! their physical addresses, read once from `/proc/self/pagemap` (root
//! only: unprivileged readers get PFN 0), stay valid for the process's
//! lifetime. A 2 MiB hugepage is physically contiguous; two neighbouring
//! hugepages need not be, so the memory keeps one physical address per
//! page and a range crossing pages becomes several device segments.
//!
//! The driver keeps addressing the memory with its own linear "driver
//! addresses" (`DmaMemory::base()` + offset, as with the memfd memory); only
//! what goes into descriptors and queue registers is translated.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use rustix::fs::{MemfdFlags, memfd_create};
use vm_memory::{FileOffset, MmapRegion, VolatileMemory};

use super::DmaError;

/// Size of one hugepage (x86-64 default hugepage size).
pub const HUGEPAGE_SIZE: usize = 2 << 20;

/// Driver address of the first byte of hugepage memory. Far above any
/// guest RAM, so an untranslated address reaching the device is rejected
/// there instead of hitting unrelated memory.
pub const HUGEPAGE_DRIVER_BASE: u64 = 1 << 46;

/// Physical addresses of the pages of a DMA memory, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysPages {
    /// Page size (a power of two).
    pub page_size: u64,
    /// Physical address of each page.
    pub pages: Vec<u64>,
}

impl PhysPages {
    /// The device segments of `len` bytes at `offset` (from the start of
    /// the memory): split at page boundaries, physically adjacent pieces
    /// merged. `None` when the range leaves the memory or a piece is longer
    /// than `u32::MAX`.
    pub fn segments(&self, offset: u64, len: u64) -> Option<Vec<(u64, u32)>> {
        let end = offset.checked_add(len)?;
        if end > self.page_size.checked_mul(self.pages.len() as u64)? {
            return None;
        }
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut at = offset;
        while at < end {
            let page = usize::try_from(at / self.page_size).ok()?;
            let within = at % self.page_size;
            let n = (self.page_size - within).min(end - at);
            let phys = self.pages.get(page)?.checked_add(within)?;
            match out.last_mut() {
                Some((start, l)) if *start + *l == phys => *l += n,
                _ => out.push((phys, n)),
            }
            at += n;
        }
        if len == 0 {
            let page = usize::try_from(offset / self.page_size).ok()?;
            let phys = self
                .pages
                .get(page)
                .map_or(Some(0), |p| p.checked_add(offset % self.page_size))?;
            out.push((phys, 0));
        }
        out.into_iter()
            .map(|(a, l)| u32::try_from(l).ok().map(|l| (a, l)))
            .collect()
    }
}

impl PhysPages {
    /// How many physically contiguous runs the pages form (1: the whole
    /// memory is one physical range).
    pub fn runs(&self) -> usize {
        let adjacent = self
            .pages
            .windows(2)
            .filter(|w| w[0].checked_add(self.page_size) == Some(w[1]))
            .count();
        self.pages.len() - adjacent
    }
}

/// The physical frame number in a `/proc/self/pagemap` entry, when the page
/// is present and the PFN is visible (bits 0-54; bit 63 = present).
pub fn pagemap_pfn(entry: u64) -> Option<u64> {
    let present = entry & (1 << 63) != 0;
    let pfn = entry & ((1 << 55) - 1);
    (present && pfn != 0).then_some(pfn)
}

/// Reads the physical address of the (resident) byte at virtual `addr`.
fn physical_address(pagemap: &mut File, addr: u64) -> Result<u64, DmaError> {
    const SMALL_PAGE: u64 = 4096;
    let mut entry = [0u8; 8];
    pagemap
        .seek(SeekFrom::Start(addr / SMALL_PAGE * 8))
        .and_then(|_| pagemap.read_exact(&mut entry))
        .map_err(DmaError::Create)?;
    let pfn = pagemap_pfn(u64::from_le_bytes(entry)).ok_or(DmaError::Invalid(
        "no physical address in /proc/self/pagemap (not resident, or not root)",
    ))?;
    Ok(pfn * SMALL_PAGE + addr % SMALL_PAGE)
}

/// Creates `size` bytes (a multiple of [`HUGEPAGE_SIZE`]) of hugepage
/// memory: a `MFD_HUGETLB` memfd mapped shared and populated, locked in
/// RAM, every page touched; returns the mapping and each page's physical
/// address. Needs free hugepages (`/proc/sys/vm/nr_hugepages`) and root.
pub fn create(size: usize) -> Result<(MmapRegion, PhysPages), DmaError> {
    if size == 0 || !size.is_multiple_of(HUGEPAGE_SIZE) {
        return Err(DmaError::Invalid(
            "hugepage memory must be a nonzero multiple of 2 MiB",
        ));
    }
    let file = File::from(
        memfd_create(
            c"guest-driver-shim-hugepages",
            MemfdFlags::CLOEXEC | MemfdFlags::HUGETLB | MemfdFlags::HUGE_2MB,
        )
        .map_err(|e| DmaError::Create(e.into()))?,
    );
    file.set_len(size as u64).map_err(DmaError::Create)?;
    let region = vm_memory::mmap::MmapRegionBuilder::new(size)
        .with_mmap_prot(libc::PROT_READ | libc::PROT_WRITE)
        .with_mmap_flags(libc::MAP_SHARED | libc::MAP_POPULATE)
        .with_file_offset(FileOffset::new(file, 0))
        .with_hugetlbfs(true)
        .build()
        .map_err(|e| {
            DmaError::Map(format!(
                "{size} bytes of hugepages: {e} (enough free in /proc/sys/vm/nr_hugepages?)"
            ))
        })?;
    let host = region.as_ptr();
    // SAFETY: `host..host+size` is the mapping just made, owned by `region`,
    // which outlives this call; mlock only changes residency.
    if unsafe { libc::mlock(host.cast(), size) } != 0 {
        return Err(DmaError::Create(std::io::Error::last_os_error()));
    }
    let mut pagemap = File::open("/proc/self/pagemap").map_err(DmaError::Create)?;
    let mut pages = Vec::with_capacity(size / HUGEPAGE_SIZE);
    for page in 0..size / HUGEPAGE_SIZE {
        let offset = page * HUGEPAGE_SIZE;
        // A volatile write of one byte to memory nobody else uses yet makes
        // sure the page is resident before its address is read.
        region
            .get_ref::<u8>(offset)
            .map_err(|e| DmaError::Map(e.to_string()))?
            .store(0);
        pages.push(physical_address(&mut pagemap, host as u64 + offset as u64)?);
    }
    log::info!(
        "hugepage DMA memory: {} pages of 2 MiB, physical {:x?}",
        pages.len(),
        pages
    );
    Ok((
        region,
        PhysPages {
            page_size: HUGEPAGE_SIZE as u64,
            pages,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagemap_entries() {
        assert_eq!(pagemap_pfn(0), None, "not present");
        assert_eq!(pagemap_pfn(1 << 63), None, "present but PFN hidden");
        assert_eq!(pagemap_pfn((1 << 63) | 0x1234), Some(0x1234));
        assert_eq!(
            pagemap_pfn((1 << 63) | (1 << 62) | (1 << 55) | 0x42),
            Some(0x42),
            "flag bits above 54 are not part of the PFN"
        );
    }

    #[test]
    fn segments_split_at_discontiguous_pages() {
        let map = PhysPages {
            page_size: 0x1000,
            pages: vec![0x10000, 0x11000, 0x30000],
        };
        assert_eq!(map.segments(0x10, 0x20), Some(vec![(0x10010, 0x20)]));
        // Pages 0 and 1 are adjacent: one segment.
        assert_eq!(map.segments(0xff0, 0x20), Some(vec![(0x10ff0, 0x20)]));
        // Pages 1 and 2 are not.
        assert_eq!(
            map.segments(0x1ff0, 0x20),
            Some(vec![(0x11ff0, 0x10), (0x30000, 0x10)])
        );
        assert_eq!(
            map.segments(0, 0x3000),
            Some(vec![(0x10000, 0x2000), (0x30000, 0x1000)])
        );
        assert_eq!(map.segments(0x2fff, 2), None, "past the end");
        assert_eq!(map.segments(u64::MAX, 2), None);
        assert_eq!(map.segments(0x1004, 0), Some(vec![(0x11004, 0)]));
        assert_eq!(map.runs(), 2);
    }
}

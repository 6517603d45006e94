//! DMA memory: the part of "guest RAM" the driver shares with the device.
//!
//! The driver core never sees how the memory reaches the device. It only sees
//! one [`DmaMemory`]: a range of guest-physical addresses (what goes into
//! descriptors and queue addresses) backed by a host mapping (what the driver
//! itself reads and writes). For the vhost-user transport the backing is a
//! memfd mapped `MAP_SHARED` that the daemon maps too; on a real guest it is
//! hugepage memory whose physical address comes from `/proc/self/pagemap`.
//!
//! The device may write this memory at any time, so nothing here ever makes a
//! Rust reference (`&[u8]`, `&mut [u8]`) to it: every access is a volatile
//! copy or an atomic load/store through vm-memory's `Bytes` interface.
//!
//! With hugepage memory ([`DmaMemory::new_hugepages`], see [`hugepage`]) the
//! driver's addresses are not what the device sees: descriptors and queue
//! registers get [`DmaMemory::device_segments`] /
//! [`DmaMemory::device_address`], which are the identity for memfd memory.
//!
//! A small first-fit allocator hands out aligned blocks as [`DmaBuffer`]s,
//! which give their block back when dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use vm_memory::{
    AtomicAccess, Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap,
    GuestRegionMmap, MmapRegion,
};

pub mod hugepage;

pub use hugepage::{HUGEPAGE_DRIVER_BASE, HUGEPAGE_SIZE, PhysPages};

/// Default size of the memfd-backed DMA memory (64 MiB).
pub const DEFAULT_DMA_SIZE: usize = 64 << 20;

/// Smallest allocation unit and default alignment of the allocator.
const MIN_ALIGN: u64 = 16;

/// Why a DMA memory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DmaError {
    /// The backing memory could not be created.
    #[error("cannot create DMA memory: {0}")]
    Create(#[source] std::io::Error),
    /// The backing memory could not be mapped.
    #[error("cannot map DMA memory: {0}")]
    Map(String),
    /// A size, base or alignment is not acceptable.
    #[error("invalid DMA request: {0}")]
    Invalid(&'static str),
    /// No free block is large enough.
    #[error("out of DMA memory: {size} bytes aligned to {align} requested, {free} bytes free")]
    OutOfMemory {
        /// Bytes requested.
        size: u64,
        /// Alignment requested.
        align: u64,
        /// Bytes free in total (possibly fragmented).
        free: u64,
    },
    /// A range that must be physically contiguous (a ring, an indirect
    /// table) spans pages that are not.
    #[error("{gpa:#x}+{len} is not physically contiguous")]
    NotContiguous {
        /// Driver address of the range.
        gpa: u64,
        /// Its length.
        len: u64,
    },
    /// An access falls outside the DMA memory.
    #[error("access {gpa:#x}+{len} is outside the DMA memory")]
    OutOfRange {
        /// Guest-physical address of the access.
        gpa: u64,
        /// Length of the access.
        len: u64,
    },
}

/// Free-block bookkeeping (offsets relative to the region start).
#[derive(Debug, Default)]
struct Allocator {
    /// Free blocks: start offset -> length.
    free: BTreeMap<u64, u64>,
    /// Allocated blocks: start offset -> length.
    used: BTreeMap<u64, u64>,
}

impl Allocator {
    fn new(size: u64) -> Self {
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

/// A contiguous range of guest-physical memory with a host mapping and an
/// allocator. Shared (`Arc`) between the transport, the driver and every
/// buffer allocated from it.
pub struct DmaMemory {
    mem: GuestMemoryMmap,
    base: u64,
    size: u64,
    host: usize,
    allocator: Mutex<Allocator>,
    /// Physical pages when driver addresses are not device addresses
    /// (hugepage memory); `None`: the identity.
    phys: Option<PhysPages>,
}

impl fmt::Debug for DmaMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaMemory")
            .field("base", &format_args!("{:#x}", self.base))
            .field("size", &self.size)
            .field("host", &format_args!("{:#x}", self.host))
            .finish()
    }
}

impl DmaMemory {
    /// Creates DMA memory backed by a new memfd of `size` bytes (fixed for
    /// its lifetime), mapped shared, whose guest-physical base is `gpa_base`.
    pub fn new_memfd(size: usize, gpa_base: u64) -> Result<Arc<DmaMemory>, DmaError> {
        if size == 0 || !size.is_multiple_of(4096) {
            return Err(DmaError::Invalid("size must be a nonzero multiple of 4096"));
        }
        let name = c"guest-driver-shim-dma";
        // SAFETY: `name` is a valid NUL-terminated string; memfd_create has no
        // other memory-safety preconditions.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(DmaError::Create(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just returned by memfd_create and is owned by
        // nobody else.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(size as u64).map_err(DmaError::Create)?;
        let region = MmapRegion::from_file(FileOffset::new(file, 0), size)
            .map_err(|e| DmaError::Map(e.to_string()))?;
        Self::from_mmap_region(region, gpa_base)
    }

    /// Wraps an existing mapping (e.g. hugepages of a real guest whose
    /// physical base address is `gpa_base`).
    pub fn from_mmap_region(region: MmapRegion, gpa_base: u64) -> Result<Arc<DmaMemory>, DmaError> {
        Self::build(region, gpa_base, None)
    }

    /// Creates `size` bytes (a multiple of 2 MiB) of hugepage memory whose
    /// device addresses are the physical addresses of its pages (see
    /// [`hugepage`]); the driver addresses start at
    /// [`HUGEPAGE_DRIVER_BASE`]. For a real guest; needs root and free
    /// hugepages.
    pub fn new_hugepages(size: usize) -> Result<Arc<DmaMemory>, DmaError> {
        Self::new_hugepages_at(size, HUGEPAGE_DRIVER_BASE)
    }

    /// Like [`DmaMemory::new_hugepages`], with driver addresses from
    /// `driver_base` (several memories, e.g. a broker's buffer pools, need
    /// disjoint driver address ranges).
    pub fn new_hugepages_at(size: usize, driver_base: u64) -> Result<Arc<DmaMemory>, DmaError> {
        let (region, phys) = hugepage::create(size)?;
        Self::from_mmap_region_translated(region, driver_base, phys)
    }

    /// Wraps a mapping whose pages the device sees at `phys` (one address
    /// per page, covering the whole mapping); driver addresses start at
    /// `driver_base`.
    pub fn from_mmap_region_translated(
        region: MmapRegion,
        driver_base: u64,
        phys: PhysPages,
    ) -> Result<Arc<DmaMemory>, DmaError> {
        let covered = phys.page_size.checked_mul(phys.pages.len() as u64);
        if !phys.page_size.is_power_of_two() || covered != Some(region.size() as u64) {
            return Err(DmaError::Invalid(
                "physical pages must cover the mapping exactly",
            ));
        }
        Self::build(region, driver_base, Some(phys))
    }

    fn build(
        region: MmapRegion,
        gpa_base: u64,
        phys: Option<PhysPages>,
    ) -> Result<Arc<DmaMemory>, DmaError> {
        let size = region.size() as u64;
        let host = region.as_ptr() as usize;
        let guest_region = GuestRegionMmap::new(region, GuestAddress(gpa_base))
            .ok_or(DmaError::Invalid("region end overflows the address space"))?;
        let mem = GuestMemoryMmap::from_regions(vec![guest_region])
            .map_err(|e| DmaError::Map(e.to_string()))?;
        log::debug!("DMA memory: {size} bytes at guest-physical {gpa_base:#x}, host {host:#x}");
        Ok(Arc::new(DmaMemory {
            mem,
            base: gpa_base,
            size,
            host,
            allocator: Mutex::new(Allocator::new(size)),
            phys,
        }))
    }

    /// Guest-physical address of the first byte.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether `gpa..gpa+len` lies inside the memory.
    pub fn contains(&self, gpa: u64, len: u64) -> bool {
        gpa >= self.base
            && gpa
                .checked_add(len)
                .is_some_and(|end| end <= self.base + self.size)
    }

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

    /// The vm-memory region (the vhost-user transport builds its memory
    /// table from it).
    pub fn guest_region(&self) -> &GuestRegionMmap {
        // The memory holds exactly one region, created in `from_mmap_region`.
        self.mem
            .find_region(GuestAddress(self.base))
            .expect("DMA memory holds its one region")
    }

    /// The backing file, when the memory is file-backed (memfd).
    pub fn file(&self) -> Option<&File> {
        self.guest_region().file_offset().map(FileOffset::file)
    }

    /// Raw fd of the backing file, when there is one.
    pub fn raw_fd(&self) -> Option<i32> {
        self.file().map(AsRawFd::as_raw_fd)
    }

    fn check(&self, gpa: u64, len: usize) -> Result<GuestAddress, DmaError> {
        if self.contains(gpa, len as u64) {
            Ok(GuestAddress(gpa))
        } else {
            Err(DmaError::OutOfRange {
                gpa,
                len: len as u64,
            })
        }
    }

    /// Copies `data` into the memory at `gpa` (volatile copy).
    pub fn write(&self, gpa: u64, data: &[u8]) -> Result<(), DmaError> {
        let addr = self.check(gpa, data.len())?;
        self.mem
            .write_slice(data, addr)
            .map_err(|_| DmaError::OutOfRange {
                gpa,
                len: data.len() as u64,
            })
    }

    /// Copies memory at `gpa` into `buf` (volatile copy).
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let addr = self.check(gpa, buf.len())?;
        self.mem
            .read_slice(buf, addr)
            .map_err(|_| DmaError::OutOfRange {
                gpa,
                len: buf.len() as u64,
            })
    }

    /// Reads `len` bytes at `gpa` into a new vector.
    pub fn read_vec(&self, gpa: u64, len: usize) -> Result<Vec<u8>, DmaError> {
        let mut out = vec![0u8; len];
        self.read(gpa, &mut out)?;
        Ok(out)
    }

    /// Fills `len` bytes at `gpa` with `byte`.
    pub fn fill(&self, gpa: u64, len: usize, byte: u8) -> Result<(), DmaError> {
        self.check(gpa, len)?;
        let chunk = [byte; 4096];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            self.write(gpa + done as u64, &chunk[..n])?;
            done += n;
        }
        Ok(())
    }

    /// Atomic store of a naturally aligned integer (ring indices, flags).
    pub fn store<T: AtomicAccess>(
        &self,
        gpa: u64,
        value: T,
        order: Ordering,
    ) -> Result<(), DmaError> {
        let addr = self.check(gpa, size_of::<T>())?;
        self.mem
            .store(value, addr, order)
            .map_err(|_| DmaError::OutOfRange {
                gpa,
                len: size_of::<T>() as u64,
            })
    }

    /// Atomic load of a naturally aligned integer (ring indices, flags).
    pub fn load<T: AtomicAccess>(&self, gpa: u64, order: Ordering) -> Result<T, DmaError> {
        let addr = self.check(gpa, size_of::<T>())?;
        self.mem
            .load(addr, order)
            .map_err(|_| DmaError::OutOfRange {
                gpa,
                len: size_of::<T>() as u64,
            })
    }

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

    fn release(&self, gpa: u64) {
        if !self.allocator().free(gpa - self.base) {
            log::error!("DMA block {gpa:#x} freed twice or never allocated");
        }
    }
}

/// A block of DMA memory, freed when dropped.
///
/// Never drop a buffer the device may still access: the driver keeps the
/// buffers of a chain until the device returns the chain or is reset.
pub struct DmaBuffer {
    mem: Arc<DmaMemory>,
    gpa: u64,
    len: usize,
}

impl fmt::Debug for DmaBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaBuffer")
            .field("gpa", &format_args!("{:#x}", self.gpa))
            .field("len", &self.len)
            .finish()
    }
}

impl DmaBuffer {
    /// Guest-physical address of the first byte.
    pub fn gpa(&self) -> u64 {
        self.gpa
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memory the buffer lives in.
    pub fn memory(&self) -> &Arc<DmaMemory> {
        &self.mem
    }

    /// `(gpa, len)` of `len` bytes at `offset`, as a descriptor segment.
    pub fn segment(&self, offset: usize, len: usize) -> Result<(u64, u32), DmaError> {
        let out_of_range = DmaError::OutOfRange {
            gpa: self.gpa + offset as u64,
            len: len as u64,
        };
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(out_of_range);
        }
        let len = u32::try_from(len).map_err(|_| out_of_range)?;
        Ok((self.gpa + offset as u64, len))
    }

    /// The device segments of `len` bytes at `offset` (several when the
    /// range spans physically discontiguous hugepages; see
    /// [`DmaMemory::device_segments`]).
    pub fn segments(&self, offset: usize, len: usize) -> Result<Vec<(u64, u32)>, DmaError> {
        let (gpa, len) = self.segment(offset, len)?;
        self.mem.device_segments(gpa, len)
    }

    /// The whole buffer as a descriptor segment.
    pub fn whole(&self) -> Result<(u64, u32), DmaError> {
        self.segment(0, self.len)
    }

    fn range(&self, offset: usize, len: usize) -> Result<u64, DmaError> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(DmaError::OutOfRange {
                gpa: self.gpa.saturating_add(offset as u64),
                len: len as u64,
            });
        }
        Ok(self.gpa + offset as u64)
    }

    /// Copies `data` into the buffer at `offset`.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), DmaError> {
        let gpa = self.range(offset, data.len())?;
        self.mem.write(gpa, data)
    }

    /// Copies buffer bytes at `offset` into `buf`.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), DmaError> {
        let gpa = self.range(offset, buf.len())?;
        self.mem.read(gpa, buf)
    }

    /// Reads `len` bytes at `offset` into a new vector.
    pub fn read_vec(&self, offset: usize, len: usize) -> Result<Vec<u8>, DmaError> {
        let mut out = vec![0u8; len];
        self.read_at(offset, &mut out)?;
        Ok(out)
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        self.mem.release(self.gpa);
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

    #[test]
    fn bounds_are_checked() {
        let mem = DmaMemory::new_memfd(4096, 0).unwrap();
        assert!(mem.write(4090, &[0; 7]).is_err());
        assert!(mem.write(u64::MAX, &[0; 1]).is_err());
        mem.write(4089, &[1; 7]).unwrap();
        let buf = mem.alloc(8, 8).unwrap();
        assert!(buf.write_at(4, &[0; 5]).is_err());
        assert!(buf.segment(8, 1).is_err());
        mem.store::<u16>(buf.gpa(), 0xbeef, Ordering::Release)
            .unwrap();
        assert_eq!(
            mem.load::<u16>(buf.gpa(), Ordering::Acquire).unwrap(),
            0xbeef
        );
        assert_eq!(
            mem.host_address(0),
            Some(mem.guest_region().as_ptr() as u64)
        );
        assert!(mem.raw_fd().is_some());
    }

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

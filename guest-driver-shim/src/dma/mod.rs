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
//!
//! One file per job: `allocator` (the first-fit allocator and
//! [`DmaMemory::alloc`]), `buffer` ([`DmaBuffer`]), `access` (volatile and
//! atomic reads and writes), `address` (driver addresses to device
//! addresses and host addresses), [`hugepage`] (hugepage memory and its
//! physical pages). This file holds the memory itself and how it is made.

use std::fmt;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use vm_memory::{
    FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestRegionMmap, MmapRegion,
};

mod access;
mod address;
mod allocator;
mod buffer;
pub mod hugepage;

use allocator::Allocator;
pub use buffer::DmaBuffer;
pub use hugepage::{HUGEPAGE_DRIVER_BASE, HUGEPAGE_SIZE, PhysPages};

/// Default size of the memfd-backed DMA memory (64 MiB).
pub const DEFAULT_DMA_SIZE: usize = 64 << 20;

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
        let file = File::from(
            rustix::fs::memfd_create(c"guest-driver-shim-dma", rustix::fs::MemfdFlags::CLOEXEC)
                .map_err(|e| DmaError::Create(e.into()))?,
        );
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
}

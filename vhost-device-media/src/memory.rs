//! Guest memory as the device sees it: one small object-safe trait,
//! [`GuestRam`], so that queue processing, guest buffers and the core never
//! name a memory type. The vhost-user adapter hands in QEMU's shared guest
//! RAM (vm-memory's `GuestMemoryMmap`); tests hand in plain anonymous memory;
//! both go through the one implementation below for every vm-memory
//! [`GuestMemoryBackend`].
//!
//! The device reads and writes only the few bytes it owns (descriptors,
//! headers, requests, responses, statuses) through [`GuestRam::read_at`] and
//! [`GuestRam::write_at`]; the payload is never read: [`GuestRam::map`] turns it
//! into [`RawSlice`]s, host addresses that an uplink passes to `writev` or
//! wraps as GStreamer memory while the `Arc<dyn GuestRam>` that produced them
//! keeps the mapping alive.

use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryRegion, MemoryRegionAddress,
};

/// One contiguous piece of payload in the host's mapping of guest memory.
#[derive(Debug, Clone, Copy)]
pub struct RawSlice {
    /// Start in the daemon's address space.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

// SAFETY: a RawSlice is an address and a length; it is only dereferenced (by
// writev or GStreamer) while the GuestBuffer that owns it, and with it the
// Arc keeping the mapping alive, exists. Memory behind it is shared with the
// guest and only ever accessed as raw bytes, never as a Rust reference.
unsafe impl Send for RawSlice {}
// SAFETY: as above; the slice itself is immutable.
unsafe impl Sync for RawSlice {}

/// A guest address range that is not (entirely) guest memory.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error("{addr:#x}+{len} is not in guest memory")]
pub struct OutOfRange {
    /// Guest address.
    pub addr: u64,
    /// Length.
    pub len: usize,
}

/// Guest memory, as the device's queues and buffers use it.
pub trait GuestRam: Send + Sync {
    /// Copies `buf.len()` bytes at `addr` out of guest memory.
    fn read_at(&self, addr: GuestAddress, buf: &mut [u8]) -> Result<(), OutOfRange>;

    /// Copies `bytes` into guest memory at `addr`.
    fn write_at(&self, addr: GuestAddress, bytes: &[u8]) -> Result<(), OutOfRange>;

    /// Whether `[addr, addr + len)` lies entirely in guest memory (regions
    /// may be adjacent). An empty range must name an address in guest
    /// memory, or 0.
    fn contains(&self, addr: GuestAddress, len: u32) -> bool;

    /// Appends the host pieces of `[addr, addr + len)` to `out`, without
    /// touching the bytes. They stay valid while `self` lives.
    fn map(&self, addr: GuestAddress, len: u32, out: &mut Vec<RawSlice>) -> Result<(), OutOfRange>;
}

impl<M: GuestMemoryBackend + Send + Sync> GuestRam for M {
    fn read_at(&self, addr: GuestAddress, buf: &mut [u8]) -> Result<(), OutOfRange> {
        self.read_slice(buf, addr).map_err(|_| OutOfRange {
            addr: addr.raw_value(),
            len: buf.len(),
        })
    }

    fn write_at(&self, addr: GuestAddress, bytes: &[u8]) -> Result<(), OutOfRange> {
        self.write_slice(bytes, addr).map_err(|_| OutOfRange {
            addr: addr.raw_value(),
            len: bytes.len(),
        })
    }

    fn contains(&self, addr: GuestAddress, len: u32) -> bool {
        if len == 0 {
            return self.address_in_range(addr) || addr.raw_value() == 0;
        }
        let Some(last) = addr.checked_add(u64::from(len) - 1) else {
            return false;
        };
        let mut at = addr;
        loop {
            let Some(region) = self.find_region(at) else {
                return false;
            };
            let region_last = region.last_addr();
            if region_last >= last {
                return true;
            }
            let Some(next) = region_last.checked_add(1) else {
                return false;
            };
            at = next;
        }
    }

    fn map(&self, addr: GuestAddress, len: u32, out: &mut Vec<RawSlice>) -> Result<(), OutOfRange> {
        for slice in self.get_slices(addr, len as usize) {
            let Ok(slice) = slice else {
                return Err(OutOfRange {
                    addr: addr.raw_value(),
                    len: len as usize,
                });
            };
            let guard = slice.ptr_guard();
            out.push(RawSlice {
                ptr: guard.as_ptr(),
                len: guard.len(),
            });
        }
        Ok(())
    }
}

/// Checks whether `ptr .. ptr+len` lies inside one of `mem`'s host mappings:
/// the proof, for tests, that a payload was not copied.
pub fn is_in_guest_memory<M: GuestMemoryBackend>(mem: &M, slice: &RawSlice) -> bool {
    let start = slice.ptr as usize;
    let Some(end) = start.checked_add(slice.len) else {
        return false;
    };
    mem.iter().any(|region| {
        let Ok(host) = region.get_host_address(MemoryRegionAddress(0)) else {
            return false;
        };
        let base = host as usize;
        let size = usize::try_from(region.len()).unwrap_or(usize::MAX);
        start >= base && end <= base.saturating_add(size)
    })
}

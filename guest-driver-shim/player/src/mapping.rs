//! A pool's memory mapped into the player (the memfd the broker passed).
//!
//! The device only reads playback buffers, and only while they are queued;
//! the player writes a buffer only while it owns it (before `QUEUE`, after
//! `COMPLETE`). [`super::BufferQueue`] enforces that order, so handing out a
//! `&mut [u8]` to a buffer the player owns is sound.

use std::io;
use std::os::fd::OwnedFd;

use memmap2::{MmapOptions, MmapRaw};

/// A shared, writable mapping of a whole pool (memmap2's: unmapped on
/// drop). It never hands out a reference to the whole pool, whose other
/// buffers the device may be reading.
#[derive(Debug)]
pub(crate) struct Mapping {
    map: MmapRaw,
    _fd: OwnedFd,
}

impl Mapping {
    /// Maps `len` bytes of `fd` shared and writable.
    pub(crate) fn new(fd: OwnedFd, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty pool"));
        }
        let map = MmapOptions::new().len(len).map_raw(&fd)?;
        Ok(Mapping { map, _fd: fd })
    }

    /// Bytes mapped.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// `offset..offset + len` of the mapping, writable.
    pub(crate) fn slice_mut(&mut self, offset: usize, len: usize) -> Option<&mut [u8]> {
        let end = offset.checked_add(len)?;
        if end > self.map.len() {
            return None;
        }
        let start = self.map.as_mut_ptr().wrapping_add(offset);
        // SAFETY: `start..start + len` lies inside the mapping (checked
        // above), which lives as long as `self`; the exclusive borrow of
        // `self` keeps any other reference out, and the device does not
        // access a buffer the player owns (module docs). The broker never
        // shrinks a pool's memfd.
        Some(unsafe { std::slice::from_raw_parts_mut(start, len) })
    }

    /// Base address (for tests that check buffers are filled in place).
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.map.as_ptr()
    }
}

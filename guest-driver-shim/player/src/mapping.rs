//! A pool's memory mapped into the player (the memfd the broker passed).
//!
//! The device only reads playback buffers, and only while they are queued;
//! the player writes a buffer only while it owns it (before `QUEUE`, after
//! `COMPLETE`). [`super::BufferQueue`] enforces that order, so handing out a
//! `&mut [u8]` to a buffer the player owns is sound.

use std::io;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use rustix::mm::{MapFlags, ProtFlags};

/// A shared, writable mapping of a whole pool. Unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    _fd: OwnedFd,
}

// SAFETY: the mapping is plain memory owned by this value; access goes
// through `&self`/`&mut self` like any buffer.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` shared and writable.
    pub(crate) fn new(fd: OwnedFd, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty pool"));
        }
        // SAFETY: a fresh mapping chosen by the kernel (no fixed address),
        // of a descriptor we own; it overlaps no Rust object.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }?;
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len, _fd: fd })
    }

    /// Bytes mapped.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// `offset..offset + len` of the mapping, writable.
    pub(crate) fn slice_mut(&mut self, offset: usize, len: usize) -> Option<&mut [u8]> {
        let end = offset.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: `offset <= end <= len`, so the result stays inside the
        // mapping.
        let start = unsafe { self.ptr.as_ptr().add(offset) };
        // SAFETY: `start..start + len` lies inside the mapping (checked
        // above), which lives as long as `self`; the exclusive borrow of
        // `self` keeps any other reference out, and the device does not
        // access a buffer the player owns (module docs).
        Some(unsafe { std::slice::from_raw_parts_mut(start, len) })
    }

    /// Base address (for tests that check buffers are filled in place).
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // A failure would leave the mapping in place: nothing to undo.
        // SAFETY: `ptr`/`len` are exactly what mmap returned; nothing
        // borrows the mapping any more (we are in drop).
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

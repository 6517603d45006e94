//! Buffers: `VIDIOC_REQBUFS` + `mmap`, the mapped memory of a buffer to fill
//! in place, `VIDIOC_QBUF` and `VIDIOC_DQBUF`.

use std::ffi::c_int;

use crate::errors::{CapiError, status_code};
use crate::ffi::{Handle, input, out, put_optional, with_handle};
use crate::types::CBufferInfo;
use mediaredir_player::BufferInfo;
use mediaredir_proto::data::Clip;

/// count buffers of at least size bytes each for a stream, in shared
/// memory of the broker mapped into this process (no copy anywhere in the
/// guest). *count_out (may be NULL) is the number given, *size_out (may be
/// NULL) the size of each (size rounded up to 64 bytes). All buffers start
/// held by the caller, indices 0 .. count-1. count 0 frees the buffers;
/// calling it again replaces them; both need every buffer dequeued
/// (-EINVAL otherwise). V4L2: VIDIOC_REQBUFS + mmap().
///
/// # Safety
///
/// `m` NULL or a live handle; `count_out` and `size_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_request_buffers(
    m: *mut Handle,
    stream: u32,
    count: u32,
    size: usize,
    count_out: *mut u32,
    size_out: *mut usize,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let got = h.redir.request_buffers(stream, count, size)?;
        let slot = h.redir.buffer_layout(stream).map_or(0, |(_, s)| s);
        // SAFETY: the caller guarantees NULL or writable.
        unsafe { put_optional(count_out, got) };
        // SAFETY: the caller guarantees NULL or writable.
        unsafe { put_optional(size_out, slot) };
        Ok(())
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// The memory of buffer index of a stream, to fill in place: *data and
/// *size. Only a buffer the caller holds (never queued, or dequeued):
/// -EINVAL otherwise. The memory belongs to the handle; the pointer is
/// valid until the buffer is queued, the buffers are requested again, the
/// stream or its presentation is destroyed, or the handle is closed.
/// V4L2: the mmap()ed plane of VIDIOC_QUERYBUF.
///
/// # Safety
///
/// `m` NULL or a live handle; `data` and `size` NULL or writable. The
/// memory written to `*data` is valid as the header documents.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_buffer(
    m: *mut Handle,
    stream: u32,
    index: u32,
    data: *mut *mut u8,
    size: *mut usize,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let data = out(data, "data")?;
        let size = out(size, "size")?;
        let slot = h
            .redir
            .buffer_mut(stream, index)
            .ok_or(CapiError::Invalid("no such buffer held by the caller"))?;
        let (ptr, len) = (slot.as_mut_ptr(), slot.len());
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { data.write(ptr) };
        // SAFETY: as above.
        unsafe { size.write(len) };
        Ok(())
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// Hands buffer index (its first info->bytes_used bytes) to the device;
/// the caller must not touch it until it is dequeued. An empty buffer with
/// MEDIAREDIR_FLAG_EOS ends the stream (MEDIAREDIR_EVENT_EOS follows once
/// played). -EINVAL: an index the caller does not hold, or bytes_used
/// larger than the buffer. V4L2: VIDIOC_QBUF.
///
/// # Safety
///
/// `m` NULL or a live handle; `info` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_queue_buffer(
    m: *mut Handle,
    stream: u32,
    index: u32,
    info: *const CBufferInfo,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        // SAFETY: the caller guarantees NULL or readable.
        let info = unsafe { input(info, "info") }?;
        Ok(h.redir.queue_buffer(stream, index, &info.into())?)
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// mediaredir_queue_buffer() for an audio buffer whose decoded output the
/// client clips: clip_start samples (per channel) are dropped at its start
/// and clip_end at its end (encoder delay, Opus pre-skip, end padding).
/// Ignored (played whole) by a device without clipping support.
///
/// # Safety
///
/// `m` NULL or a live handle; `info` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_queue_buffer_clipped(
    m: *mut Handle,
    stream: u32,
    index: u32,
    info: *const CBufferInfo,
    clip_start: u32,
    clip_end: u32,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        // SAFETY: the caller guarantees NULL or readable.
        let info = unsafe { input(info, "info") }?;
        let info = BufferInfo {
            clip: Clip {
                start: clip_start,
                end: clip_end,
            },
            ..info.into()
        };
        Ok(h.redir.queue_buffer(stream, index, &info)?)
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// The next buffer of a stream the device gave back: *index, and *status
/// (may be NULL): MEDIAREDIR_STATUS_OK when consumed, _CANCELLED when
/// flushed, _DROPPED, _STALE after a device restart, or an error. The
/// caller holds it again. -EAGAIN in non-blocking mode when none is back
/// yet; -ETIMEDOUT in blocking mode; -EINVAL when none is queued.
/// V4L2: VIDIOC_DQBUF.
///
/// # Safety
///
/// `m` NULL or a live handle; `index` NULL or writable; `status` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_dequeue_buffer(
    m: *mut Handle,
    stream: u32,
    index: *mut u32,
    status: *mut u32,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let index = out(index, "index")?;
        let done = h.redir.dequeue_buffer(stream)?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { index.write(done.index) };
        let code = u32::try_from(status_code(done.status)).unwrap_or(u32::MAX);
        // SAFETY: the caller guarantees NULL or writable.
        unsafe { put_optional(status, code) };
        Ok(())
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

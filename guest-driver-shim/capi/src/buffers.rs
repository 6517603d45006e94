//! Buffers: `VIDIOC_REQBUFS` + `mmap`, the mapped memory of a buffer to fill
//! in place, `VIDIOC_QBUF` and `VIDIOC_DQBUF`.

use std::ffi::c_int;

use crate::errors::{CapiError, status_code};
use crate::ffi::{Handle, put_optional, required, with_handle};
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
pub extern "C" fn mediaredir_request_buffers(
    m: Option<&mut Handle>,
    stream: u32,
    count: u32,
    size: usize,
    count_out: Option<&mut u32>,
    size_out: Option<&mut usize>,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let got = h.redir.request_buffers(stream, count, size)?;
        let slot = h.redir.buffer_layout(stream).map_or(0, |(_, s)| s);
        put_optional(count_out, got);
        put_optional(size_out, slot);
        Ok(())
    };
    with_handle(m, body)
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
pub extern "C" fn mediaredir_buffer(
    m: Option<&mut Handle>,
    stream: u32,
    index: u32,
    data: Option<&mut *mut u8>,
    size: Option<&mut usize>,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let data = required(data, "data")?;
        let size = required(size, "size")?;
        let slot = h
            .redir
            .buffer_mut(stream, index)
            .ok_or(CapiError::Invalid("no such buffer held by the caller"))?;
        let (ptr, len) = (slot.as_mut_ptr(), slot.len());
        *data = ptr;
        *size = len;
        Ok(())
    };
    with_handle(m, body)
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
pub extern "C" fn mediaredir_queue_buffer(
    m: Option<&mut Handle>,
    stream: u32,
    index: u32,
    info: Option<&CBufferInfo>,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let info = required(info, "info")?;
        Ok(h.redir.queue_buffer(stream, index, &info.into())?)
    };
    with_handle(m, body)
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
pub extern "C" fn mediaredir_queue_buffer_clipped(
    m: Option<&mut Handle>,
    stream: u32,
    index: u32,
    info: Option<&CBufferInfo>,
    clip_start: u32,
    clip_end: u32,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let info = required(info, "info")?;
        let info = BufferInfo {
            clip: Clip {
                start: clip_start,
                end: clip_end,
            },
            ..info.into()
        };
        Ok(h.redir.queue_buffer(stream, index, &info)?)
    };
    with_handle(m, body)
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
pub extern "C" fn mediaredir_dequeue_buffer(
    m: Option<&mut Handle>,
    stream: u32,
    index: Option<&mut u32>,
    status: Option<&mut u32>,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let index = required(index, "index")?;
        let done = h.redir.dequeue_buffer(stream)?;
        *index = done.index;
        let code = u32::try_from(status_code(done.status)).unwrap_or(u32::MAX);
        put_optional(status, code);
        Ok(())
    };
    with_handle(m, body)
}

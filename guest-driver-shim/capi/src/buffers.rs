//! Buffers: `VIDIOC_REQBUFS` + `mmap`, the mapped memory of a buffer to fill
//! in place, `VIDIOC_QBUF` and `VIDIOC_DQBUF`.

use std::ffi::c_int;

use crate::errors::{CapiError, status_code};
use crate::ffi::{Handle, input, out, put_optional, with_handle};
use crate::types::CBufferInfo;
use mediaredir_player::BufferInfo;
use mediaredir_proto::data::Clip;

/// `count` buffers of at least `size` bytes for `stream`.
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

/// The memory of buffer `index` of `stream`, held by the caller.
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

/// `VIDIOC_QBUF`: hands buffer `index` to the device.
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

/// [`mediaredir_queue_buffer`] for an audio buffer with clipping: the
/// client drops `clip_start` decoded samples at its start and `clip_end` at
/// its end (encoder delay, padding; spec 7.8 `F_CLIPPING`). A separate
/// function keeps `struct mediaredir_buffer_info` at its 32 bytes.
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

/// `VIDIOC_DQBUF`: the next buffer of `stream` the device gave back.
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

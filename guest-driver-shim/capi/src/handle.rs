//! The handle's life and settings: `mediaredir_open`, `_close`, `_fd`,
//! `_set_nonblocking`, `_set_timeout`, `_hello`, and error messages.

use std::ffi::{CStr, OsStr, c_char, c_int};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::time::Duration;

use mediaredir_player::MediaRedir;
use mediaredir_proto::broker::DEFAULT_SOCKET;

use crate::errors::{self, CapiError};
use crate::ffi::{Handle, guarded, put_optional, with_handle};

/// Connects to the broker at socket_path (NULL: MEDIAREDIR_DEFAULT_SOCKET)
/// and says HELLO. V4L2: open().
///
/// On success *out is a new handle owned by the caller, to be freed with
/// mediaredir_close(); on failure *out is set to NULL. Errors: -EINVAL (out
/// NULL), the socket's -errno (-ENOENT: no broker there, -ECONNREFUSED,
/// -EACCES), -ETIMEDOUT, or a status the broker answered HELLO with.
/// Blocking mode, 10 s timeout.
///
/// # Safety
///
/// `socket_path` is NULL or a NUL-terminated string; `out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_open(
    socket_path: *const c_char,
    out: *mut *mut Handle,
) -> c_int {
    guarded(|| {
        let out = crate::ffi::out(out, "out")?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { out.write(ptr::null_mut()) };
        let path: &Path = if socket_path.is_null() {
            Path::new(DEFAULT_SOCKET)
        } else {
            // SAFETY: non-NULL, and the caller guarantees a NUL-terminated
            // string that outlives the call.
            let bytes = unsafe { CStr::from_ptr(socket_path) }.to_bytes();
            Path::new(OsStr::from_bytes(bytes))
        };
        let redir = MediaRedir::open(path)?;
        let handle = Box::into_raw(Box::new(Handle::new(redir)));
        // SAFETY: as above.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Closes the connection and frees the handle (NULL: nothing). The broker
/// destroys the handle's presentations and streams; buffer pointers from
/// mediaredir_buffer() become invalid. V4L2: close().
///
/// # Safety
///
/// `m` is NULL or a handle from [`mediaredir_open`] not yet closed; it is
/// not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_close(m: *mut Handle) {
    if m.is_null() {
        return;
    }
    // Dropping closes the socket and unmaps the pools; nothing to report.
    let _ = guarded(|| {
        // SAFETY: the caller hands back ownership of a handle made by
        // Box::into_raw in mediaredir_open.
        drop(unsafe { Box::from_raw(m) });
        Ok(())
    });
}

/// The socket's file descriptor, for poll()/epoll (POLLIN: a reply,
/// completed buffer or event waits), or -EINVAL for NULL. Owned by the
/// handle: do not read, write or close it. After poll() reports it
/// readable, dequeue (buffers, events) until -EAGAIN, as with
/// edge-triggered epoll: completions are read into internal queues.
///
/// # Safety
///
/// `m` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_fd(m: *const Handle) -> c_int {
    // SAFETY: the caller guarantees NULL or a live handle.
    match unsafe { crate::ffi::input(m, "handle") } {
        Ok(handle) => handle.redir.as_fd().as_raw_fd(),
        Err(e) => e.code(),
    }
}

/// Non-blocking mode (nonblocking != 0): mediaredir_dequeue_buffer() and
/// mediaredir_dequeue_event() return -EAGAIN instead of waiting. Control
/// calls always wait for their answer. V4L2: O_NONBLOCK.
///
/// # Safety
///
/// `m` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_set_nonblocking(m: *mut Handle, nonblocking: c_int) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        h.redir.set_nonblocking(nonblocking != 0);
        Ok(())
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// Longest wait for an answer and, in blocking mode, for a buffer or an
/// event (default 10000 ms; 0 is taken as 1 ms).
///
/// # Safety
///
/// `m` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_set_timeout(m: *mut Handle, timeout_ms: u32) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        h.redir
            .set_timeout(Duration::from_millis(u64::from(timeout_ms.max(1))));
        Ok(())
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// Says HELLO again, needed after the device restarted (calls fail with
/// MEDIAREDIR_STATUS_STALE); *generation (may be NULL) is the new device
/// generation.
///
/// # Safety
///
/// `m` is NULL or a live handle; `generation` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_hello(m: *mut Handle, generation: *mut u32) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let g = h.redir.hello()?;
        // SAFETY: the caller guarantees NULL or writable.
        unsafe { put_optional(generation, g) };
        Ok(())
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// The message of the last failed call on m ("" if none; "invalid handle"
/// for NULL). Owned by the handle, valid until the next call on it.
///
/// # Safety
///
/// `m` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_last_error(m: *const Handle) -> *const c_char {
    // SAFETY: the caller guarantees NULL or a live handle.
    match unsafe { crate::ffi::input(m, "handle") } {
        Ok(handle) => handle.last_error.as_ptr(),
        Err(_) => c"invalid handle".as_ptr(),
    }
}

/// A static, NUL-terminated description of a return value of this API
/// (0, -errno or MEDIAREDIR_STATUS_*); never NULL. V4L2: strerror().
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_strerror(error: c_int) -> *const c_char {
    errors::strerror(error).as_ptr()
}

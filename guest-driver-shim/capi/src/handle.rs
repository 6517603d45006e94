//! The handle's life and settings: `mediaredir_open`, `_close`, `_fd`,
//! `_set_nonblocking`, `_set_timeout`, `_hello`, and error messages.

use std::ffi::{OsStr, c_char, c_int};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::time::Duration;

use mediaredir_player::MediaRedir;
use mediaredir_proto::broker::DEFAULT_SOCKET;

use crate::errors::{self, CapiError};
use crate::ffi::{Handle, cstr, guarded, put_optional, required, with_handle};

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
    out: Option<&mut Option<Box<Handle>>>,
) -> c_int {
    guarded(|| {
        let out = required(out, "out")?;
        // SAFETY: `out` is a valid, aligned slot (the C contract), but C
        // may leave anything in it: write NULL without reading or dropping
        // the old contents.
        unsafe { ptr::write(out, None) };
        // SAFETY: this export's contract: `socket_path` NULL or a C string.
        let path: &Path = match unsafe { cstr(socket_path) } {
            None => Path::new(DEFAULT_SOCKET),
            Some(s) => Path::new(OsStr::from_bytes(s.to_bytes())),
        };
        let redir = MediaRedir::open(path)?;
        *out = Some(Box::new(Handle::new(redir)));
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
pub extern "C" fn mediaredir_close(m: Option<Box<Handle>>) {
    // Dropping closes the socket and unmaps the pools; nothing to report.
    let _ = guarded(move || {
        drop(m);
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
pub extern "C" fn mediaredir_fd(m: Option<&Handle>) -> c_int {
    match required(m, "handle") {
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
pub extern "C" fn mediaredir_set_nonblocking(m: Option<&mut Handle>, nonblocking: c_int) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        h.redir.set_nonblocking(nonblocking != 0);
        Ok(())
    };
    with_handle(m, body)
}

/// Longest wait for an answer and, in blocking mode, for a buffer or an
/// event (default 10000 ms; 0 is taken as 1 ms).
///
/// # Safety
///
/// `m` is NULL or a live handle.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_set_timeout(m: Option<&mut Handle>, timeout_ms: u32) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        h.redir
            .set_timeout(Duration::from_millis(u64::from(timeout_ms.max(1))));
        Ok(())
    };
    with_handle(m, body)
}

/// Says HELLO again, needed after the device restarted (calls fail with
/// MEDIAREDIR_STATUS_STALE); *generation (may be NULL) is the new device
/// generation.
///
/// # Safety
///
/// `m` is NULL or a live handle; `generation` is NULL or writable.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_hello(m: Option<&mut Handle>, generation: Option<&mut u32>) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let g = h.redir.hello()?;
        put_optional(generation, g);
        Ok(())
    };
    with_handle(m, body)
}

/// The message of the last failed call on m ("" if none; "invalid handle"
/// for NULL). Owned by the handle, valid until the next call on it.
///
/// # Safety
///
/// `m` is NULL or a live handle.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_last_error(m: Option<&Handle>) -> *const c_char {
    match m {
        Some(handle) => handle.last_error.as_ptr(),
        None => c"invalid handle".as_ptr(),
    }
}

/// A static, NUL-terminated description of a return value of this API
/// (0, -errno or MEDIAREDIR_STATUS_*); never NULL. V4L2: strerror().
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_strerror(error: c_int) -> *const c_char {
    errors::strerror(error).as_ptr()
}

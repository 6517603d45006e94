//! The FFI boundary: every export runs its body through `guarded` or
//! `with_handle`, which turn errors into the C return convention, record
//! the handle's last error message, and catch panics (unwinding into C is
//! undefined behaviour). Pointer helpers check for NULL before any access.

use std::any::Any;
use std::ffi::{CString, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

use mediaredir_player::MediaRedir;

use crate::errors::CapiError;

/// A connection to the broker (opaque; like an open /dev/videoN): what
/// `struct mediaredir *` points to.
#[derive(Debug)]
pub struct Handle {
    /// The player connection.
    pub(crate) redir: MediaRedir,
    /// The message of the last failed call (`mediaredir_last_error`).
    pub(crate) last_error: CString,
}

impl Handle {
    pub(crate) fn new(redir: MediaRedir) -> Handle {
        Handle {
            redir,
            last_error: CString::default(),
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// Runs `body`, catching panics; its C return value.
pub(crate) fn guarded(body: impl FnOnce() -> Result<(), CapiError>) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => e.code(),
        Err(payload) => CapiError::Panic(panic_message(payload.as_ref())).code(),
    }
}

/// Runs `body` on the handle `m` points to, catching panics and recording
/// the error message in the handle; its C return value (`-EINVAL` for a
/// NULL handle).
///
/// # Safety
///
/// `m` is NULL or a handle from `mediaredir_open` not yet closed, used by
/// no other thread during the call.
pub(crate) unsafe fn with_handle(
    m: *mut Handle,
    body: impl FnOnce(&mut Handle) -> Result<(), CapiError>,
) -> c_int {
    let Some(mut m) = NonNull::new(m) else {
        return CapiError::Null("handle").code();
    };
    // SAFETY: the caller guarantees a live handle with no other user, so
    // an exclusive reference for the call is sound.
    let handle = unsafe { m.as_mut() };
    let result = match catch_unwind(AssertUnwindSafe(|| body(handle))) {
        Ok(result) => result,
        Err(payload) => Err(CapiError::Panic(panic_message(payload.as_ref()))),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let code = e.code();
            handle.last_error = CString::new(e.to_string().replace('\0', " ")).unwrap_or_default();
            code
        }
    }
}

/// Checks an output pointer: `Err` when NULL.
pub(crate) fn out<T>(ptr: *mut T, what: &'static str) -> Result<NonNull<T>, CapiError> {
    NonNull::new(ptr).ok_or(CapiError::Null(what))
}

/// Writes `value` to `ptr` unless it is NULL (optional outputs).
///
/// # Safety
///
/// `ptr` is NULL or valid for a write of a `T`.
pub(crate) unsafe fn put_optional<T>(ptr: *mut T, value: T) {
    if let Some(p) = NonNull::new(ptr) {
        // SAFETY: non-NULL, and the caller guarantees it is writable.
        unsafe { p.write(value) };
    }
}

/// The `T` that `ptr` points to; `Err` when NULL.
///
/// # Safety
///
/// `ptr` is NULL or valid for reads of a `T` for `'a`.
pub(crate) unsafe fn input<'a, T>(ptr: *const T, what: &'static str) -> Result<&'a T, CapiError> {
    let p = NonNull::new(ptr.cast_mut()).ok_or(CapiError::Null(what))?;
    // SAFETY: non-NULL, and the caller guarantees it is readable for 'a.
    Ok(unsafe { p.as_ref() })
}

/// The `len` elements at `ptr`; NULL is allowed only when `len` is 0.
///
/// # Safety
///
/// When `len` is not 0, `ptr` points to `len` initialised `T`s valid for
/// reads for `'a`.
pub(crate) unsafe fn input_slice<'a, T>(
    ptr: *const T,
    len: usize,
    what: &'static str,
) -> Result<&'a [T], CapiError> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(CapiError::Null(what));
    }
    if !ptr.is_aligned()
        || len
            .checked_mul(size_of::<T>())
            .is_none_or(|n| n > isize::MAX as usize)
    {
        return Err(CapiError::Invalid("array pointer or length"));
    }
    // SAFETY: non-NULL, aligned, size fits isize; the caller guarantees
    // `len` readable elements for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

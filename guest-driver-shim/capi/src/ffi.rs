//! The FFI boundary: every export runs its body through `guarded` or
//! `with_handle`, which turn errors into the C return convention, record
//! the handle's last error message, and catch panics (unwinding into C is
//! undefined behaviour).
//!
//! Why the exports are safe functions: a pointer to one object crosses the
//! boundary as `Option<&T>` / `Option<&mut T>` (or `Option<Box<Handle>>`
//! for the handle given back to `mediaredir_close`), which Rust guarantees
//! to have the ABI of a nullable C pointer; cbindgen writes them as
//! `const T *` / `T *`. The C contract (NULL, or a valid, aligned pointer
//! not used by another thread during the call) is the header's, as before,
//! and NULL arrives as `None`. Raw pointers remain only where no reference
//! type can say what C passes, each behind one audited helper: C strings
//! (`cstr`) and arrays given with a length (`input_slice`,
//! `output_slice`); `mediaredir_open` writes the new handle with one
//! `ptr::write`. Those helpers are `unsafe fn`s, and so are the five
//! exports that reach them (`mediaredir_open`, `_query_caps`,
//! `_try_format`, `_create_stream`, `_set_geometry`: a C string, an array,
//! a struct with an array pointer), each with its `# Safety` contract; the
//! other exports take only references and are safe.

use std::any::Any;
use std::ffi::{CStr, CString, c_char, c_int};
use std::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind};

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

/// Runs `body` on the handle, catching panics and recording the error
/// message in the handle; its C return value (`-EINVAL` for a NULL
/// handle).
///
/// The exports take the handle as `Option<&mut Handle>`, which has the ABI
/// of a nullable `struct mediaredir *`: C's contract (NULL or a live handle
/// used by no other thread during the call) is what makes that reference
/// valid, so no `unsafe` is needed here.
pub(crate) fn with_handle(
    m: Option<&mut Handle>,
    body: impl FnOnce(&mut Handle) -> Result<(), CapiError>,
) -> c_int {
    let Some(handle) = m else {
        return CapiError::Null("handle").code();
    };
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

/// A required output or input: `Err` when NULL.
pub(crate) fn required<T>(ptr: Option<T>, what: &'static str) -> Result<T, CapiError> {
    ptr.ok_or(CapiError::Null(what))
}

/// Writes `value` to an optional output (NULL: nothing).
pub(crate) fn put_optional<T>(ptr: Option<&mut T>, value: T) {
    if let Some(p) = ptr {
        *p = value;
    }
}

/// The NUL-terminated string at `ptr`; `None` when NULL. A C string has no
/// reference type that could say so, hence the raw pointer.
///
/// # Safety
///
/// `ptr` is NULL or a NUL-terminated string valid for reads for `'a` (for
/// an export: the header's contract with its C caller, for the call).
pub(crate) unsafe fn cstr<'a>(ptr: *const c_char) -> Option<&'a CStr> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-NULL, and the C contract above guarantees a
    // NUL-terminated string readable for 'a.
    Some(unsafe { CStr::from_ptr(ptr) })
}

/// Checks a C array's pointer and length before it becomes a slice:
/// `Ok(false)` for an empty array (NULL allowed), `Ok(true)` when `ptr`
/// is non-NULL, aligned and `len` elements fit in `isize`.
fn check_array<T>(ptr: *const T, len: usize, what: &'static str) -> Result<bool, CapiError> {
    if len == 0 {
        return Ok(false);
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
    Ok(true)
}

/// The `len` elements at `ptr` (a C array given with its length: no
/// reference type says "`len` elements"); NULL is allowed only when `len`
/// is 0.
///
/// # Safety
///
/// When `len` is not 0, `ptr` points to `len` initialised `T`s valid for
/// reads for `'a` (for an export: the header's contract, for the call).
pub(crate) unsafe fn input_slice<'a, T>(
    ptr: *const T,
    len: usize,
    what: &'static str,
) -> Result<&'a [T], CapiError> {
    if !check_array(ptr, len, what)? {
        return Ok(&[]);
    }
    // SAFETY: non-NULL, aligned, size fits isize; the C contract above
    // guarantees `len` readable elements for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The `len` writable elements at `ptr`, possibly uninitialised (an output
/// array given with its length); NULL is allowed only when `len` is 0.
///
/// # Safety
///
/// As for [`input_slice`], with `len` elements valid for writes and used
/// by nothing else for `'a`.
pub(crate) unsafe fn output_slice<'a, T>(
    ptr: *mut T,
    len: usize,
    what: &'static str,
) -> Result<&'a mut [MaybeUninit<T>], CapiError> {
    if !check_array(ptr, len, what)? {
        return Ok(&mut []);
    }
    // SAFETY: non-NULL, aligned, size fits isize; the C contract above
    // guarantees `len` writable elements for 'a with no other user. `MaybeUninit<T>`
    // has `T`'s layout and makes no claim about the current contents.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<MaybeUninit<T>>(), len) })
}

//! Events: `VIDIOC_DQEVENT`, blocking, non-blocking or with a timeout.

use std::ffi::c_int;
use std::time::Duration;

use crate::errors::CapiError;
use crate::ffi::{Handle, out, with_handle};
use crate::types::CEvent;

/// `VIDIOC_DQEVENT`: the next event.
///
/// # Safety
///
/// `m` NULL or a live handle; `event` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_dequeue_event(m: *mut Handle, event: *mut CEvent) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let event = out(event, "event")?;
        let got = h.redir.dequeue_event()?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { event.write(CEvent::from(&got)) };
        Ok(())
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// The next event within `timeout_ms` (`-ETIMEDOUT` if none).
///
/// # Safety
///
/// `m` NULL or a live handle; `event` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_wait_event(
    m: *mut Handle,
    timeout_ms: u32,
    event: *mut CEvent,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let event = out(event, "event")?;
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        let got = h
            .redir
            .wait_event(timeout)?
            .ok_or(mediaredir_player::PlayerError::Timeout(timeout))?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { event.write(CEvent::from(&got)) };
        Ok(())
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

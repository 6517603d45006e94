//! Events: `VIDIOC_DQEVENT`, blocking, non-blocking or with a timeout.

use std::ffi::c_int;
use std::time::Duration;

use crate::errors::CapiError;
use crate::ffi::{Handle, out, with_handle};
use crate::types::CEvent;

/// The next event of the handle's objects, or a broadcast one (client
/// connected/gone, events lost, device started), into *event. -EAGAIN in
/// non-blocking mode when none waits; -ETIMEDOUT in blocking mode.
/// V4L2: VIDIOC_DQEVENT.
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

/// Like mediaredir_dequeue_event(), waiting up to timeout_ms whatever the
/// blocking mode: -ETIMEDOUT when none came. V4L2: poll() + VIDIOC_DQEVENT.
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

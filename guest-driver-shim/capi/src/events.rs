//! Events: `VIDIOC_DQEVENT`, blocking, non-blocking or with a timeout.

use std::ffi::c_int;
use std::time::Duration;

use crate::errors::CapiError;
use crate::ffi::{Handle, required, with_handle};
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
pub extern "C" fn mediaredir_dequeue_event(
    m: Option<&mut Handle>,
    event: Option<&mut CEvent>,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let event = required(event, "event")?;
        let got = h.redir.dequeue_event()?;
        *event = CEvent::from(&got);
        Ok(())
    };
    with_handle(m, body)
}

/// Like mediaredir_dequeue_event(), waiting up to timeout_ms whatever the
/// blocking mode: -ETIMEDOUT when none came. V4L2: poll() + VIDIOC_DQEVENT.
///
/// # Safety
///
/// `m` NULL or a live handle; `event` NULL or writable.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_wait_event(
    m: Option<&mut Handle>,
    timeout_ms: u32,
    event: Option<&mut CEvent>,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let event = required(event, "event")?;
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        let got = h
            .redir
            .wait_event(timeout)?
            .ok_or(mediaredir_player::PlayerError::Timeout(timeout))?;
        *event = CEvent::from(&got);
        Ok(())
    };
    with_handle(m, body)
}

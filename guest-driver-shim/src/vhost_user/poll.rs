//! Waiting on file descriptors with `poll(2)`, with a deadline kept across
//! EINTR (the backend request thread, call eventfds).

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Polls `fd` for input for at most `timeout`; `Ok(true)` when readable
/// (or hung up: a read then reports it).
pub(super) fn poll_readable(fd: RawFd, timeout: Duration) -> std::io::Result<bool> {
    let mut fds = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    let n = poll(&mut fds, timeout)?;
    Ok(n > 0 && fds[0].revents != 0)
}

/// `poll(2)` that retries on EINTR until `timeout` has passed.
pub(super) fn poll(fds: &mut [libc::pollfd], timeout: Duration) -> std::io::Result<usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        // Round up so a sub-millisecond wait does not become a busy poll.
        let ms = remaining.as_micros().div_ceil(1000);
        let ms = libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX);
        let nfds = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
        // SAFETY: `fds` is a valid, exclusively borrowed array of `nfds`
        // pollfd structures for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), nfds, ms) };
        if n >= 0 {
            return Ok(usize::try_from(n).unwrap_or(0));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

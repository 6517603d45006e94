//! The C return convention: 0 on success, `-errno` for local failures, a
//! positive protocol status when the broker or device refused; and the
//! static messages of `mediaredir_strerror`.

use std::ffi::{CStr, c_int};
use std::io;

use mediaredir_player::PlayerError;
use mediaredir_proto::status::Status;

/// Why a C API call failed.
#[derive(Debug, thiserror::Error)]
pub enum CapiError {
    /// The player API failed.
    #[error(transparent)]
    Player(#[from] PlayerError),
    /// A pointer argument that must not be NULL was NULL.
    #[error("{0} is NULL")]
    Null(&'static str),
    /// An argument is out of its range.
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// A Rust panic was caught at the FFI boundary (a bug).
    #[error("internal error: {0}")]
    Panic(String),
}

impl CapiError {
    /// The C return value: `-errno` or a positive status.
    pub fn code(&self) -> c_int {
        match self {
            CapiError::Player(e) => player_code(e),
            CapiError::Null(_) | CapiError::Invalid(_) => -libc::EINVAL,
            CapiError::Panic(_) => -libc::ENOTRECOVERABLE,
        }
    }
}

fn player_code(e: &PlayerError) -> c_int {
    match e {
        PlayerError::Io(io) => -io_errno(io),
        PlayerError::Status { status, .. } => status_code(*status),
        PlayerError::Protocol(_) => -libc::EPROTO,
        PlayerError::WouldBlock => -libc::EAGAIN,
        PlayerError::Timeout(_) => -libc::ETIMEDOUT,
        PlayerError::Usage(_) => -libc::EINVAL,
    }
}

/// The errno of an I/O error (`EIO` when it has none).
fn io_errno(e: &io::Error) -> c_int {
    if let Some(errno) = e.raw_os_error() {
        return errno;
    }
    match e.kind() {
        io::ErrorKind::ConnectionReset => libc::ECONNRESET,
        io::ErrorKind::BrokenPipe => libc::EPIPE,
        io::ErrorKind::WouldBlock => libc::EAGAIN,
        io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        io::ErrorKind::NotFound => libc::ENOENT,
        io::ErrorKind::InvalidInput => libc::EINVAL,
        _ => libc::EIO,
    }
}

/// A status as a C return value (0 for `Ok`, else positive).
pub fn status_code(status: Status) -> c_int {
    // Status numbers are 0..=12.
    c_int::try_from(status.as_u32()).unwrap_or(c_int::MAX)
}

/// The static description of a return value of the C API.
pub fn strerror(error: c_int) -> &'static CStr {
    if error >= 0 {
        return u32::try_from(error)
            .ok()
            .and_then(|n| Status::from_u32(n).ok())
            .map_or(c"unknown status", status_message);
    }
    errno_message(error.checked_neg().unwrap_or(0))
}

fn status_message(status: Status) -> &'static CStr {
    match status {
        Status::Ok => c"success",
        Status::Unsupported => c"the client cannot decode (or encode) that format",
        Status::Invalid => c"a field or size is malformed",
        Status::BadState => c"the request is not legal in the current state",
        Status::NoEntity => c"unknown presentation, stream or session",
        Status::Limit => c"a count or size limit would be exceeded",
        Status::NoClient => c"no client is connected",
        Status::Cancelled => c"flushed or destroyed before the client consumed it",
        Status::Stale => c"the device restarted (say hello again)",
        Status::Io => c"the client or the transport to it failed",
        Status::NeedsReset => c"the device needs a reset",
        Status::UnknownRequest => c"unknown request",
        Status::Dropped => c"consumed without being sent",
    }
}

/// Messages of the errno values this API returns (static, unlike
/// `strerror(3)`, so callers on any thread may keep the pointer).
fn errno_message(errno: c_int) -> &'static CStr {
    match errno {
        libc::EINVAL => c"invalid argument",
        libc::EAGAIN => c"resource temporarily unavailable (would block)",
        libc::ETIMEDOUT => c"the broker did not answer in time",
        libc::EPROTO => c"the broker sent a malformed message",
        libc::ENOTRECOVERABLE => c"internal error in libmediaredir",
        libc::ENOENT => c"no such file or directory (is the broker running?)",
        libc::ECONNREFUSED => c"connection refused (is the broker running?)",
        libc::EACCES => c"permission denied",
        libc::ECONNRESET => c"the broker closed the connection",
        libc::EPIPE => c"broken pipe (the broker went away)",
        libc::ENOMEM => c"out of memory",
        libc::EBADF => c"bad file descriptor",
        libc::ENOTSOCK => c"not a socket",
        libc::EPROTOTYPE => c"wrong socket type (not the broker's socket)",
        libc::EMFILE | libc::ENFILE => c"too many open files",
        libc::EIO => c"input/output error",
        _ => c"system error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_documented_convention() {
        assert_eq!(CapiError::Null("x").code(), -libc::EINVAL);
        assert_eq!(
            CapiError::from(PlayerError::WouldBlock).code(),
            -libc::EAGAIN
        );
        let refused = PlayerError::Status {
            what: "CHECK_FORMAT",
            status: Status::Unsupported,
        };
        assert_eq!(CapiError::from(refused).code(), 1);
        let io = PlayerError::Io(io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(CapiError::from(io).code(), -libc::ENOENT);
    }

    #[test]
    fn every_code_has_a_message() {
        for status in Status::ALL {
            assert!(!strerror(status_code(status)).is_empty());
        }
        assert_eq!(
            strerror(-libc::ENOENT)
                .to_str()
                .ok()
                .map(|s| s.contains("no such file")),
            Some(true)
        );
        assert_eq!(strerror(-9999), c"system error");
        assert_eq!(strerror(c_int::MIN), c"system error");
        assert_eq!(strerror(99), c"unknown status");
    }
}

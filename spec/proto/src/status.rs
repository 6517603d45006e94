//! Status codes, shared by control responses, data-buffer completions,
//! events and the wire protocol (the numbers are identical everywhere).

use crate::ProtoError;

/// A status code (spec, "Status codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// The connected client cannot decode (or encode) that format.
    Unsupported = 1,
    /// A field or size is malformed.
    Invalid = 2,
    /// The request is not legal in the current state.
    BadState = 3,
    /// Unknown presentation, stream or session id.
    NoEntity = 4,
    /// A count or size limit would be exceeded.
    Limit = 5,
    /// No client is connected.
    NoClient = 6,
    /// Flushed or destroyed before the client consumed it.
    Cancelled = 7,
    /// The chain carries the generation of an earlier device instance.
    Stale = 8,
    /// The client or the transport to it failed.
    Io = 9,
    /// The device cannot continue until the driver resets it.
    NeedsReset = 10,
    /// The request code is unknown.
    UnknownRequest = 11,
    /// Consumed without being sent (non-keyframe skipped after a reconnect).
    Dropped = 12,
}

impl Status {
    /// Every status, in numeric order.
    pub const ALL: [Status; 13] = [
        Status::Ok,
        Status::Unsupported,
        Status::Invalid,
        Status::BadState,
        Status::NoEntity,
        Status::Limit,
        Status::NoClient,
        Status::Cancelled,
        Status::Stale,
        Status::Io,
        Status::NeedsReset,
        Status::UnknownRequest,
        Status::Dropped,
    ];

    /// Decodes a status number.
    pub fn from_u32(value: u32) -> Result<Status, ProtoError> {
        Status::ALL
            .get(value as usize)
            .copied()
            .ok_or(ProtoError::UnknownStatus(value))
    }

    /// The status number.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// Whether this status reports success.
    pub fn is_ok(self) -> bool {
        self == Status::Ok
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Status::Ok => "OK",
            Status::Unsupported => "UNSUPPORTED",
            Status::Invalid => "INVALID",
            Status::BadState => "BAD_STATE",
            Status::NoEntity => "NO_ENTITY",
            Status::Limit => "LIMIT",
            Status::NoClient => "NO_CLIENT",
            Status::Cancelled => "CANCELLED",
            Status::Stale => "STALE",
            Status::Io => "IO",
            Status::NeedsReset => "NEEDS_RESET",
            Status::UnknownRequest => "UNKNOWN_REQUEST",
            Status::Dropped => "DROPPED",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_match_the_table() {
        for (n, status) in Status::ALL.iter().enumerate() {
            assert_eq!(status.as_u32() as usize, n);
            assert_eq!(Status::from_u32(status.as_u32()), Ok(*status));
        }
        assert_eq!(Status::from_u32(13), Err(ProtoError::UnknownStatus(13)));
        assert_eq!(
            Status::from_u32(u32::MAX),
            Err(ProtoError::UnknownStatus(u32::MAX))
        );
    }
}

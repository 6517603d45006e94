//! Status codes, shared by control responses, data-buffer completions,
//! events and the wire protocol (the numbers are identical everywhere).

use crate::ProtoError;
use crate::enums::protocol_enum;

protocol_enum! {
    /// A status code (spec, "Status codes").
    pub enum Status: u32 {
        /// Success.
        Ok = 0 => "OK",
        /// The connected client cannot decode (or encode) that format.
        Unsupported = 1 => "UNSUPPORTED",
        /// A field or size is malformed.
        Invalid = 2 => "INVALID",
        /// The request is not legal in the current state.
        BadState = 3 => "BAD_STATE",
        /// Unknown presentation, stream or session id.
        NoEntity = 4 => "NO_ENTITY",
        /// A count or size limit would be exceeded.
        Limit = 5 => "LIMIT",
        /// No client is connected.
        NoClient = 6 => "NO_CLIENT",
        /// Flushed or destroyed before the client consumed it.
        Cancelled = 7 => "CANCELLED",
        /// The chain carries the generation of an earlier device instance.
        Stale = 8 => "STALE",
        /// The client or the transport to it failed.
        Io = 9 => "IO",
        /// The device cannot continue until the driver resets it.
        NeedsReset = 10 => "NEEDS_RESET",
        /// The request code is unknown.
        UnknownRequest = 11 => "UNKNOWN_REQUEST",
        /// Consumed without being sent (non-keyframe skipped after a reconnect).
        Dropped = 12 => "DROPPED",
    }
    unknown = ProtoError::UnknownStatus;
}

impl Status {
    /// Whether this status reports success.
    pub const fn is_ok(self) -> bool {
        matches!(self, Status::Ok)
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

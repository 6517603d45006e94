//! Why a player call fails: [`PlayerError`], one type for the socket, the
//! broker's and the device's statuses, malformed packets, timeouts and
//! calls that do not fit the buffers' state.

use std::io;
use std::time::Duration;

use mediaredir_proto::ProtoError;
use mediaredir_proto::status::Status;

/// Why a player call failed.
#[derive(Debug, thiserror::Error)]
pub enum PlayerError {
    /// The broker socket failed or closed.
    #[error("broker connection: {0}")]
    Io(#[from] io::Error),
    /// The broker or the device refused the request.
    #[error("{what}: {status:?}")]
    Status {
        /// The request.
        what: &'static str,
        /// The status it got.
        status: Status,
    },
    /// The broker sent something that is not valid protocol.
    #[error("broker sent a malformed message: {0}")]
    Protocol(#[from] ProtoError),
    /// Non-blocking mode and nothing is ready.
    #[error("would block")]
    WouldBlock,
    /// No answer in time.
    #[error("no answer from the broker within {0:?}")]
    Timeout(Duration),
    /// A call that does not fit the buffers' state (an index the player
    /// does not hold, a payload larger than the buffer, no buffers).
    #[error("{0}")]
    Usage(&'static str),
}

impl PlayerError {
    /// The protocol status, when the broker or device answered with one.
    pub fn status(&self) -> Option<Status> {
        match self {
            PlayerError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `Ok` for [`Status::Ok`], otherwise the status as an error of `what`.
pub(super) fn status_of(what: &'static str, status: Status) -> Result<(), PlayerError> {
    if status == Status::Ok {
        Ok(())
    } else {
        Err(PlayerError::Status { what, status })
    }
}

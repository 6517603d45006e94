//! Decode errors of the virtqueue structures.
//!
//! Every way an untrusted buffer can be wrong has its own variant, and every
//! variant maps to the status code the device answers with
//! ([`ProtoError::status`]), so the daemon never has to guess.

use crate::status::Status;

/// Why a virtqueue structure or broker message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The buffer is shorter than the structure it must hold.
    #[error("{what}: {got} bytes, at least {need} needed")]
    Truncated {
        /// Which structure.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// The buffer holds more bytes than the structure and its declared
    /// variable part.
    #[error("{what}: {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// Which structure.
        what: &'static str,
        /// How many bytes are left over.
        extra: usize,
    },
    /// A request code the spec does not define.
    #[error("unknown request code {0:#06x}")]
    UnknownRequest(u32),
    /// A codec number the spec does not define.
    #[error("unknown codec {0:#06x}")]
    UnknownCodec(u32),
    /// An event type the spec does not define.
    #[error("unknown event type {0:#04x}")]
    UnknownEvent(u32),
    /// A status code the spec does not define.
    #[error("unknown status code {0}")]
    UnknownStatus(u32),
    /// A broker message type the spec does not define.
    #[error("unknown broker message type {0}")]
    UnknownBrokerMessage(u32),
    /// A field holds a value the spec forbids.
    #[error("field {field} = {value}: {reason}")]
    InvalidField {
        /// Field name as the spec writes it.
        field: &'static str,
        /// The offending value.
        value: u64,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A length exceeds a limit of the spec or of the device configuration.
    #[error("{what}: {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its length.
        len: u64,
        /// The limit in force.
        max: u64,
    },
    /// Codec configuration data that does not look like what the codec needs.
    #[error("codec data for {codec}: {reason}")]
    BadCodecData {
        /// Codec name.
        codec: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Text that must be UTF-8 is not.
    #[error("{0} is not valid UTF-8 (or contains NUL)")]
    BadText(&'static str),
}

impl ProtoError {
    /// The status code the device returns for this error (spec, "Status
    /// codes").
    pub fn status(&self) -> Status {
        match self {
            ProtoError::UnknownRequest(_) => Status::UnknownRequest,
            ProtoError::TooLarge { .. } => Status::Limit,
            _ => Status::Invalid,
        }
    }
}

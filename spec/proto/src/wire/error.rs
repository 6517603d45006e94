//! Errors of the host-to-client wire protocol.

use thiserror::Error;

/// Everything that can be wrong with a frame received from the peer, or with
/// a message a caller tries to send.
///
/// Every decoder of this module returns one of these instead of panicking;
/// `field` strings name the schema field as `Table.field`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// The prefix does not start with [`MAGIC`](super::MAGIC).
    #[error("bad frame magic {0:#010x}")]
    BadMagic(u32),
    /// `header_len` is below the smallest possible header or above
    /// [`MAX_HEADER_LEN`](super::MAX_HEADER_LEN).
    #[error("frame header length {0} outside {min}..={max}", min = super::MIN_HEADER_LEN, max = super::MAX_HEADER_LEN)]
    HeaderLength(usize),
    /// `payload_len` is above [`MAX_PAYLOAD_LEN`](super::MAX_PAYLOAD_LEN).
    #[error("frame payload length {0} above {max}", max = super::MAX_PAYLOAD_LEN)]
    PayloadTooLarge(usize),
    /// The reserved prefix word is not zero.
    #[error("reserved prefix field is {0:#x}, must be 0")]
    ReservedNonZero(u32),
    /// The header does not carry the file identifier `"MRW1"`.
    #[error("header lacks the \"MRW1\" file identifier")]
    BadIdentifier,
    /// The FlatBuffers verifier rejected the header.
    #[error("malformed header: {0}")]
    InvalidFlatBuffer(#[from] flatbuffers::InvalidFlatbuffer),
    /// The frame's union holds no message.
    #[error("frame carries no message")]
    MissingMessage,
    /// The union type is not a message of this protocol version.
    #[error("unknown message type {0}")]
    UnknownMessage(u8),
    /// A field the protocol requires is absent.
    #[error("required field {0} is missing")]
    MissingField(&'static str),
    /// An enumeration field holds a value the schema does not define.
    #[error("{field} has unknown value {value}")]
    UnknownEnum {
        /// The field.
        field: &'static str,
        /// The value received.
        value: u32,
    },
    /// A bit-flag field has bits set that the schema does not define.
    #[error("{field} has undefined flag bits {bits:#x}")]
    UnknownFlags {
        /// The field.
        field: &'static str,
        /// The undefined bits that were set.
        bits: u32,
    },
    /// A string or byte vector is longer than its limit.
    #[error("{field} is {len} bytes long, the limit is {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A vector has more elements than its limit.
    #[error("{field} has {count} entries, the limit is {max}")]
    TooMany {
        /// The field.
        field: &'static str,
        /// Its number of entries.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An id that must be nonzero is zero.
    #[error("{0} must be nonzero")]
    ZeroId(&'static str),
    /// Two entries of one list share an id.
    #[error("{field} lists id {id} twice")]
    DuplicateId {
        /// The field.
        field: &'static str,
        /// The repeated id.
        id: u32,
    },
    /// A numeric field is outside its valid range.
    #[error("{field} = {value} is outside {min}..={max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value received.
        value: i64,
        /// Smallest valid value.
        min: i64,
        /// Largest valid value.
        max: i64,
    },
    /// A field breaks a rule that involves other fields.
    #[error("{field}: {rule}")]
    Inconsistent {
        /// The field.
        field: &'static str,
        /// The rule that is broken.
        rule: &'static str,
    },
    /// A payload follows a message that carries none (only `Sample` and
    /// `CaptureSample` do).
    #[error(
        "{message} frame carries {len} payload bytes; only Sample and CaptureSample carry a payload"
    )]
    UnexpectedPayload {
        /// The message's schema name.
        message: &'static str,
        /// The payload length announced.
        len: usize,
    },
    /// The encoded header would exceed [`MAX_HEADER_LEN`](super::MAX_HEADER_LEN).
    #[error("encoded header is {0} bytes, above {max}", max = super::MAX_HEADER_LEN)]
    HeaderTooLarge(usize),
    /// A [`FrameReader`](super::FrameReader) already failed; the stream has no
    /// frame boundaries left to trust and must be closed.
    #[error("frame stream is desynchronised by an earlier error")]
    Desynchronized,
}

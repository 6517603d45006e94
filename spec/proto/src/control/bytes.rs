//! Byte-level helpers the crate's virtqueue codecs share (control, event,
//! data, responses, the broker): read a fixed structure, refuse trailing or
//! missing bytes, split off a bounded variable part, check SDP text, name an
//! invalid field, and write a length as a `u32` field.

use zerocopy::{FromBytes, Immutable, KnownLayout};

use crate::ProtoError;

/// Reads a fixed-size structure from the front of `bytes`.
pub(crate) fn read_prefix<'a, T: FromBytes + KnownLayout + Immutable>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<(T, &'a [u8]), ProtoError> {
    T::read_from_prefix(bytes).map_err(|_| ProtoError::Truncated {
        what,
        need: size_of::<T>(),
        got: bytes.len(),
    })
}

/// Fails when bytes remain after a structure.
pub(crate) fn expect_end(rest: &[u8], what: &'static str) -> Result<(), ProtoError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(ProtoError::TrailingBytes {
            what,
            extra: rest.len(),
        })
    }
}

pub(crate) fn invalid(
    field: &'static str,
    value: impl Into<u64>,
    reason: &'static str,
) -> ProtoError {
    ProtoError::InvalidField {
        field,
        value: value.into(),
        reason,
    }
}

pub(super) fn bool_field(field: &'static str, value: u32) -> Result<bool, ProtoError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(invalid(field, other, "must be 0 or 1")),
    }
}

/// Splits a `len`-byte variable part off `rest`, which must hold exactly it.
pub(super) fn take_exact<'a>(
    rest: &'a [u8],
    len: u32,
    max: u32,
    what: &'static str,
) -> Result<&'a [u8], ProtoError> {
    if len > max {
        return Err(ProtoError::TooLarge {
            what,
            len: u64::from(len),
            max: u64::from(max),
        });
    }
    let len = len as usize;
    if rest.len() < len {
        return Err(ProtoError::Truncated {
            what,
            need: len,
            got: rest.len(),
        });
    }
    expect_end(&rest[len..], what)?;
    Ok(&rest[..len])
}

/// Decodes SDP text: UTF-8 without NUL.
pub(crate) fn sdp_text(bytes: &[u8]) -> Result<String, ProtoError> {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => Ok(text.to_owned()),
        _ => Err(ProtoError::BadText("sdp")),
    }
}

/// Length of an encoder-side buffer as a `u32` field; encoders only ever see
/// validated values, so saturation never happens in a correct program.
pub(crate) fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

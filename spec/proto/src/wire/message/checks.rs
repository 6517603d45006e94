//! The per-field checks of the protocol (nonzero ids, lengths, counts,
//! ranges, cross-field rules), each returning the [`WireError`] that names
//! the field. `validate` is built from them, and `decode` uses the length and
//! count checks before it copies anything out of a header.

use crate::wire::WireError;
use crate::wire::types::{Rect, Status, TIME_NONE};

pub(super) fn nonzero(v: u32, field: &'static str) -> Result<(), WireError> {
    if v == 0 {
        Err(WireError::ZeroId(field))
    } else {
        Ok(())
    }
}

pub(super) fn max_len(len: usize, max: usize, field: &'static str) -> Result<(), WireError> {
    if len > max {
        Err(WireError::TooLong { field, len, max })
    } else {
        Ok(())
    }
}

pub(super) fn max_count(count: usize, max: usize, field: &'static str) -> Result<(), WireError> {
    if count > max {
        Err(WireError::TooMany { field, count, max })
    } else {
        Ok(())
    }
}

pub(super) fn in_range(v: u32, min: u32, max: u32, field: &'static str) -> Result<(), WireError> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(WireError::OutOfRange {
            field,
            value: i64::from(v),
            min: i64::from(min),
            max: i64::from(max),
        })
    }
}

pub(super) fn rule(ok: bool, field: &'static str, rule: &'static str) -> Result<(), WireError> {
    if ok {
        Ok(())
    } else {
        Err(WireError::Inconsistent { field, rule })
    }
}

pub(super) fn time(t: Option<u64>, field: &'static str) -> Result<(), WireError> {
    rule(
        t != Some(TIME_NONE),
        field,
        "Some(TIME_NONE) is not a time; use None",
    )
}

pub(super) fn not_ok(s: Status, field: &'static str) -> Result<(), WireError> {
    rule(s != Status::Ok, field, "an error status must not be Ok")
}

pub(super) fn rect(r: &Rect, field: &'static str) -> Result<(), WireError> {
    rule(
        r.extent_fits(),
        field,
        "x + width and y + height must fit in i32",
    )
}

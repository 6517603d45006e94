//! Media time: nanoseconds in a `u64`, with [`TIME_NONE`] for "no time".
//!
//! The value mirrors GStreamer's `GST_CLOCK_TIME_NONE`, so timestamps pass to
//! the client engine without translation.

/// "No timestamp" (all ones), as in GStreamer.
pub const TIME_NONE: u64 = u64::MAX;

/// Converts a wire/virtqueue time to an `Option`.
pub fn from_raw(ns: u64) -> Option<u64> {
    (ns != TIME_NONE).then_some(ns)
}

/// Converts an `Option` time to its wire/virtqueue form.
pub fn to_raw(ns: Option<u64>) -> u64 {
    ns.unwrap_or(TIME_NONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_all_ones() {
        assert_eq!(from_raw(TIME_NONE), None);
        assert_eq!(from_raw(0), Some(0));
        assert_eq!(to_raw(None), u64::MAX);
        assert_eq!(to_raw(Some(5)), 5);
    }
}

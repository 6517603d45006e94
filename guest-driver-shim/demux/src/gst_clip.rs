//! The samples GStreamer drops when a demuxer trims audio by time.
//!
//! qtdemux (MP4 edit lists) and oggdemux (Vorbis end granule) do not mark
//! samples to drop: they give the decoder a segment in nanoseconds, and
//! GstAudioDecoder clips each decoded buffer to it. The buffer is stamped
//! with its first sample's time (rounded down) and its sample count's
//! duration (rounded to nearest), and the part outside the segment is
//! turned back into samples rounding down, so a local player keeps a sample
//! more than the file declares when the roundings fall that way. The guest
//! marks exactly what that player plays (spec 7.8, DRV-DATA-8), so the
//! client's output equals a local `gst-play-1.0`'s.

use crate::Clip;

const SECOND: u128 = 1_000_000_000;

/// Nanoseconds of `samples` at `rate`, rounded down.
pub(crate) fn ns_floor(samples: u64, rate: u64) -> u64 {
    u64::try_from(u128::from(samples) * SECOND / u128::from(rate.max(1))).unwrap_or(u64::MAX)
}

/// The clip GStreamer applies to the decoded buffer of samples
/// `first .. first + n` (at `rate`, on the segment's timeline) for the
/// segment `start_ns .. stop_ns`.
pub(crate) fn segment_clip(
    first: u64,
    n: u64,
    rate: u64,
    start_ns: u64,
    stop_ns: Option<u64>,
) -> Clip {
    gst_segment_clip(ns_floor(first, rate), n, rate, start_ns, stop_ns)
}

/// The clip GStreamer's audio decoder applies to the `n` samples (at
/// `rate`) it decodes from a buffer stamped `ts_ns`, for the segment
/// `start_ns .. stop_ns`: also what a sink that sees the compressed buffer
/// and the segment (mediaredirsink) marks for the client.
pub fn gst_segment_clip(
    ts_ns: u64,
    n: u64,
    rate: u64,
    start_ns: u64,
    stop_ns: Option<u64>,
) -> Clip {
    let rate128 = u128::from(rate.max(1));
    let ts = u128::from(ts_ns);
    let stop = ts + (u128::from(n) * SECOND + rate128 / 2) / rate128;
    let (start_ns, stop_ns) = (u128::from(start_ns), stop_ns.map(u128::from));
    let all = |head: bool| {
        if head {
            Clip::saturating(n, 0)
        } else {
            Clip::saturating(0, n)
        }
    };
    // gst_segment_clip: wholly before the start, or after the stop.
    if stop < start_ns || (stop == start_ns && ts != stop) {
        return all(true);
    }
    if let Some(e) = stop_ns
        && (ts > e || (ts == e && ts != start_ns))
    {
        return all(false);
    }
    let samples = |ns: u128| u64::try_from(ns * rate128 / SECOND).unwrap_or(u64::MAX);
    let head = samples(start_ns.saturating_sub(ts)).min(n);
    let tail = stop_ns
        .map_or(0, |e| samples(stop.saturating_sub(e)))
        .min(n - head);
    Clip::saturating(head, tail)
}

/// The clip oggdemux and matroskademux mark (in samples, as
/// GstAudioClippingMeta) on the packet decoding to `n` samples from sample
/// `start`: `delay` samples of pre-skip at the stream's start, and
/// `padding` samples at this packet's end.
pub(crate) fn sample_clip(start: u64, n: u64, delay: u64, padding: u64) -> Clip {
    let head = delay.saturating_sub(start).min(n);
    Clip::saturating(head, padding.min(n - head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_gstreamer_1_22_plays() {
        // ffmpeg's AAC priming (1024) at 44.1 kHz: the frame ends 1 ns
        // after the segment start, so one priming sample is played.
        let s = ns_floor(1024, 44_100);
        let clip = segment_clip(0, 1024, 44_100, s, None);
        assert_eq!(clip, Clip::saturating(1023, 0));
        // At 48 kHz it ends exactly at the start: wholly dropped.
        let s = ns_floor(1024, 48_000);
        let clip = segment_clip(0, 1024, 48_000, s, None);
        assert_eq!(clip, Clip::saturating(1024, 0));
        assert_eq!(segment_clip(1024, 1024, 48_000, s, None), Clip::NONE);
        // GStreamer's vorbisenc, 48 704 decoded, granule 48 000: 48 001 played.
        let e = ns_floor(48_000, 48_000);
        assert_eq!(
            segment_clip(47_680, 1024, 48_000, 0, Some(e)),
            Clip::saturating(0, 703)
        );
    }
}

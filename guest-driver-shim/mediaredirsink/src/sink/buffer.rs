//! What one GStreamer buffer becomes on the device ([`BufferInfo`]): its
//! times in stream time, its flags (keyframe, discontinuity, decode-only
//! video outside the segment) and the audio clip the client applies.
//!
//! The sink still sends buffers outside the segment (see `constructed` in
//! `imp.rs`), so this is where their output is marked as not to be shown.

use gstreamer as gst;

use mediaredir_player::BufferInfo;
use mediaredir_proto::data::{Clip, FLAG_DECODE_ONLY, FLAG_DISCONT, FLAG_KEYFRAME};

use super::clip;
use super::stream::Stream;

fn nanos(t: Option<gst::ClockTime>) -> Option<u64> {
    t.map(gst::ClockTime::nseconds)
}

/// The device's description of `buffer` (its mapped bytes `data`,
/// `bytes_used` long) of `stream`, played in `segment`.
pub(super) fn buffer_info(
    stream: &mut Stream,
    buffer: &gst::BufferRef,
    data: &[u8],
    bytes_used: u32,
    segment: Option<&gst::FormattedSegment<gst::ClockTime>>,
) -> BufferInfo {
    let stream_time = |t: Option<gst::ClockTime>| {
        let t = t?;
        Some(
            segment
                .and_then(|s| s.to_stream_time(t))
                .unwrap_or(t)
                .nseconds(),
        )
    };
    let pts = stream_time(buffer.pts());
    let dts = stream_time(buffer.dts()).filter(|d| Some(*d) != pts);
    let mut flags = 0;
    if !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
        flags |= FLAG_KEYFRAME;
    }
    if buffer.flags().contains(gst::BufferFlags::DISCONT) {
        flags |= FLAG_DISCONT;
    }
    // Video outside the segment: decoded for the frames after it, never
    // shown (GstBaseSink no longer drops it: see `constructed`).
    if stream.format.codec.is_video()
        && (buffer.flags().contains(gst::BufferFlags::DECODE_ONLY)
            || buffer.pts().zip(segment).is_some_and(|(t, s)| {
                clip::Segment::of(s).excludes(t.nseconds(), nanos(buffer.duration()))
            }))
    {
        flags |= FLAG_DECODE_ONLY;
    }
    let discont = buffer.flags().contains(gst::BufferFlags::DISCONT);
    let samples = stream
        .decoded
        .samples(data, discont, nanos(buffer.duration()));
    let clip = clip::clip_of(buffer).unwrap_or_else(|| match (samples, buffer.pts(), segment) {
        // What GStreamer's decoder cuts, less what the client's
        // decoder will cut itself: the group flushes the
        // presentation at the segment's start in stream time before
        // the first buffer, so the client clips buffers timed
        // before that (tsdemux's audio before the first picture);
        // clipping those here too would cut twice where the engine
        // trims itself (a52dec, mpg123). qtdemux's edit list starts
        // the segment after the priming at stream time 0, which
        // the client cannot see: the sink clips it.
        (Some(n), Some(t), Some(s)) => {
            let want = stream
                .decoded
                .segment_clip(n, t.nseconds(), &clip::Segment::of(s));
            let flushed_at = clip::Segment {
                start: stream_time(Some(s.start().unwrap_or_default())).unwrap_or(0),
                stop: None,
            };
            let client = stream
                .decoded
                .segment_clip(n, pts.unwrap_or(0), &flushed_at);
            Clip::saturating(
                u64::from(want.start).saturating_sub(u64::from(client.start)),
                u64::from(want.end),
            )
        }
        _ => Clip::NONE,
    });
    BufferInfo {
        bytes_used,
        pts,
        dts,
        duration: nanos(buffer.duration()),
        flags,
        clip,
    }
}

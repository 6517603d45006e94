//! The audio clipping the sink hands the client with each buffer: what
//! the decoder of a local player would drop from it.
//!
//! Upstream demuxers say it two ways. oggdemux and matroskademux mark
//! GstAudioClippingMeta (Opus pre-skip, end padding), copied as it is.
//! qtdemux gives the edit list of an MP4 as the segment instead (AAC
//! priming and padding), which the decoder clips its output to; the sink
//! computes the same samples from the segment with GStreamer's roundings
//! (`redir_demux::gst_segment_clip`).

use gstreamer as gst;
use gstreamer_audio as gst_audio;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::StreamFormat;
use mediaredir_proto::data::Clip;

/// Samples of one AAC frame (AAC-LC; the sink's caps give the rate).
const AAC_FRAME: u64 = 1024;

/// The buffer's GstAudioClippingMeta in samples, if it has one.
pub(super) fn clip_of(buffer: &gst::BufferRef) -> Option<Clip> {
    let meta = buffer.meta::<gst_audio::AudioClippingMeta>()?;
    let samples = |v: gst::GenericFormattedValue| match v {
        gst::GenericFormattedValue::Default(Some(n)) => *n,
        _ => 0,
    };
    Some(Clip::saturating(samples(meta.start()), samples(meta.end())))
}

/// What the decoder clips from an AAC buffer outside the segment (MP4 edit
/// lists); nothing for other codecs, whose decoded length the sink does
/// not know.
pub(super) fn segment_clip(
    format: &StreamFormat,
    segment: Option<&gst::FormattedSegment<gst::ClockTime>>,
    buffer: &gst::BufferRef,
) -> Clip {
    let (Some(segment), Some(pts)) = (segment, buffer.pts()) else {
        return Clip::NONE;
    };
    if format.codec != Codec::Aac || format.sample_rate == 0 {
        return Clip::NONE;
    }
    redir_demux::gst_segment_clip(
        pts.nseconds(),
        AAC_FRAME,
        u64::from(format.sample_rate),
        segment.start().map_or(0, gst::ClockTime::nseconds),
        segment.stop().map(gst::ClockTime::nseconds),
    )
}

//! The audio clipping the sink hands the client with each buffer: what
//! the decoder of a local player would drop from it.
//!
//! Upstream elements say it two ways. Parsers and demuxers that know the
//! codec's delay and padding (oggdemux and matroskademux for Opus,
//! mpegaudioparse) mark GstAudioClippingMeta, copied as it is. Demuxers
//! that trim by time give a segment instead: qtdemux the edit list of an
//! MP4 (AAC priming and padding), oggdemux the end granule of a Vorbis
//! stream as the segment's stop. GstAudioDecoder stamps each decoded
//! buffer with its input buffer's timestamp and the duration of the samples
//! it decoded (rounded to nearest), and `gst_audio_buffer_clip` cuts it to
//! the segment, turning the times outside back into samples rounding down
//! (`redir_demux::gst_segment_clip`). The sink does the same with the
//! number of samples the client's decoder will output for the buffer
//! ([`Decoded`]), so the client plays what a local player plays. A buffer
//! wholly outside the segment is still sent, its output wholly clipped: the
//! decoder needs it for the next packet (AAC overlap, Vorbis windows).

use gstreamer as gst;
use gstreamer_audio as gst_audio;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::data::Clip;

use redir_demux::VorbisModes as Modes;

/// Samples of one AAC frame (AAC-LC; the sink's caps give the rate).
const AAC_FRAME: u64 = 1024;
const SECOND: u128 = 1_000_000_000;

/// The buffer's GstAudioClippingMeta in samples, if it has one.
pub(super) fn clip_of(buffer: &gst::BufferRef) -> Option<Clip> {
    let meta = buffer.meta::<gst_audio::AudioClippingMeta>()?;
    let samples = |v: gst::GenericFormattedValue| match v {
        gst::GenericFormattedValue::Default(Some(n)) => *n,
        _ => 0,
    };
    Some(Clip::saturating(samples(meta.start()), samples(meta.end())))
}

/// How many samples the client's decoder outputs for each buffer of an
/// audio stream.
#[derive(Debug)]
pub(super) struct Decoded {
    codec: Codec,
    rate: u64,
    /// Vorbis: the block sizes of the stream's modes.
    vorbis: Option<Modes>,
}

impl Decoded {
    /// For a stream of `codec` at `rate` with the wire codec data.
    pub(super) fn new(codec: Codec, rate: u32, codec_data: &[u8]) -> Decoded {
        let vorbis = (codec == Codec::Vorbis)
            .then(|| Modes::from_codec_data(codec_data))
            .flatten();
        Decoded {
            codec,
            rate: u64::from(rate),
            vorbis,
        }
    }

    /// The samples decoded from the packet `data` (`discont`: the first
    /// after a flush or a gap, where the decoder restarts), whose duration
    /// upstream says is `duration_ns`; `None` if unknown. Called for every
    /// packet, in order, since a Vorbis packet's count depends on the one
    /// before.
    pub(super) fn samples(
        &mut self,
        data: &[u8],
        discont: bool,
        duration_ns: Option<u64>,
    ) -> Option<u64> {
        if self.rate == 0 || self.codec.is_video() {
            return None;
        }
        match (self.codec, self.vorbis.as_mut()) {
            (Codec::Vorbis, Some(modes)) => {
                if discont {
                    modes.restart();
                }
                Some(modes.duration(data))
            }
            (Codec::Vorbis, None) => None,
            (Codec::Aac, _) => Some(AAC_FRAME),
            // flacparse stamps a short last frame with the stream's block
            // duration; the frame header has its real size.
            (Codec::Flac, _) => flac_block_size(data),
            // Whole frames with exact durations (FLAC, Opus, MP3, AC-3...):
            // the duration back in samples, to nearest.
            _ => duration_ns.map(|d| {
                let n = (u128::from(d) * u128::from(self.rate) + SECOND / 2) / SECOND;
                u64::try_from(n).unwrap_or(u64::MAX)
            }),
        }
    }

    /// What the decoder clips from the `n` samples it decodes from a
    /// buffer stamped `pts` (ns) for `segment`.
    pub(super) fn segment_clip(&self, n: u64, pts: u64, segment: &Segment) -> Clip {
        if n == 0 {
            return Clip::NONE;
        }
        redir_demux::gst_segment_clip(pts, n, self.rate, segment.start, segment.stop)
    }
}

/// The samples of the FLAC frame starting `frame`, from its header's
/// block size (codes 6 and 7: after the UTF-8 coded frame number).
fn flac_block_size(frame: &[u8]) -> Option<u64> {
    if frame.len() < 5 || frame[0] != 0xFF || frame[1] & 0xFE != 0xF8 {
        return None;
    }
    let code = frame[2] >> 4;
    match code {
        1 => Some(192),
        2..=5 => Some(576 << (code - 2)),
        8..=15 => Some(256 << (code - 8)),
        6 | 7 => {
            let at = 4 + match frame[4].leading_ones() {
                0 => 1,
                n @ 2..=7 => n as usize,
                _ => return None,
            };
            let size = if code == 6 {
                u64::from(*frame.get(at)?)
            } else {
                u64::from(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]))
            };
            Some(size + 1)
        }
        _ => None,
    }
}

/// A time segment's bounds (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Segment {
    pub start: u64,
    pub stop: Option<u64>,
}

impl Segment {
    pub(super) fn of(segment: &gst::FormattedSegment<gst::ClockTime>) -> Segment {
        Segment {
            start: segment.start().map_or(0, gst::ClockTime::nseconds),
            stop: segment.stop().map(gst::ClockTime::nseconds),
        }
    }

    /// Whether a frame at `pts` lasting `duration` lies wholly outside
    /// the segment, so that GstVideoDecoder decodes and drops it
    /// (`gst_segment_clip`'s rules): a video frame the sink then flags
    /// `DECODE_ONLY` (the key frame before a seek position, a frame
    /// presented past the end of an MP4 track).
    pub(super) fn excludes(&self, pts: u64, duration: Option<u64>) -> bool {
        if let Some(stop) = self.stop
            && (pts > stop || (self.start != stop && pts == stop))
        {
            return true;
        }
        match duration.map(|d| pts.saturating_add(d)) {
            Some(end) => end < self.start || (end != pts && end == self.start),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_frames_outside_the_segment_are_excluded() {
        let seg = Segment {
            start: 1_000,
            stop: Some(2_000),
        };
        let d = Some(40);
        assert!(seg.excludes(2_000, d), "at the stop");
        assert!(seg.excludes(2_040, d), "past the stop");
        assert!(!seg.excludes(1_960, d), "ends at the stop");
        assert!(seg.excludes(960, d), "ends at the start");
        assert!(!seg.excludes(961, d), "overlaps the start");
        assert!(
            !seg.excludes(500, None),
            "no duration: only the stop counts"
        );
        let open = Segment {
            start: 0,
            stop: None,
        };
        assert!(!open.excludes(u64::MAX / 2, d));
    }

    #[test]
    fn aac_priming_in_the_segment_start_is_clipped_as_gstreamer_plays_it() {
        let mut d = Decoded::new(Codec::Aac, 44_100, &[]);
        // ffmpeg's edit list: 1024 samples of priming, start rounded down.
        let seg = Segment {
            start: 23_219_954,
            stop: None,
        };
        let n = d.samples(&[0], true, None).unwrap();
        // The frame ends 1 ns after the start: one priming sample plays.
        assert_eq!(d.segment_clip(n, 0, &seg), Clip::saturating(1023, 0));
        assert_eq!(d.segment_clip(n, 23_219_954, &seg), Clip::NONE);
    }

    #[test]
    fn flac_frames_count_their_header_block_size_not_the_duration() {
        let mut d = Decoded::new(Codec::Flac, 48_000, &[]);
        // flacenc's short last frame (1920 = 0x77f + 1, code 7) arrives
        // stamped with the stream's 96 ms block duration.
        let last = [0xFF, 0xF8, 0x79, 0x08, 0x0a, 0x07, 0x7f, 0x00];
        assert_eq!(d.samples(&last, false, Some(96_000_000)), Some(1920));
        // Code 6 after a two-byte frame number; code 5 is 4608.
        let short = [0xFF, 0xF8, 0x69, 0x08, 0xc2, 0x80, 0x1f, 0x00];
        assert_eq!(d.samples(&short, false, None), Some(32));
        assert_eq!(
            d.samples(&[0xFF, 0xF8, 0x59, 0x08, 0], false, None),
            Some(4608)
        );
        assert_eq!(d.samples(&[0, 0, 0, 0, 0], false, Some(1)), None);
        // Its last frame ends at the 1 s stop: nothing clipped.
        let seg = Segment {
            start: 0,
            stop: Some(1_000_000_000),
        };
        assert_eq!(d.segment_clip(1920, 960_000_000, &seg), Clip::NONE);
    }

    #[test]
    fn a_frame_past_the_stop_is_clipped_to_it() {
        // Codecs with exact durations (here AC-3) at 48 kHz: a 4608-sample frame
        // sticking out 608 samples past a 1 s stop keeps what is inside.
        let mut d = Decoded::new(Codec::Ac3, 48_000, &[]);
        let n = d.samples(&[0], false, Some(96_000_000)).unwrap();
        assert_eq!(n, 4608);
        let seg = Segment {
            start: 0,
            stop: Some(1_000_000_000),
        };
        let pts = 1_000_000_000 - 4000 * 1_000_000_000 / 48_000;
        assert_eq!(d.segment_clip(n, pts, &seg), Clip::saturating(0, 608));
        // Wholly past the stop: all of it, still sent for decoder state.
        assert_eq!(
            d.segment_clip(n, 1_000_000_000 + 1, &seg),
            Clip::saturating(0, 4608)
        );
    }

    #[test]
    fn unknown_counts_give_no_clip() {
        let mut d = Decoded::new(Codec::Mp3, 44_100, &[]);
        assert_eq!(d.samples(&[0], false, None), None);
        let mut v = Decoded::new(Codec::Vorbis, 48_000, &[]);
        // Vorbis without (valid) codec data: the count is unknown.
        assert_eq!(v.samples(&[0], false, Some(21_333_333)), None);
    }
}

//! Audio decoded before the first picture of a transport or program stream.
//!
//! ffmpeg times an AAC priming frame (and AC-3's, MP2's) ahead of the
//! first video frame. A local player (tsdemux or mpegpsdemux, then
//! decodebin) starts its segment at the first picture: the parser passes
//! on audio frames that end less than two frames before it (baseparse's
//! lead-in; earlier ones it drops undecoded), the decoder decodes them and
//! GstAudioDecoder cuts its output to the segment by time. The guest sends
//! exactly that as [`Sample::clip`]s and drops what the parser drops, and
//! sends the earliest audio frame first, so that the client's segment (7.13:
//! fixed by the first sample) starts with it and clips nothing by time.

use crate::gst_clip::gst_segment_clip;
use crate::{Sample, Track};

/// Frames of lead-in baseparse keeps before a segment start (the audio
/// parsers' `gst_base_parse_set_frame_rate (.., 2, 2)`).
const LEAD_IN_FRAMES: u64 = 2;

/// One audio track's decoder timeline.
#[derive(Debug, Clone)]
struct Audio {
    track: u32,
    rate: u64,
    /// Time of the first frame the decoder gets.
    base: Option<u64>,
    /// Samples decoded before the next frame.
    position: u64,
    /// Past the segment start: nothing more to cut.
    done: bool,
}

/// The cutting of every audio track at the first picture.
#[derive(Debug, Clone, Default)]
pub(super) struct StartTrim {
    /// The first picture's time; `None` without video (nothing is cut).
    start: Option<u64>,
    audio: Vec<Audio>,
}

/// Samples in a frame of `duration_ns` (rounded down from whole samples).
fn samples_in(duration_ns: u64, rate: u64) -> u64 {
    let n = (u128::from(duration_ns) * u128::from(rate)).div_ceil(1_000_000_000);
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl StartTrim {
    /// The trim of `tracks`, the first samples `first` (in file order)
    /// telling where the first picture is.
    pub(super) fn new(tracks: &[Track], first: &[Sample]) -> StartTrim {
        let video = tracks.iter().find(|t| t.codec.is_video()).map(|t| t.id);
        let start = video.and_then(|v| first.iter().find(|s| s.track == v)?.pts);
        let audio = tracks
            .iter()
            .filter(|t| !t.codec.is_video() && t.sample_rate > 0)
            .map(|t| Audio {
                track: t.id,
                rate: u64::from(t.sample_rate),
                base: None,
                position: 0,
                done: start.is_none(),
            })
            .collect();
        StartTrim { start, audio }
    }

    /// Clips the first samples read (`first`, in file order) and puts the
    /// earliest first: the client's segment starts at the first sample it
    /// gets.
    pub(super) fn apply_first(&mut self, first: &mut Vec<Sample>) {
        self.apply(first);
        let earliest = first
            .iter()
            .enumerate()
            .filter(|(i, s)| !first[..*i].iter().any(|e| e.track == s.track))
            .min_by_key(|(_, s)| s.pts.unwrap_or(u64::MAX))
            .map(|(i, _)| i);
        if let Some(i) = earliest.filter(|&i| i > 0) {
            let s = first.remove(i);
            first.insert(0, s);
        }
    }

    /// Clips (or drops) the audio frames of `out` that a local player cuts.
    pub(super) fn apply(&mut self, out: &mut Vec<Sample>) {
        let Some(start) = self.start else {
            return;
        };
        out.retain_mut(|s| {
            let Some(a) = self
                .audio
                .iter_mut()
                .find(|a| a.track == s.track && !a.done)
            else {
                return true;
            };
            let (Some(pts), Some(duration)) = (s.pts, s.duration) else {
                return true;
            };
            if a.base.is_none() && pts + duration + LEAD_IN_FRAMES * duration < start {
                // baseparse drops it before the decoder sees it.
                return false;
            }
            let n = samples_in(duration, a.rate);
            let base = *a.base.get_or_insert(pts);
            // GstAudioDecoder stamps its output by counting samples.
            let ts = base + crate::bytes::scale(a.position, 1_000_000_000, a.rate);
            a.position += n;
            s.clip = gst_segment_clip(ts, n, a.rate, start, None);
            a.done = pts >= start && s.clip.is_none();
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Clip, Codec};

    fn frame(track: u32, pts: u64, duration: u64) -> Sample {
        Sample {
            pts: Some(pts),
            dts: Some(pts),
            duration: Some(duration),
            ..Sample::audio(track, 0, 0, 1, vec![0])
        }
    }

    #[test]
    fn ffmpeg_aac_priming_before_the_first_picture() {
        // ffmpeg's TS: video at 1.423222222 s, AAC (44.1 kHz) 2090 ticks
        // earlier; tsdemux + aacparse + avdec_aac drop the first 1024
        // decoded samples (found by decoding both with GStreamer 1.22).
        let tracks = [
            Track::video(1, Codec::H264, 160, 120),
            Track::audio(2, Codec::Aac, 44_100, 1),
        ];
        let d = crate::bytes::ticks_to_ns(1024, 44_100);
        let v = 1_423_222_222;
        let a = 1_400_000_000;
        let mut out = vec![frame(1, v, 40_000_000), frame(2, a, d), frame(2, a + d, d)];
        let mut trim = StartTrim::new(&tracks, &out);
        trim.apply_first(&mut out);
        assert_eq!(out[0].track, 2, "the earliest frame goes first");
        assert_eq!(
            out[0].clip,
            Clip {
                start: 1024,
                end: 0
            }
        );
        assert_eq!(out[2].clip, Clip::NONE);
        let mut later = vec![frame(2, a + 2 * d, d)];
        trim.apply(&mut later);
        assert_eq!(later[0].clip, Clip::NONE);
    }

    #[test]
    fn frames_long_before_the_picture_are_dropped() {
        let tracks = [
            Track::video(1, Codec::H264, 160, 120),
            Track::audio(2, Codec::Ac3, 48_000, 2),
        ];
        let (d, v) = (32_000_000, 1_000_000_000);
        let mut out = vec![frame(1, v, 40_000_000)];
        out.extend((0..5).map(|i| frame(2, v + i * d - 7 * d / 2, d)));
        StartTrim::new(&tracks, &out).apply_first(&mut out);
        let audio: Vec<Clip> = out
            .iter()
            .filter(|s| s.track == 2)
            .map(|s| s.clip)
            .collect();
        // The first ends more than two frames early: never decoded.
        assert_eq!(
            audio,
            [
                Clip {
                    start: 1536,
                    end: 0
                },
                Clip {
                    start: 1536,
                    end: 0
                },
                Clip { start: 768, end: 0 },
                Clip::NONE
            ]
        );
    }

    #[test]
    fn audio_alone_is_not_cut() {
        let tracks = [Track::audio(2, Codec::Mp2, 48_000, 2)];
        let mut out = vec![frame(2, 5, 24_000_000)];
        StartTrim::new(&tracks, &out).apply_first(&mut out);
        assert_eq!(out[0].clip, Clip::NONE);
    }
}

//! MP3 elementary streams (`.mp3`), and the MPEG audio stream reader that
//! WAV files with MP3 inside share.
//!
//! Frames are found as [`crate::elementary`] describes. Layer III is the
//! MP3 codec, Layer II (`.mp2`, DVB and DVD audio) the MP2 codec; Layer I
//! and free-format streams are found and refused by name, as the device
//! has no codec for them. An encoder's
//! info frame (Xing/Info/LAME, VBRI) is no audio: it is not passed on, but
//! its priming and padding counts go into the track.
//!
//! Gapless playback: GStreamer's mpegaudioparse (1.22), reading a file
//! from bytes, cuts what a LAME tag declares with GstAudioClippingMeta on
//! the frames at either end ([`Gapless`]); the same clips go to the client
//! on the same frames, so its output equals a local player's.

use crate::elementary::{FileDemuxer, First, FrameStream, Frames, find_first};
use crate::mpa::{self, Header, InfoFrame};
use crate::reader::Reader;
use crate::{Clip, Codec, DemuxError, Sample, Track};

/// Samples an MP3 decoder outputs before the encoder's first sample: what
/// mpegaudioparse adds to a LAME tag's encoder delay ("decoder delay").
const DECODER_DELAY: u64 = 529;

/// Frames of one MPEG audio stream.
pub(crate) struct MpaStream {
    frames: Frames<Header>,
    gapless: Option<Gapless>,
}

/// Demuxer of one MP3 or MP2 file.
pub(crate) type Mp3Demuxer = FileDemuxer<MpaStream>;

/// The container name of `.mp3` files in messages.
pub(crate) const NAME: &str = "MP3";

/// The clipping mpegaudioparse gives each frame of a stream with a LAME
/// tag: everything before sample `start` (encoder delay plus the decoder's
/// 529) and from sample `end` (the Xing frame count's samples plus 529,
/// less the encoder padding) of the decoded stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gapless {
    /// Samples per frame.
    spf: u64,
    /// Frames the Xing header counts; frames after them are not clipped.
    frames: u64,
    start: u64,
    /// `None` where the padding exceeds the stream (GStreamer's unsigned
    /// end wraps around: nothing is cut at the end).
    end: Option<u64>,
    /// The next frame's number.
    next: u64,
}

impl Gapless {
    /// The gapless data of a stream whose info frame is `info`, if
    /// mpegaudioparse would use it: a LAME tag and a frame count.
    pub(crate) fn new(info: &InfoFrame, spf: u32) -> Option<Gapless> {
        let frames = u64::from(info.frames.filter(|&n| n > 0)?);
        if !info.lame {
            return None;
        }
        let spf = u64::from(spf);
        Some(Gapless {
            spf,
            frames,
            start: u64::from(info.delay) + DECODER_DELAY,
            end: (frames * spf + DECODER_DELAY).checked_sub(u64::from(info.padding)),
            next: 0,
        })
    }

    /// The clip of the next frame (gst_mpeg_audio_parse_pre_push_frame's
    /// tests, in its order).
    pub(crate) fn next_clip(&mut self) -> Clip {
        let n = self.next;
        self.next += 1;
        let (pos, pos_end) = (n * self.spf, (n + 1) * self.spf);
        let end = self.end.unwrap_or(u64::MAX);
        if !(pos <= self.start || pos_end >= end) || n >= self.frames {
            Clip::NONE
        } else if pos_end <= self.start {
            Clip::saturating(self.spf, 0)
        } else if pos <= self.start {
            Clip::saturating(self.start - pos, 0)
        } else if pos >= end {
            Clip::saturating(0, self.spf)
        } else {
            Clip::saturating(0, pos_end - end)
        }
    }
}

impl MpaStream {
    /// For a stream inside WAV: GStreamer's wavparse hands mpegaudioparse a
    /// time segment, so the LAME tag is not applied, and the data chunk's
    /// end was cut at whole blocks by the caller.
    pub(crate) fn in_wav(&mut self) {
        self.gapless = None;
        self.frames.cut_end_ok = true;
    }
}

impl FrameStream for MpaStream {
    /// Finds the first frame at or after the reader's position, consumes an
    /// encoder's info frame and describes the stream as track `id`.
    fn open(
        r: &mut Reader,
        id: u32,
        container: &'static str,
    ) -> Result<(MpaStream, Track), DemuxError> {
        let start = r.offset();
        let first = match find_first::<Header>(r)? {
            First::Found(h) => h,
            First::Unsized => {
                return Err(DemuxError::Unsupported {
                    container,
                    feature: "free-format MPEG audio (frame headers without a bitrate)",
                });
            }
            First::Nothing => {
                return Err(DemuxError::corrupt(
                    container,
                    format!("no MPEG audio frames from byte {start}"),
                ));
            }
        };
        let codec = match first.layer {
            3 => Codec::Mp3,
            2 => Codec::Mp2,
            _ => {
                return Err(DemuxError::NotDeviceCodec {
                    container,
                    codec: first.codec_name(),
                });
            }
        };
        let frame = r.peek(first.len())?;
        let info = mpa::info_frame(&first, frame);
        if info.is_some() {
            r.skip(first.len() as u64);
        }
        let info = info.unwrap_or_default();
        let track = Track {
            start_trim: u64::from(info.delay),
            end_trim: u64::from(info.padding),
            ..Track::audio(id, codec, first.sample_rate, first.channels)
        };
        let stream = MpaStream {
            frames: Frames::new(first, id, container),
            gapless: Gapless::new(&info, first.samples()),
        };
        Ok((stream, track))
    }

    fn next(&mut self, r: &mut Reader) -> Result<Option<Sample>, DemuxError> {
        let sample = self
            .frames
            .next_timed(r, |h| (h.samples(), h.sample_rate))?;
        Ok(sample.map(|mut s| {
            if let Some(g) = &mut self.gapless {
                s.clip = g.next_clip();
            }
            s
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lame(frames: u32, delay: u32, padding: u32) -> InfoFrame {
        InfoFrame {
            frames: Some(frames),
            delay,
            padding,
            lame: true,
        }
    }

    fn clips(g: &mut Gapless, n: usize) -> Vec<Clip> {
        (0..n).map(|_| g.next_clip()).collect()
    }

    #[test]
    fn lame_tool_file_clips_both_ends() {
        // lame 3.100, 2 s at 44.1 kHz: 78 frames, delay 576, padding 1080
        // (what mpegaudioparse logs: start 1105 end 0, then start 0 end 551).
        let mut g = Gapless::new(&lame(78, 576, 1080), 1152).unwrap();
        let c = clips(&mut g, 79);
        assert_eq!(
            c[0],
            Clip {
                start: 1105,
                end: 0
            }
        );
        assert!(c[1..77].iter().all(|c| c.is_none()));
        assert_eq!(c[77], Clip { start: 0, end: 551 });
        // A frame beyond the Xing count ("Frankenstein" stream) is kept.
        assert_eq!(c[78], Clip::NONE);
        let kept: u64 = 78 * 1152 - c.iter().map(|c| u64::from(c.start + c.end)).sum::<u64>();
        assert_eq!(kept, 88_200);
    }

    #[test]
    fn delay_longer_than_a_frame_clips_whole_frames() {
        // MPEG-2 Layer III: 576 samples a frame, 1105 to cut at the start.
        let mut g = Gapless::new(&lame(10, 576, 0), 576).unwrap();
        let c = clips(&mut g, 10);
        assert_eq!(c[0], Clip { start: 576, end: 0 });
        assert_eq!(c[1], Clip { start: 529, end: 0 });
        // The end: 10 * 576 + 529 is past the last frame's end.
        assert!(c[2..].iter().all(|c| c.is_none()));
        let mut g = Gapless::new(&lame(10, 0, 1200), 576).unwrap();
        let c = clips(&mut g, 10);
        assert_eq!(c[8], Clip { start: 0, end: 95 });
        assert_eq!(c[9], Clip { start: 0, end: 576 });
    }

    #[test]
    fn only_a_lame_tag_with_a_frame_count_clips() {
        let ffmpeg = InfoFrame {
            lame: false,
            ..lame(78, 576, 1080)
        };
        assert_eq!(Gapless::new(&ffmpeg, 1152), None);
        let no_count = InfoFrame {
            frames: None,
            ..lame(78, 576, 1080)
        };
        assert_eq!(Gapless::new(&no_count, 1152), None);
    }
}

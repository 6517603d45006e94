//! MP3 elementary streams (`.mp3`), and the MPEG audio stream reader that
//! WAV files with MP3 inside share.
//!
//! Frames are found as [`crate::elementary`] describes. Layer III is the
//! MP3 codec, Layer II (`.mp2`, DVB and DVD audio) the MP2 codec; Layer I
//! and free-format streams are found and refused by name, as the device
//! has no codec for them. An encoder's
//! info frame (Xing/Info/LAME, VBRI) is no audio: it is not passed on, but
//! its priming and padding counts go into the track.

use crate::elementary::{FileDemuxer, First, FrameStream, Frames, find_first};
use crate::mpa::{self, Header};
use crate::reader::Reader;
use crate::{Codec, DemuxError, Sample, Track};

/// Frames of one MPEG audio stream.
pub(crate) type MpaStream = Frames<Header>;

/// Demuxer of one MP3 or MP2 file.
pub(crate) type Mp3Demuxer = FileDemuxer<MpaStream>;

/// The container name of `.mp3` files in messages.
pub(crate) const NAME: &str = "MP3";

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
        let stream = Frames::new(first, id, container);
        Ok((stream, track))
    }

    fn next(&mut self, r: &mut Reader) -> Result<Option<Sample>, DemuxError> {
        self.next_timed(r, |h| (h.samples(), h.sample_rate))
    }
}

//! MP3 elementary streams (`.mp3`), and the MPEG audio stream reader that
//! WAV files with MP3 inside share.
//!
//! Frames are found as [`crate::elementary`] describes. Layer III is the
//! MP3 codec, Layer II (`.mp2`, DVB and DVD audio) the MP2 codec; Layer I
//! and free-format streams are found and refused by name, as the device
//! has no codec for them. An encoder's
//! info frame (Xing/Info/LAME, VBRI) is no audio: it is not passed on, but
//! its priming and padding counts go into the track.

use std::fs::File;
use std::path::Path;

use crate::elementary::{First, find_first, next_frame};
use crate::mpa::{self, Header};
use crate::reader::Reader;
use crate::{Codec, DemuxError, Demuxer, Sample, Track, tags};

const NAME: &str = "MP3";

/// Frames of one MPEG audio stream read from a [`Reader`].
pub(crate) struct MpaStream {
    first: Header,
    track: u32,
    /// Samples before the next frame.
    position: u64,
    container: &'static str,
    /// The reader's end was cut by the caller, maybe inside a frame.
    pub(crate) cut_end_ok: bool,
}

impl MpaStream {
    /// Finds the first frame at or after the reader's position, consumes an
    /// encoder's info frame and describes the stream as track `id`.
    pub(crate) fn open(
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
            first,
            track: id,
            position: 0,
            container,
            cut_end_ok: false,
        };
        Ok((stream, track))
    }

    /// The next frame, `None` at the reader's end.
    pub(crate) fn next(&mut self, r: &mut Reader) -> Result<Option<Sample>, DemuxError> {
        let Some((h, data)) = next_frame(r, &self.first, self.container, self.cut_end_ok)? else {
            return Ok(None);
        };
        let (position, samples) = (self.position, u64::from(h.samples()));
        self.position += samples;
        let rate = u64::from(h.sample_rate);
        Ok(Some(Sample::audio(
            self.track, position, samples, rate, data,
        )))
    }
}

/// Demuxer of one MP3 file.
pub(crate) struct Mp3Demuxer {
    reader: Reader,
    stream: MpaStream,
    tracks: Vec<Track>,
}

impl Mp3Demuxer {
    /// Skips the tags and finds the first frame.
    pub(crate) fn open(path: &Path) -> Result<Self, DemuxError> {
        let mut reader = Reader::new(File::open(path)?)?;
        tags::trim_trailing_tags(&mut reader)?;
        tags::skip_id3v2(&mut reader, NAME)?;
        let (stream, track) = MpaStream::open(&mut reader, 1, NAME)?;
        Ok(Mp3Demuxer {
            reader,
            stream,
            tracks: vec![track],
        })
    }
}

impl Demuxer for Mp3Demuxer {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        self.stream.next(&mut self.reader)
    }
}

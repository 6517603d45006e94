//! Raw MPEG-1/2 video elementary streams (`.m1v`, `.m2v`, `.mpv`: ffmpeg's
//! `mpeg1video`/`mpeg2video` muxers), which start with a sequence header
//! (`00 00 01 B3`).
//!
//! The stream has no container: access units are cut at picture
//! boundaries as in a program stream (`mpv::next_access_unit`), and timed
//! from the sequence header's frame rate, frame `n` at `n / rate` in
//! decode order, as GStreamer's `mpegvideoparse` times a stream without
//! time stamps. Like `avidemux`, only intra pictures get a presentation
//! time; the decoder orders B-pictures itself. Memory is bounded: bytes
//! are read 64 KiB at a time and a picture may not exceed [`MAX_AU`].

use std::fs::File;
use std::path::Path;

use crate::reader::Reader;
use crate::{Clip, Codec, DemuxError, Demuxer, Sample, Track, bytes, mpv};

const NAME: &str = "MPEG video";
/// Bytes read at a time.
const READ: usize = 64 << 10;
/// Largest picture gathered.
const MAX_AU: usize = 16 << 20;

/// Whether `head` starts an MPEG-1/2 video elementary stream.
pub(crate) fn is_mpeg_video(head: &[u8]) -> bool {
    head.starts_with(&[0, 0, 1, 0xB3])
}

/// Demuxer of one MPEG-1/2 video elementary stream file.
pub(crate) struct MpvDemuxer {
    reader: Reader,
    tracks: Vec<Track>,
    /// Bytes read but not yet cut, and the state of the cut.
    pending: Vec<u8>,
    scan: usize,
    in_slices: bool,
    /// Pictures sent so far (the next one's frame number).
    frame: u64,
    done: bool,
}

impl MpvDemuxer {
    /// Reads the first sequence header.
    pub(crate) fn open(path: &Path) -> Result<Self, DemuxError> {
        let mut reader = Reader::new(File::open(path)?)?;
        let head = reader.peek(12)?;
        if !is_mpeg_video(head) || head.len() < 12 {
            return Err(DemuxError::corrupt(
                NAME,
                "no whole sequence header at the start",
            ));
        }
        let size = mpv::describe(head).size.filter(|&(w, h)| w > 0 && h > 0);
        let (Some((width, height)), Some(fps)) = (size, mpv::frame_rate(head)) else {
            return Err(DemuxError::corrupt(
                NAME,
                "the sequence header at byte 0 has no picture size or frame rate",
            ));
        };
        let mut track = Track::video(1, Codec::Mpeg2Video, width, height);
        track.fps = Some(fps);
        Ok(MpvDemuxer {
            reader,
            tracks: vec![track],
            pending: Vec::new(),
            scan: 0,
            in_slices: false,
            frame: 0,
            done: false,
        })
    }

    /// Sends `pending[..len]` as one picture.
    fn emit(&mut self, len: usize) -> Sample {
        let data: Vec<u8> = self.pending.drain(..len).collect();
        self.scan = 0;
        self.in_slices = false;
        let d = mpv::describe(&data);
        let keyframe = d.intra && d.sequence;
        let (num, den) = self.tracks[0].fps.unwrap_or((25, 1));
        let step = u64::from(den) * 1_000_000_000;
        let time = bytes::scale(self.frame, step, u64::from(num));
        self.frame += 1;
        Sample {
            track: 1,
            pts: keyframe.then_some(time),
            dts: Some(time),
            duration: Some(bytes::scale(1, step, u64::from(num))),
            keyframe,
            discont: false,
            data,
            clip: Clip::NONE,
            decode_only: false,
        }
    }
}

impl Demuxer for MpvDemuxer {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        loop {
            if let Some(p) =
                mpv::next_access_unit(&self.pending, &mut self.scan, &mut self.in_slices)
            {
                return Ok(Some(self.emit(p)));
            }
            if self.done {
                return Ok((!self.pending.is_empty()).then(|| self.emit(self.pending.len())));
            }
            if self.pending.len() > MAX_AU {
                return Err(DemuxError::corrupt(
                    NAME,
                    format!(
                        "a picture longer than {MAX_AU} bytes before byte {}",
                        self.reader.offset()
                    ),
                ));
            }
            let more = self.reader.peek(READ)?;
            if more.is_empty() {
                self.done = true;
                continue;
            }
            let n = more.len();
            self.pending.extend_from_slice(more);
            self.reader.skip(n as u64);
        }
    }
}

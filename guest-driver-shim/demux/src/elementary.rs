//! Frame-by-frame reading of elementary audio streams (MP3, ADTS AAC),
//! where each frame header gives the length of its frame.
//!
//! There is no index: the first frame is only trusted when the frame after
//! it has a matching header too, so stray sync bytes before the audio do
//! not start a wrong stream; after that every frame must follow the one
//! before, and anything else is reported with its byte offset.

use std::fs::File;
use std::path::Path;

use crate::reader::Reader;
use crate::{DemuxError, Demuxer, Sample, Track, tags};

/// How far junk before the first frame is searched.
const SCAN: usize = 64 << 10;
/// Longer than any MPEG audio or ADTS frame (ADTS: 13-bit length).
pub(crate) const MAX_FRAME: usize = 8192;

/// A frame header of an elementary stream.
pub(crate) trait FrameHeader: Sized + Copy {
    /// Parses a header at the start of `b`.
    fn parse(b: &[u8]) -> Option<Self>;
    /// Frame length with header; 0 when the header does not say (free format).
    fn len(&self) -> usize;
    /// Whether `other` can be the next frame of the stream that `self` began.
    fn same_stream(&self, other: &Self) -> bool;
}

/// What a search for the first frame found.
pub(crate) enum First<H> {
    /// A frame confirmed by the next one; the reader is at it.
    Found(H),
    /// Only headers without a frame length (MPEG audio free format).
    Unsized,
    /// Nothing.
    Nothing,
}

/// Searches from the reader's position for the first frame.
pub(crate) fn find_first<H: FrameHeader>(r: &mut Reader) -> Result<First<H>, DemuxError> {
    let remaining = r.remaining();
    let window = r.peek(SCAN + MAX_FRAME)?;
    let mut no_length = false;
    for p in 0..window.len().min(SCAN) {
        let Some(h) = H::parse(&window[p..]) else {
            continue;
        };
        if h.len() == 0 {
            no_length = true;
            continue;
        }
        let next = p + h.len();
        let confirmed = match window.get(next..) {
            Some(b) if !b.is_empty() => H::parse(b).is_some_and(|n| h.same_stream(&n)),
            // A stream of one frame that ends with the file.
            _ => next as u64 == remaining,
        };
        if confirmed {
            r.skip(p as u64);
            return Ok(First::Found(h));
        }
    }
    Ok(if no_length {
        First::Unsized
    } else {
        First::Nothing
    })
}

/// The next frame of the stream `first` began (header and bytes), `None`
/// at the reader's end. ID3v2 tags between frames are skipped, zeros after
/// the last frame ignored; a last frame cut by the end is an error unless
/// `cut_end_ok` (the caller cut the data itself).
pub(crate) fn next_frame<H: FrameHeader>(
    r: &mut Reader,
    first: &H,
    container: &'static str,
    cut_end_ok: bool,
) -> Result<Option<(H, Vec<u8>)>, DemuxError> {
    loop {
        let at = r.offset();
        let head = r.peek(10)?;
        if head.is_empty() {
            return Ok(None);
        }
        // A tag between frames: files cut from or joined with others.
        if let Some(len) = tags::id3v2_len(head, container, at)? {
            r.skip(len);
            continue;
        }
        let h = match H::parse(head) {
            Some(h) if first.same_stream(&h) && h.len() > 0 => h,
            _ => {
                if r.remaining() <= MAX_FRAME as u64 && r.peek(MAX_FRAME)?.iter().all(|&b| b == 0) {
                    return Ok(None);
                }
                return Err(DemuxError::corrupt(
                    container,
                    format!("no frame of this stream at byte {at}"),
                ));
            }
        };
        let Some(data) = r.take(h.len())? else {
            if cut_end_ok {
                return Ok(None);
            }
            return Err(DemuxError::corrupt(
                container,
                format!(
                    "the frame at byte {at} is cut: {} bytes, {} left in the file",
                    h.len(),
                    r.remaining()
                ),
            ));
        };
        return Ok(Some((h, data)));
    }
}

/// Frames of one stream read from a [`Reader`], timed by their sample
/// counts from the first.
pub(crate) struct Frames<H> {
    first: H,
    track: u32,
    /// Samples before the next frame.
    position: u64,
    container: &'static str,
    /// The reader's end was cut by the caller (WAV: at whole blocks),
    /// maybe inside a frame.
    pub(crate) cut_end_ok: bool,
}

impl<H: FrameHeader> Frames<H> {
    /// The stream that `first` begins, as track `track`.
    pub(crate) fn new(first: H, track: u32, container: &'static str) -> Self {
        Frames {
            first,
            track,
            position: 0,
            container,
            cut_end_ok: false,
        }
    }

    /// The next frame, `None` at the reader's end; `timing` gives a
    /// frame's samples per channel and sample rate.
    pub(crate) fn next_timed(
        &mut self,
        r: &mut Reader,
        timing: impl Fn(&H) -> (u32, u32),
    ) -> Result<Option<Sample>, DemuxError> {
        let Some((h, data)) = next_frame(r, &self.first, self.container, self.cut_end_ok)? else {
            return Ok(None);
        };
        let (samples, rate) = timing(&h);
        let (position, samples) = (self.position, u64::from(samples));
        self.position += samples;
        Ok(Some(Sample::audio(
            self.track,
            position,
            samples,
            u64::from(rate),
            data,
        )))
    }
}

/// One stream of frames read from a [`Reader`] (MP3, AC-3).
pub(crate) trait FrameStream: Sized {
    /// Finds the first frame at or after the reader's position and
    /// describes the stream as track `id`.
    fn open(r: &mut Reader, id: u32, container: &'static str) -> Result<(Self, Track), DemuxError>;
    /// The next frame, `None` at the reader's end.
    fn next(&mut self, r: &mut Reader) -> Result<Option<Sample>, DemuxError>;
}

/// Demuxer of a file that is one elementary stream, maybe behind ID3 or
/// APE tags.
pub(crate) struct FileDemuxer<S> {
    reader: Reader,
    stream: S,
    tracks: Vec<Track>,
}

impl<S: FrameStream> FileDemuxer<S> {
    /// Skips the tags and finds the first frame.
    pub(crate) fn open(path: &Path, container: &'static str) -> Result<Self, DemuxError> {
        let mut reader = Reader::new(File::open(path)?)?;
        tags::trim_trailing_tags(&mut reader)?;
        tags::skip_id3v2(&mut reader, container)?;
        let (stream, track) = S::open(&mut reader, 1, container)?;
        Ok(FileDemuxer {
            reader,
            stream,
            tracks: vec![track],
        })
    }
}

impl<S: FrameStream> Demuxer for FileDemuxer<S> {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        self.stream.next(&mut self.reader)
    }
}

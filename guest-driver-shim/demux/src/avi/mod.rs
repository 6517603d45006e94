//! AVI files (RIFF `AVI `, and OpenDML files over 1 GiB that go on in
//! `RIFF AVIX` chunks): the first video and the first audio stream.
//!
//! The top-level chunks are walked once at open (seeking, not reading):
//! `LIST hdrl` (stream headers, read whole), every `LIST movi` (in the
//! first RIFF and in each `AVIX`, in order), and `idx1` (keyframe flags).
//! The OpenDML `indx`/`ix##` indexes only say where the `movi` chunks are,
//! which walking the `movi` lists finds too, so they are skipped.
//! Samples are then read by walking the `movi` lists in file order:
//! `##dc`/`##db` video and `##wb` audio chunks, `LIST rec ` entered,
//! `JUNK` and index chunks skipped. Nothing is read that is larger than
//! [`MAX_CHUNK`], and every size is checked against its list and the
//! file, so a damaged file is an error with the byte offset where it is
//! broken.

mod header;
mod stream;

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;

use crate::reader::Reader;
use crate::{DemuxError, Demuxer, Sample, Track};
use header::{Format, StreamHeader, le32};
use stream::{Audio, Video};

pub(crate) const NAME: &str = "AVI";
/// Largest `hdrl` list read (a few KiB in real files).
const MAX_HDRL: u64 = 1 << 20;
/// Largest `idx1` read (16 bytes a chunk: a million chunks); larger ones
/// are not read, and keyframes come from the bitstream.
const MAX_IDX1: u64 = 16 << 20;
/// Largest chunk read: far above any compressed frame or audio run.
const MAX_CHUNK: u64 = 32 << 20;
/// How many chunks are looked through at open for the first video frame.
const OPEN_CHUNKS: usize = 4096;

/// Whether `head` starts an AVI file.
pub(crate) fn is_avi(head: &[u8]) -> bool {
    head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"AVI "
}

/// Demuxer of one AVI file.
pub(crate) struct AviDemuxer {
    reader: Reader,
    tracks: Vec<Track>,
    video: Option<Kept<Video>>,
    audio: Option<Kept<Audio>>,
}

/// Where a walk over the `movi` lists is.
#[derive(Clone)]
struct Cursor {
    /// The `movi` lists not yet read, as `[start, end)` of their chunks.
    movi: VecDeque<(u64, u64)>,
    /// Where the next chunk is (inside `movi[0]`).
    pos: u64,
}

/// A kept stream: its number, its own walk over the chunks (so that a
/// file that is not interleaved still plays in time order, as avidemux
/// reads it by its index), and samples read but not yet sent.
struct Kept<S> {
    n: u8,
    stream: S,
    cursor: Cursor,
    ready: VecDeque<Sample>,
    done: bool,
}

impl<S> Kept<S> {
    fn new(n: u8, stream: S, cursor: Cursor) -> Self {
        Kept {
            n,
            stream,
            cursor,
            ready: VecDeque::new(),
            done: false,
        }
    }

    /// The time of the next ready sample.
    fn next_time(&self) -> Option<u64> {
        self.ready.front().map(|s| s.dts.or(s.pts).unwrap_or(0))
    }
}

/// What the top-level walk found.
#[derive(Default)]
struct Layout {
    streams: Option<Vec<StreamHeader>>,
    movi: VecDeque<(u64, u64)>,
    idx1: Option<Vec<u8>>,
}

fn read_body(r: &mut Reader, at: u64, len: u64, what: &str) -> Result<Vec<u8>, DemuxError> {
    r.seek(at);
    let n = usize::try_from(len).unwrap_or(usize::MAX);
    r.take(n)?
        .ok_or_else(|| DemuxError::corrupt(NAME, format!("the {what} at byte {at} is cut")))
}

/// Walks the top-level chunks from byte 12.
fn walk(r: &mut Reader) -> Result<Layout, DemuxError> {
    let file_end = r.end();
    let mut layout = Layout::default();
    let mut pos = 12u64;
    while pos + 12 <= file_end {
        r.seek(pos);
        let head = r.peek(12)?.to_vec();
        let len = u64::from(le32(&head, 4).unwrap_or(0));
        let (id, kind) = (&head[..4], &head[8..12]);
        let next = pos + 8 + len + (len & 1);
        match (id, kind) {
            (b"RIFF", b"AVIX") => {
                pos += 12;
                continue;
            }
            (b"LIST", b"hdrl") if layout.streams.is_none() => {
                if !(4..=MAX_HDRL).contains(&len) {
                    return Err(DemuxError::corrupt(
                        NAME,
                        format!("the hdrl list at byte {pos} says {len} bytes"),
                    ));
                }
                let body = read_body(r, pos + 12, len - 4, "hdrl list")?;
                layout.streams = Some(header::parse_hdrl(&body, pos)?);
            }
            (b"LIST", b"movi") => {
                // A writer that never finished leaves 0 or a size past
                // the end: the chunks then run to the end of the file.
                let end = if len < 4 || pos + 8 + len > file_end {
                    file_end
                } else {
                    pos + 8 + len
                };
                layout.movi.push_back((pos + 12, end));
            }
            (b"idx1", _)
                if layout.idx1.is_none() && len <= MAX_IDX1 && pos + 8 + len <= file_end =>
            {
                layout.idx1 = Some(read_body(r, pos + 8, len, "idx1 index")?);
            }
            _ => {}
        }
        if !id.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            // Not a chunk: whatever follows is no part of the AVI.
            break;
        }
        pos = next;
    }
    Ok(layout)
}

/// The stream number of a data chunk id (`00dc`, `01wb`), if it is one.
fn data_chunk(id: &[u8]) -> Option<u8> {
    let (d, kind) = (id.get(..2)?, id.get(2..4)?);
    if !d.iter().all(u8::is_ascii_digit) || !matches!(kind, b"dc" | b"db" | b"wb") {
        return None;
    }
    Some((d[0] - b'0') * 10 + (d[1] - b'0'))
}

impl AviDemuxer {
    /// Reads the headers, the index and the first video frame.
    pub(crate) fn open(path: &Path) -> Result<Self, DemuxError> {
        let mut reader = Reader::new(File::open(path)?)?;
        if !is_avi(reader.peek(12)?) {
            return Err(DemuxError::corrupt(NAME, "no RIFF AVI header"));
        }
        let layout = walk(&mut reader)?;
        let streams = layout
            .streams
            .ok_or_else(|| DemuxError::corrupt(NAME, "no hdrl list of stream headers"))?;
        let start = layout
            .movi
            .front()
            .map(|m| m.0)
            .ok_or_else(|| DemuxError::corrupt(NAME, "no movi list of chunks"))?;
        let kind_of = |video: bool| {
            streams.iter().position(|s| match s.format {
                Format::Video { .. } => video,
                Format::Audio { .. } => !video,
                Format::Other => false,
            })
        };
        let number = |i: usize| u8::try_from(i).ok().filter(|n| *n < 100);
        let cursor = Cursor {
            movi: layout.movi,
            pos: start,
        };
        let mut d = AviDemuxer {
            reader,
            tracks: Vec::new(),
            video: None,
            audio: None,
        };
        if let Some(n) = kind_of(false).and_then(number) {
            let audio = Audio::new(&streams[usize::from(n)], u32::from(n) + 1)?;
            d.audio = Some(Kept::new(n, audio, cursor.clone()));
        }
        if let Some(n) = kind_of(true).and_then(number) {
            let first = d.first_frame(n, cursor.clone())?;
            let mut video = Video::new(&streams[usize::from(n)], u32::from(n) + 1, &first)?;
            if let Some(idx1) = &layout.idx1 {
                video.index_keys = idx1
                    .chunks_exact(16)
                    .filter(|e| data_chunk(&e[..4]) == Some(n) && &e[2..4] != b"wb")
                    .map(|e| le32(e, 4).is_some_and(|f| f & 0x10 != 0))
                    .collect();
            }
            d.video = Some(Kept::new(n, video, cursor));
        }
        d.tracks = d
            .video
            .iter()
            .map(|v| v.stream.track.clone())
            .chain(d.audio.iter().map(|a| a.stream.track.clone()))
            .collect();
        if d.tracks.is_empty() {
            return Err(DemuxError::corrupt(NAME, "no video or audio stream"));
        }
        Ok(d)
    }

    /// The first non-empty chunk of stream `n`.
    fn first_frame(&mut self, n: u8, mut cursor: Cursor) -> Result<Vec<u8>, DemuxError> {
        for _ in 0..OPEN_CHUNKS {
            match next_chunk(&mut self.reader, &mut cursor, n)? {
                Some(data) if !data.is_empty() => return Ok(data),
                Some(_) => {}
                None => break,
            }
        }
        Ok(Vec::new())
    }
}

/// The next data chunk of stream `n` after `cursor`, in file order.
fn next_chunk(r: &mut Reader, cursor: &mut Cursor, n: u8) -> Result<Option<Vec<u8>>, DemuxError> {
    loop {
        let Some(&(start, end)) = cursor.movi.front() else {
            return Ok(None);
        };
        let pos = cursor.pos.max(start);
        r.seek(pos);
        let head = r.peek(12)?;
        if pos + 8 > end || head.len() < 8 {
            cursor.movi.pop_front();
            continue;
        }
        let id: [u8; 4] = [head[0], head[1], head[2], head[3]];
        let len = u64::from(le32(head, 4).unwrap_or(0));
        if &id == b"LIST" {
            // `LIST rec `: its chunks are read in place.
            cursor.pos = pos + 12;
            continue;
        }
        let body_end = pos + 8 + len;
        cursor.pos = body_end + (len & 1);
        let Some(number) = data_chunk(&id) else {
            if !id.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
                return Err(DemuxError::corrupt(
                    NAME,
                    format!("no chunk at byte {pos} of the movi list"),
                ));
            }
            continue; // JUNK, ix##, palette changes, subtitles
        };
        if body_end > end {
            return Err(DemuxError::corrupt(
                NAME,
                format!(
                    "the chunk at byte {pos} says {len} bytes, its movi list ends at byte {end}"
                ),
            ));
        }
        if number != n {
            continue;
        }
        if len > MAX_CHUNK {
            return Err(DemuxError::corrupt(
                NAME,
                format!("the chunk at byte {pos} is {len} bytes, more than {MAX_CHUNK}"),
            ));
        }
        r.skip(8);
        let data = r
            .take(usize::try_from(len).unwrap_or(usize::MAX))?
            .ok_or_else(|| DemuxError::corrupt(NAME, format!("the chunk at byte {pos} is cut")))?;
        return Ok(Some(data));
    }
}

impl AviDemuxer {
    /// Reads video chunks until a frame is ready or the stream ends.
    fn fill_video(&mut self) -> Result<(), DemuxError> {
        let Some(v) = self.video.as_mut() else {
            return Ok(());
        };
        while v.ready.is_empty() && !v.done {
            match next_chunk(&mut self.reader, &mut v.cursor, v.n)? {
                Some(data) => v.ready.extend(v.stream.push(data)),
                None => v.done = true,
            }
        }
        Ok(())
    }

    /// Reads audio chunks until a frame is ready or the stream ends.
    fn fill_audio(&mut self) -> Result<(), DemuxError> {
        let Some(a) = self.audio.as_mut() else {
            return Ok(());
        };
        while a.ready.is_empty() && !a.done {
            match next_chunk(&mut self.reader, &mut a.cursor, a.n)? {
                Some(data) => {
                    let mut out = Vec::new();
                    a.stream.push(&data, &mut out)?;
                    a.ready.extend(out);
                }
                None => a.done = true,
            }
        }
        Ok(())
    }
}

impl Demuxer for AviDemuxer {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// The earlier of the two streams' next samples (audio on a tie).
    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        self.fill_video()?;
        self.fill_audio()?;
        let video = self.video.as_ref().and_then(Kept::next_time);
        let audio = self.audio.as_ref().and_then(Kept::next_time);
        let take_video = match (video, audio) {
            (Some(v), Some(a)) => v < a,
            (v, _) => v.is_some(),
        };
        Ok(if take_video {
            self.video.as_mut().and_then(|v| v.ready.pop_front())
        } else {
            self.audio.as_mut().and_then(|a| a.ready.pop_front())
        })
    }
}

//! MPEG-2 program streams (`.vob`, `.mpg`, `.mpeg`): DVDs and the files
//! ffmpeg's `vob`/`dvd` and GStreamer's `mpegpsmux` muxers write, and
//! MPEG-1 system streams (ffmpeg's `mpeg` muxer, Video CDs).
//!
//! It lives beside the transport stream demuxer because it shares its PES
//! headers, clock unwrapping and audio frame cutting: a program stream is
//! the same PES packets in packs (`00 00 01 BA`) instead of transport
//! packets. Video PES packets are small pieces of the stream here (2 KiB
//! packs on a DVD), so the video is cut into access units at picture
//! boundaries, each timed by the PES time stamp of its picture start code.
//! Audio is MPEG audio (stream ids `0xC0`..`0xDF`) or AC-3 in private
//! stream 1 (`0xBD`, sub-stream `0x80`..`0x87`, after a 3-byte header);
//! DTS and LPCM sub-streams are refused by name when no other audio plays.
//! MPEG-1 system streams differ in their 12-byte pack header and their
//! packet headers (`pes.rs` reads both).

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;

use super::Queue;
use super::es::{EsStream, Kind};
use super::pes::{self, Unwrapper};
use crate::bytes::ticks_to_ns;
use crate::mpv;
use crate::reader::Reader;
use crate::{Clip, Codec, DemuxError, Demuxer, Sample, Track};

const NAME: &str = "MPEG-PS";
/// How far the streams' first frames are looked for.
const OPEN_SCAN: u64 = 4 << 20;
/// How far a lost pack start is searched for.
const RESYNC_SCAN: usize = 64 << 10;
/// Largest access unit gathered.
const MAX_AU: usize = 16 << 20;
/// Track id of the video stream (audio tracks use their stream ids).
const VIDEO_TRACK: u32 = 0xE0;

/// Whether `head` starts a program stream (an MPEG-2 or MPEG-1 pack).
pub(crate) fn is_program_stream(head: &[u8]) -> bool {
    head.starts_with(&[0, 0, 1, 0xBA])
}

/// MPEG-1/2 video cut into access units.
struct Video {
    stream_id: u8,
    /// Bytes not yet cut, and the PES time stamps at their offsets.
    pending: Vec<u8>,
    times: VecDeque<(usize, Option<u64>, Option<u64>)>,
    /// Where the start code scan continues, and whether the access unit
    /// being gathered has reached its slices.
    scan: usize,
    in_slices: bool,
    size: Option<(u32, u32)>,
    pts: Unwrapper,
    dts: Unwrapper,
}

impl Video {
    fn new(stream_id: u8) -> Self {
        Video {
            stream_id,
            pending: Vec::new(),
            times: VecDeque::new(),
            scan: 0,
            in_slices: false,
            size: None,
            pts: Unwrapper::default(),
            dts: Unwrapper::default(),
        }
    }

    fn push(&mut self, pes: &[u8], out: &mut Vec<Sample>) -> Result<(), DemuxError> {
        let Some(h) = pes::parse(pes).filter(|h| h.payload_at <= pes.len()) else {
            return Ok(());
        };
        if h.pts.is_some() {
            let pts = h.pts.map(|t| ticks_to_ns(self.pts.unwrap(t), 90_000));
            let dts = h.dts.map(|t| ticks_to_ns(self.dts.unwrap(t), 90_000));
            self.times.push_back((self.pending.len(), pts, dts.or(pts)));
        }
        self.pending.extend_from_slice(&pes[h.payload_at..]);
        if self.pending.len() > MAX_AU {
            return Err(DemuxError::corrupt(
                NAME,
                format!("a picture longer than {MAX_AU} bytes"),
            ));
        }
        self.cut(out, false);
        Ok(())
    }

    /// Cuts the access units that are complete (all, at the end).
    fn cut(&mut self, out: &mut Vec<Sample>, end: bool) {
        while let Some(p) =
            mpv::next_access_unit(&self.pending, &mut self.scan, &mut self.in_slices)
        {
            self.emit(p, out);
        }
        if end && !self.pending.is_empty() {
            self.emit(self.pending.len(), out);
        }
    }

    /// Sends `pending[..len]` as one access unit.
    fn emit(&mut self, len: usize, out: &mut Vec<Sample>) {
        let au: Vec<u8> = self.pending.drain(..len).collect();
        self.scan = 0;
        self.in_slices = false;
        // The time stamp of a PES is its first picture's: the last one
        // that began at or before this unit's picture start code.
        let picture = au.windows(4).position(|w| w == [0, 0, 1, 0]).unwrap_or(0);
        let mut time = (None, None);
        while let Some(&(at, pts, dts)) = self.times.front() {
            if at > picture {
                break;
            }
            time = (pts, dts);
            self.times.pop_front();
        }
        for t in &mut self.times {
            t.0 = t.0.saturating_sub(len);
        }
        let d = mpv::describe(&au);
        if self.size.is_none() {
            // Pictures before the first sequence header cannot be decoded.
            let Some(size) = d.size else {
                return;
            };
            self.size = Some(size);
        }
        out.push(Sample {
            track: VIDEO_TRACK,
            pts: time.0,
            dts: time.1,
            duration: None,
            keyframe: d.intra && d.sequence,
            discont: false,
            decode_only: false,
            data: au,
            clip: Clip::NONE,
        });
    }
}

/// Demuxer of one program stream file.
pub(crate) struct PsDemuxer {
    reader: Reader,
    video: Option<Video>,
    audio: Option<(u8, EsStream)>,
    /// An audio form the device has no codec for, seen before any other.
    refused_audio: Option<&'static str>,
    tracks: Vec<Track>,
    queue: Queue,
}

impl PsDemuxer {
    /// Reads up to every kept stream's first frame.
    pub(crate) fn open(path: &Path) -> Result<Self, DemuxError> {
        let reader = Reader::new(File::open(path)?)?;
        let mut d = PsDemuxer {
            reader,
            video: None,
            audio: None,
            refused_audio: None,
            tracks: Vec::new(),
            queue: Queue::default(),
        };
        let mut out = Vec::new();
        while d.reader.offset() < OPEN_SCAN && !d.described() {
            if !d.pack(&mut out)? {
                break;
            }
        }
        if let Some(v) = &d.video
            && let Some((width, height)) = v.size
        {
            d.tracks
                .push(Track::video(VIDEO_TRACK, Codec::Mpeg2Video, width, height));
        }
        if let Some((_, a)) = &d.audio
            && let Some(info) = a.described.clone()
        {
            let codec = info.codec.unwrap_or(a.kind.codec());
            d.tracks.push(Track::audio(
                a.track_id,
                codec,
                info.sample_rate,
                info.channels,
            ));
        }
        if let (None, Some(codec)) = (&d.audio, d.refused_audio) {
            return Err(DemuxError::NotDeviceCodec {
                container: NAME,
                codec,
            });
        }
        if d.tracks.is_empty() {
            return Err(DemuxError::corrupt(
                NAME,
                "no decodable video or audio in the first packs",
            ));
        }
        // Only streams that became tracks are sent.
        out.retain(|s| d.tracks.iter().any(|t| t.id == s.track));
        // Audio before the first picture is clipped by a local player, as
        // in a transport stream.
        super::set_start_trim(&mut d.tracks, &out);
        d.queue.start(&d.tracks, out);
        Ok(d)
    }

    /// Whether a video and an audio stream are both found and described.
    fn described(&self) -> bool {
        let video = self.video.as_ref().is_some_and(|v| v.size.is_some());
        let audio = self
            .audio
            .as_ref()
            .is_some_and(|(_, a)| a.described.is_some());
        video && audio
    }

    fn finish(&mut self, out: &mut Vec<Sample>) -> Result<(), DemuxError> {
        if let Some(v) = &mut self.video {
            v.cut(out, true);
        }
        if let Some((_, a)) = &mut self.audio {
            a.finish(out)?;
        }
        Ok(())
    }

    /// Reads one pack header or PES packet; `false` at the end (after the
    /// streams' last frames are finished).
    fn pack(&mut self, out: &mut Vec<Sample>) -> Result<bool, DemuxError> {
        let at = self.reader.offset();
        let head = self.reader.peek(14)?;
        if head.len() < 4 || head[..4] == [0, 0, 1, 0xB9] {
            self.finish(out)?;
            return Ok(false);
        }
        if head[..3] != [0, 0, 1] {
            self.resync(at)?;
            return Ok(true);
        }
        let id = head[3];
        if id == 0xBA {
            let len = match head.get(4).map(|b| b >> 4) {
                Some(b) if b >> 2 == 1 && head.len() == 14 => 14 + usize::from(head[13] & 7),
                // MPEG-1 ('0010'): SCR and mux rate, no stuffing.
                Some(2) if head.len() >= 12 => 12,
                _ => {
                    return Err(DemuxError::corrupt(
                        NAME,
                        format!("bad pack header at byte {at}"),
                    ));
                }
            };
            self.reader.skip(len as u64);
            return Ok(true);
        }
        if id < 0xB9 {
            self.resync(at)?;
            return Ok(true);
        }
        let len = 6 + usize::from(u16::from_be_bytes([head[4], head[5]]));
        let Some(pes) = self.reader.take(len)? else {
            // A packet cut by the end of the file is dropped.
            self.reader.skip(len as u64);
            self.finish(out)?;
            return Ok(false);
        };
        match id {
            0xE0..=0xEF => {
                let v = self.video.get_or_insert_with(|| Video::new(id));
                if v.stream_id == id {
                    v.push(&pes, out)?;
                }
            }
            0xC0..=0xDF => self.audio_pes(id, Kind::Mpa, pes, out)?,
            0xBD => self.private_pes(pes, out)?,
            _ => {}
        }
        Ok(true)
    }

    /// A private stream 1 packet: its sub-stream id follows the PES header.
    fn private_pes(&mut self, pes: Vec<u8>, out: &mut Vec<Sample>) -> Result<(), DemuxError> {
        let Some(h) = pes::parse(&pes) else {
            return Ok(());
        };
        let Some(&sub) = pes.get(h.payload_at) else {
            return Ok(());
        };
        match sub {
            // Sub-stream id, frame count, first access unit pointer.
            0x80..=0x87 if pes.len() >= h.payload_at + 4 => {
                let mut inner = pes[..h.payload_at].to_vec();
                inner.extend_from_slice(&pes[h.payload_at + 4..]);
                self.audio_pes(sub, Kind::Ac3, inner, out)
            }
            0x88..=0x8F => {
                self.refused_audio.get_or_insert("DTS");
                Ok(())
            }
            0xA0..=0xA7 => {
                self.refused_audio.get_or_insert("LPCM (DVD)");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn audio_pes(
        &mut self,
        id: u8,
        kind: Kind,
        pes: Vec<u8>,
        out: &mut Vec<Sample>,
    ) -> Result<(), DemuxError> {
        // The first audio stream is kept, as a local player picks.
        let (kept, stream) = self.audio.get_or_insert_with(|| {
            let mut s = EsStream::new(u16::from(id), kind);
            s.track_id = u32::from(id) | if kind == Kind::Ac3 { 0x100 } else { 0 };
            (id, s)
        });
        if *kept == id && stream.kind == kind {
            stream.push_pes(pes, out)?;
        }
        Ok(())
    }

    /// Finds the next pack start after bytes that are no start code.
    fn resync(&mut self, at: u64) -> Result<(), DemuxError> {
        let window = self.reader.peek(RESYNC_SCAN)?;
        let found = window.windows(4).skip(1).position(|w| w == [0, 0, 1, 0xBA]);
        let Some(skip) = found else {
            return Err(DemuxError::corrupt(
                NAME,
                format!("no pack start code near byte {at}"),
            ));
        };
        self.reader.skip(skip as u64 + 1);
        if let Some(v) = &mut self.video {
            v.pending.clear();
            v.times.clear();
            v.scan = 0;
            v.in_slices = false;
        }
        if let Some((_, a)) = &mut self.audio {
            a.lose();
        }
        Ok(())
    }
}

impl Demuxer for PsDemuxer {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        let mut queue = std::mem::take(&mut self.queue);
        let next = queue.next(|out| {
            let more = self.pack(out)?;
            // Only streams that became tracks are sent.
            out.retain(|s| self.tracks.iter().any(|t| t.id == s.track));
            Ok(more)
        });
        self.queue = queue;
        next
    }
}

//! MP4 / ISO BMFF (non-fragmented), hand-written.
//!
//! Only the moov box is parsed (sample entries and sample tables); sample
//! bytes are read from the file on demand, interleaved in file order, which
//! is decode order within each track.

mod entry;
mod table;
mod trim;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use entry::{bad, child, children};

use crate::bytes::{Cursor, ticks_to_ns};
use crate::{Clip, DemuxError, Demuxer, Sample, Track};

const NAME: &str = "MP4";
/// Largest moov accepted, so a corrupt size cannot exhaust memory.
const MAX_MOOV: u64 = 256 << 20;

struct TrackState {
    timescale: u64,
    samples: Vec<table::Entry>,
    next: usize,
    /// With an edit list: the media range it plays.
    window: Option<trim::Window>,
    /// Audio: clip to the edit list's range.
    audio: bool,
    /// Decoded samples per frame, when not the `stts` duration.
    frame_len: Option<u64>,
    /// Decoded ticks before the next sample.
    decoded: u64,
    /// Audio sample rate (0 for video).
    sample_rate: u32,
}

/// Demuxer of one MP4 file.
pub(crate) struct Mp4Demuxer {
    file: File,
    tracks: Vec<Track>,
    states: Vec<TrackState>,
}

impl Mp4Demuxer {
    /// Finds and parses the moov box.
    pub(crate) fn open(path: &Path) -> Result<Self, DemuxError> {
        let mut file = File::open(path)?;
        let file_len = file.metadata()?.len();
        let mut pos = 0u64;
        let mut moov = None;
        let mut fragmented = false;
        while pos + 8 <= file_len {
            file.seek(SeekFrom::Start(pos))?;
            let mut h = [0u8; 16];
            file.read_exact(&mut h[..8])?;
            let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
            let (size, header) = match size32 {
                0 => (file_len - pos, 8),
                1 => {
                    if pos + 16 > file_len {
                        return Err(bad("box header"));
                    }
                    file.read_exact(&mut h[8..16])?;
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&h[8..16]);
                    (u64::from_be_bytes(b), 16)
                }
                s => (u64::from(s), 8),
            };
            // `size` is the file's word (up to 2^64 - 1): compare without
            // adding, which could overflow (found by the demux_mp4 fuzz target).
            if size < header || size > file_len - pos {
                return Err(DemuxError::corrupt(NAME, "top-level box runs past the end"));
            }
            match &h[4..8] {
                b"moov" => {
                    if size > MAX_MOOV {
                        return Err(bad("moov size"));
                    }
                    let len = usize::try_from(size - header).map_err(|_| bad("moov size"))?;
                    let mut body = vec![0u8; len];
                    file.read_exact(&mut body)?;
                    moov = Some(body);
                }
                b"moof" => fragmented = true,
                _ => {}
            }
            pos += size;
        }
        let moov = moov.ok_or_else(|| DemuxError::corrupt(NAME, "no moov box"))?;
        let movie_timescale = movie_timescale(&moov)?;
        let mut tracks = Vec::new();
        let mut states = Vec::new();
        for (kind, trak) in children(&moov)? {
            if &kind != b"trak" {
                continue;
            }
            let Some((track, state)) = parse_trak(trak, file_len, movie_timescale)? else {
                continue;
            };
            tracks.push(track);
            states.push(state);
        }
        if tracks.is_empty() || (fragmented && states.iter().all(|s| s.samples.is_empty())) {
            return Err(if fragmented {
                DemuxError::Unsupported {
                    container: NAME,
                    feature: "fragmented MP4",
                }
            } else {
                DemuxError::corrupt(NAME, "no audio or video track")
            });
        }
        Ok(Mp4Demuxer {
            file,
            tracks,
            states,
        })
    }
}

/// mvhd's timescale, the unit of edit list durations.
fn movie_timescale(moov: &[u8]) -> Result<u64, DemuxError> {
    let mvhd = child(moov, b"mvhd")?.ok_or_else(|| bad("moov without mvhd"))?;
    let mut c = Cursor::new(mvhd, NAME);
    let version = c.u8()?;
    c.skip(3)?;
    c.skip(if version == 1 { 16 } else { 8 })?;
    Ok(u64::from(c.u32()?))
}

/// One trak → track and samples; `None` for tracks that are not audio/video.
fn parse_trak(
    trak: &[u8],
    file_len: u64,
    movie_timescale: u64,
) -> Result<Option<(Track, TrackState)>, DemuxError> {
    let tkhd = child(trak, b"tkhd")?.ok_or_else(|| bad("trak without tkhd"))?;
    let mut c = Cursor::new(tkhd, NAME);
    let version = c.u8()?;
    c.skip(3)?;
    c.skip(if version == 1 { 16 } else { 8 })?;
    let id = c.u32()?;
    let mdia = child(trak, b"mdia")?.ok_or_else(|| bad("trak without mdia"))?;
    let hdlr = child(mdia, b"hdlr")?.ok_or_else(|| bad("mdia without hdlr"))?;
    let handler = hdlr.get(8..12).ok_or_else(|| bad("hdlr"))?;
    if handler != b"vide" && handler != b"soun" {
        return Ok(None);
    }
    let mdhd = child(mdia, b"mdhd")?.ok_or_else(|| bad("mdia without mdhd"))?;
    let mut c = Cursor::new(mdhd, NAME);
    let version = c.u8()?;
    c.skip(3)?;
    c.skip(if version == 1 { 16 } else { 8 })?;
    let timescale = u64::from(c.u32()?);
    if timescale == 0 {
        return Err(bad("zero timescale"));
    }
    let minf = child(mdia, b"minf")?.ok_or_else(|| bad("mdia without minf"))?;
    let stbl = child(minf, b"stbl")?.ok_or_else(|| bad("minf without stbl"))?;
    let stsd = child(stbl, b"stsd")?.ok_or_else(|| bad("stbl without stsd"))?;
    let e = entry::parse_stsd(stsd)?;
    let samples = table::build(stbl, file_len)?;
    let fps = match (e.codec.is_video(), samples.first()) {
        (true, Some(s)) if s.duration > 0 => {
            u32::try_from(timescale).ok().map(|ts| (ts, s.duration))
        }
        _ => None,
    };
    let audio = !e.codec.is_video();
    let window = trim::window(trak, movie_timescale, timescale)?;
    let frame_len = trim::frame_len(e.codec, timescale, e.sample_rate);
    let sample_rate = e.sample_rate;
    let track = Track {
        id,
        codec: e.codec,
        width: e.width,
        height: e.height,
        sample_rate: e.sample_rate,
        channels: e.channels,
        codec_data: e.codec_data,
        fps,
        start_trim: 0,
        end_trim: 0,
    };
    Ok(Some((
        track,
        TrackState {
            timescale,
            samples,
            next: 0,
            window,
            audio,
            frame_len,
            decoded: 0,
            sample_rate,
        },
    )))
}

impl Demuxer for Mp4Demuxer {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        let pick = self
            .states
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.samples.get(s.next).map(|e| (e.offset, i)))
            .min();
        let Some((_, i)) = pick else {
            return Ok(None);
        };
        let state = &mut self.states[i];
        let e = state.samples[state.next];
        state.next += 1;
        let mut data = vec![0u8; usize::try_from(e.size).map_err(|_| bad("sample size"))?];
        self.file.seek(SeekFrom::Start(e.offset))?;
        self.file
            .read_exact(&mut data)
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    DemuxError::corrupt(NAME, "sample past end of file")
                }
                _ => DemuxError::Io(err),
            })?;
        let ts = state.timescale;
        let len = state
            .frame_len
            .map_or(u64::from(e.duration), |f| f.max(u64::from(e.duration)));
        // Edit lists trim audio whose timescale is its sample rate (the
        // files encoders write); others play untrimmed.
        let clip = match state.window {
            Some(w) if state.audio && ts == u64::from(state.sample_rate) => {
                let c = trim::clip(w, state.decoded, len, ts);
                let last = state.next == state.samples.len();
                if last && w.start_ns > 0 && u64::from(e.duration) < len {
                    // GStreamer 1.22's qtdemux, which starts an edit with a
                    // media time one frame early ("sound lead-in"), never
                    // sends a final frame that `stts` makes shorter than
                    // it decodes (ffmpeg's last AAC frame), so a local
                    // player plays nothing of it; ffmpeg plays it. Follow
                    // GStreamer.
                    Clip {
                        start: c.start,
                        end: u32::try_from(len).unwrap_or(u32::MAX) - c.start,
                    }
                } else {
                    c
                }
            }
            _ => Clip::NONE,
        };
        state.decoded = state.decoded.saturating_add(len);
        let shift = state.window.map_or(0, |w| w.media_time);
        Ok(Some(Sample {
            track: self.tracks[i].id,
            // The edit's media time presents at 0, as in qtdemux's
            // segment. A shifted video track's first decode times would go
            // below 0, which the device cannot carry: it sends none, as
            // Matroska does.
            pts: Some(ticks_to_ns(e.pts.saturating_sub(shift), ts)),
            dts: (state.audio || shift == 0).then(|| ticks_to_ns(e.dts.saturating_sub(shift), ts)),
            duration: Some(ticks_to_ns(u64::from(e.duration), ts)),
            keyframe: e.keyframe,
            discont: false,
            data,
            clip,
        }))
    }
}

//! MP4 / ISO BMFF, progressive and fragmented, hand-written.
//!
//! The top-level boxes are walked by their headers (an `mdat` is seeked
//! over, never read); the `moov` box (sample entries and sample tables) and,
//! in a fragmented file, every `moof` ([`fragment`]) are parsed into one
//! sample list per track. Sample bytes are read from the file on demand,
//! interleaved in file order, which is decode order within each track.
//!
//! Of several audio or video tracks, the first of each kind in file order
//! is played, as GStreamer's playbin picks among the pads qtdemux exposes
//! in that order; the others are not sent.

mod entry;
mod fragment;
mod table;
mod trim;

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use entry::{bad, child, children};

use crate::bytes::{Cursor, ticks_to_ns};
use crate::concat::Source;
use crate::{Clip, DemuxError, Demuxer, Sample, Track};

const NAME: &str = "MP4";
/// Largest moov accepted, so a corrupt size cannot exhaust memory.
const MAX_MOOV: u64 = 256 << 20;
/// Largest sample read, so a corrupt size cannot exhaust memory (an 8K
/// intra frame is a few MiB).
const MAX_SAMPLE: u32 = 64 << 20;

struct TrackState {
    timescale: u64,
    samples: Vec<table::Entry>,
    next: usize,
    /// With an edit list: the media range it plays.
    window: Option<trim::Window>,
    /// Audio: clip to the edit list's range.
    audio: bool,
    /// Decoded ticks before the next sample.
    decoded: u64,
    /// Audio sample rate (0 for video).
    sample_rate: u32,
}

/// Demuxer of one MP4 file (or of DASH segments read as one).
pub(crate) struct Mp4Demuxer {
    file: Box<dyn Source>,
    tracks: Vec<Track>,
    states: Vec<TrackState>,
}

/// A top-level box: its type, the offset of its header, the header's and
/// the whole box's length.
struct TopBox {
    kind: [u8; 4],
    offset: u64,
    header: u64,
    size: u64,
}

/// The top-level box at `pos` of a `len`-byte file, `None` at the end.
fn top_box(file: &mut dyn Source, pos: u64, len: u64) -> Result<Option<TopBox>, DemuxError> {
    if pos.saturating_add(8) > len {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(pos))?;
    let mut h = [0u8; 16];
    file.read_exact(&mut h[..8])?;
    let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let (size, header) = match size32 {
        0 => (len - pos, 8),
        1 => {
            if pos + 16 > len {
                return Err(DemuxError::corrupt(
                    NAME,
                    format!("box header at byte {pos} runs past the end"),
                ));
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
    if size < header || size > len - pos {
        return Err(DemuxError::corrupt(
            NAME,
            format!(
                "top-level {} box at byte {pos} runs past the end",
                String::from_utf8_lossy(&h[4..8])
            ),
        ));
    }
    let mut kind = [0u8; 4];
    kind.copy_from_slice(&h[4..8]);
    Ok(Some(TopBox {
        kind,
        offset: pos,
        header,
        size,
    }))
}

/// Reads the body of a top-level box of at most `max` bytes.
fn read_body(file: &mut dyn Source, b: &TopBox, max: u64) -> Result<Vec<u8>, DemuxError> {
    let name = String::from_utf8_lossy(&b.kind).into_owned();
    if b.size > max {
        return Err(DemuxError::corrupt(
            NAME,
            format!("{name} box at byte {} is too large", b.offset),
        ));
    }
    let len = usize::try_from(b.size - b.header).map_err(|_| bad(&name))?;
    let mut body = vec![0u8; len];
    file.seek(SeekFrom::Start(b.offset + b.header))?;
    file.read_exact(&mut body)?;
    Ok(body)
}

impl Mp4Demuxer {
    /// Opens the file at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, DemuxError> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        Self::from_source(Box::new(file), len)
    }

    /// Finds and parses the moov box and any moof boxes of `file`, `len`
    /// bytes long.
    pub(crate) fn from_source(mut file: Box<dyn Source>, len: u64) -> Result<Self, DemuxError> {
        let mut pos = 0u64;
        let mut moov = None;
        let mut fragmented = false;
        while let Some(b) = top_box(file.as_mut(), pos, len)? {
            match &b.kind {
                b"moov" if moov.is_none() => moov = Some(read_body(file.as_mut(), &b, MAX_MOOV)?),
                b"moof" => fragmented = true,
                _ => {}
            }
            pos = b.offset + b.size;
        }
        let moov = moov.ok_or_else(|| DemuxError::corrupt(NAME, "no moov box"))?;
        let movie_timescale = movie_timescale(&moov)?;
        let (tracks, mut states) = choose_tracks(&moov, len, movie_timescale)?;
        if fragmented {
            let mut frag: Vec<fragment::FragTrack> = tracks
                .iter()
                .zip(&states)
                .map(|(t, s)| fragment::FragTrack::new(t.id, t.codec.is_video(), s.timescale))
                .collect();
            fragment::read_mvex(&moov, &mut frag)?;
            // Tracks whose mdhd gives no duration last as the file
            // (mehd), taken into their timescale as qtdemux does.
            if let Some(movie) = fragment::mehd_duration(&moov)? {
                for s in states.iter_mut().filter(|s| s.window.is_none()) {
                    let ticks = crate::bytes::scale(movie, s.timescale, movie_timescale);
                    s.window = trim::whole_track(ticks, s.timescale);
                }
            }
            let mut tables: Vec<Vec<table::Entry>> = states
                .iter_mut()
                .map(|s| std::mem::take(&mut s.samples))
                .collect();
            let mut pos = 0u64;
            while let Some(b) = top_box(file.as_mut(), pos, len)? {
                if &b.kind == b"moof" {
                    let body = read_body(file.as_mut(), &b, fragment::MAX_MOOF)?;
                    let moof = fragment::Moof {
                        body: &body,
                        offset: b.offset,
                        size: b.size,
                    };
                    fragment::read_moof(&moof, &mut frag, &mut tables, len)?;
                }
                pos = b.offset + b.size;
            }
            for (s, t) in states.iter_mut().zip(tables) {
                s.samples = t;
            }
        }
        let mut tracks = tracks;
        for (t, s) in tracks.iter_mut().zip(&states) {
            t.fps = fps(t, s);
        }
        if states.iter().all(|s| s.samples.is_empty()) {
            return Err(DemuxError::corrupt(NAME, "no samples in any track"));
        }
        Ok(Mp4Demuxer {
            file,
            tracks,
            states,
        })
    }
}

/// A video track's frame rate from its first sample's duration.
fn fps(t: &Track, s: &TrackState) -> Option<(u32, u32)> {
    match (t.codec.is_video(), s.samples.first()) {
        (true, Some(e)) if e.duration > 0 => {
            u32::try_from(s.timescale).ok().map(|ts| (ts, e.duration))
        }
        _ => None,
    }
}

/// The tracks played: the first audio and the first video track in file
/// order whose codec the device takes. A track of a codec it cannot take
/// is passed over for the next of its kind (the closest a client can come
/// to the local player, which would decode it), and when its kind has
/// nothing else to play the file is refused by that codec's name, never
/// played without its picture or sound (as MPEG-TS is). DRM refuses it.
fn choose_tracks(
    moov: &[u8],
    file_len: u64,
    movie_timescale: u64,
) -> Result<(Vec<Track>, Vec<TrackState>), DemuxError> {
    let mut tracks: Vec<Track> = Vec::new();
    let mut states = Vec::new();
    // Per kind (audio, video): the first refusal.
    let mut refused: [Option<DemuxError>; 2] = [None, None];
    for (kind, trak) in children(moov)? {
        if &kind != b"trak" {
            continue;
        }
        match parse_trak(trak, file_len, movie_timescale) {
            Ok(Some((track, state))) => {
                let video = track.codec.is_video();
                if tracks.iter().all(|t| t.codec.is_video() != video) {
                    tracks.push(track);
                    states.push(state);
                }
            }
            Ok(None) => {}
            Err(e @ (DemuxError::UnsupportedCodec { .. } | DemuxError::NotDeviceCodec { .. })) => {
                let video = handler(trak)? == *b"vide";
                refused[usize::from(video)].get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    for (video, e) in [false, true].into_iter().zip(refused) {
        if let Some(e) = e
            && tracks.iter().all(|t| t.codec.is_video() != video)
        {
            return Err(e);
        }
    }
    if tracks.is_empty() {
        return Err(DemuxError::corrupt(NAME, "no audio or video track"));
    }
    Ok((tracks, states))
}

/// A trak's handler type (`vide`, `soun`, ...).
fn handler(trak: &[u8]) -> Result<[u8; 4], DemuxError> {
    let mdia = child(trak, b"mdia")?.ok_or_else(|| bad("trak without mdia"))?;
    let hdlr = child(mdia, b"hdlr")?.ok_or_else(|| bad("mdia without hdlr"))?;
    hdlr.get(8..12)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| bad("hdlr"))
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
    let kind = handler(trak)?;
    if &kind != b"vide" && &kind != b"soun" {
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
    let duration = if version == 1 {
        c.u64()?
    } else {
        u64::from(c.u32()?)
    };
    let minf = child(mdia, b"minf")?.ok_or_else(|| bad("mdia without minf"))?;
    let stbl = child(minf, b"stbl")?.ok_or_else(|| bad("minf without stbl"))?;
    let stsd = child(stbl, b"stsd")?.ok_or_else(|| bad("stbl without stsd"))?;
    let e = entry::parse_stsd(stsd)?;
    let samples = table::build(stbl, file_len)?;
    let audio = !e.codec.is_video();
    let window = match trim::window(trak, movie_timescale, timescale)? {
        Some(w) => Some(w),
        None => trim::whole_track(duration, timescale),
    };
    let sample_rate = e.sample_rate;
    let track = Track {
        id,
        codec: e.codec,
        width: e.width,
        height: e.height,
        sample_rate: e.sample_rate,
        channels: e.channels,
        codec_data: e.codec_data,
        fps: None,
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
        if e.size > MAX_SAMPLE {
            return Err(DemuxError::corrupt(
                NAME,
                format!("sample at byte {} claims {} bytes", e.offset, e.size),
            ));
        }
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
        let codec = self.tracks[i].codec;
        let len = trim::decoded_len(codec, ts, state.sample_rate, &data, e.duration);
        // Edit lists trim audio whose timescale is its sample rate (the
        // files encoders write); others play untrimmed.
        let clip = match state.window {
            Some(w) if state.audio && ts == u64::from(state.sample_rate) => {
                let c = trim::clip(w, state.decoded, len, ts);
                let last = state.next == state.samples.len();
                if last && w.start_ns > 0 && w.end_ns.is_some() && u64::from(e.duration) < len {
                    // GStreamer 1.22's qtdemux, which starts an edit with a
                    // media time one frame early ("sound lead-in"), never
                    // sends a final frame that `stts` makes shorter than
                    // it decodes (ffmpeg's last AAC or Opus frame), so a
                    // local player plays nothing of it; ffmpeg plays it.
                    // Follow GStreamer. An open-ended edit (duration 0, as
                    // ffmpeg's DASH muxer writes) has no end: all plays.
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
        // A video frame presented at or after the end of the edit (or of
        // the track) is decoded, since later frames may refer to it, and
        // then dropped by GStreamer's video decoder, which clips to
        // qtdemux's segment.
        let decode_only = !state.audio
            && state
                .window
                .and_then(|w| w.end_ns)
                .is_some_and(|end| ticks_to_ns(e.pts, ts) >= end);
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
            decode_only,
            data,
            clip,
        }))
    }
}

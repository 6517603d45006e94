//! Verification: what the engine decoded, as hashes, and the same report
//! made by decoding the original file locally with a plain GStreamer
//! pipeline, so a test can prove the redirected output bit-exact.
//!
//! Video: each decoded frame converted to I420 (`videoconvert`, a
//! passthrough for decoders that output I420 already), hashed over the
//! visible pixels of every plane (no stride padding), in presentation (output)
//! order. Audio: every decoded sample converted to F32LE interleaved
//! (`audioconvert dithering=none`, exact from S16 and F32) and hashed as one
//! concatenated byte string. Trimming rule: the reference is what a local
//! player plays: GStreamer's own demuxer and decoder on the original file
//! (`decodebin`, as `gst-play-1.0` uses it), with every trim the demuxer
//! applies (GstAudioClippingMeta for Opus pre-skip and end padding, the
//! segment of an MP4 edit list). The redirected side gets the same trims as
//! the wire's per-sample clipping (`Sample.clip_start` / `clip_end`).
//!
//! Modules: [`hash`] (FNV-1a of frames and samples), `sink` (the
//! capsfilter and hashing `appsink` that end a stream's output chain in
//! [`OutputMode::Verify`](crate::OutputMode::Verify)), `reference` (the
//! local decode). Everything here exists only with the crate's `verify`
//! feature: the oracle of the tests and of `verify-clip`, not part of a
//! production engine. It uses the output chain (`output`), which knows
//! nothing of it.

pub mod hash;
mod reference;
pub(crate) mod sink;

use std::collections::BTreeMap;
use std::str::FromStr;

use gstreamer as gst;

use crate::EngineError;
pub use crate::kind::MediaKind;
use hash::Fnv64;
pub use reference::reference_decode;

/// The hash of one decoded video frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHash {
    /// Its presentation timestamp (stream time as the decoder output it).
    pub pts: Option<u64>,
    /// FNV-1a of its visible pixels.
    pub hash: u64,
}

/// What one stream decoded.
#[derive(Debug, Clone)]
pub struct StreamReport {
    /// Video or audio.
    pub kind: MediaKind,
    /// Video: every frame, in output order.
    pub frames: Vec<FrameHash>,
    /// Audio: samples per channel decoded.
    pub samples: u64,
    /// Audio: FNV-1a of all decoded sample bytes.
    pub audio_hash: u64,
    /// The raw caps hashed (format, size, rate, channels).
    pub caps: String,
}

impl StreamReport {
    pub(crate) fn new(kind: MediaKind) -> Self {
        StreamReport {
            kind,
            frames: Vec::new(),
            samples: 0,
            audio_hash: Fnv64::new().finish(),
            caps: String::new(),
        }
    }

    /// One hash of the whole stream: frame hashes in order (video) or the
    /// sample hash (audio).
    pub fn digest(&self) -> u64 {
        match self.kind {
            MediaKind::Audio => self.audio_hash,
            MediaKind::Video => {
                let mut h = Fnv64::new();
                for f in &self.frames {
                    h.write_u64(f.hash);
                }
                h.finish()
            }
        }
    }

    /// Frames (video) or samples (audio) decoded.
    pub fn count(&self) -> u64 {
        match self.kind {
            MediaKind::Video => self.frames.len() as u64,
            MediaKind::Audio => self.samples,
        }
    }

    /// Bit-exact: same kind, same counts, every hash equal.
    pub fn bit_exact(&self, other: &StreamReport) -> bool {
        self.kind == other.kind
            && self.count() == other.count()
            && (self.kind == MediaKind::Video || same_layout(&self.caps, &other.caps))
            && self.digest() == other.digest()
            && self
                .frames
                .iter()
                .zip(&other.frames)
                .all(|(a, b)| a.hash == b.hash)
    }
}

/// Whether two audio caps (as reported) give the same rate, channels and
/// channel positions: the same bytes played at other positions (5.1 side
/// channels as a second LFE) are not what a local player plays.
fn same_layout(a: &str, b: &str) -> bool {
    if gst::init().is_err() {
        return a == b;
    }
    let fields = |caps: &str| {
        let caps = gst::Caps::from_str(caps).ok()?;
        let s = caps.structure(0)?;
        Some((
            s.get::<i32>("rate").ok(),
            s.get::<i32>("channels").ok(),
            // No mask: GStreamer's default positions for the count.
            s.get::<gst::Bitmask>("channel-mask").map_or_else(
                |_| {
                    s.get::<i32>("channels").map_or(0, |c| {
                        gstreamer_audio::AudioChannelPosition::fallback_mask(c.max(0) as u32)
                    })
                },
                |m| m.0,
            ),
        ))
    };
    match (fields(a), fields(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Per stream id: what the engine decoded (Verify mode).
#[derive(Debug, Clone, Default)]
pub struct VerificationReport {
    /// By stream id.
    pub streams: BTreeMap<u32, StreamReport>,
}

impl VerificationReport {
    /// The report as text, one record per line, for a process to hand to a
    /// test: `stream ID KIND COUNT SAMPLES AUDIO_HASH CAPS...` per stream,
    /// then `frame ID PTS HASH` per video frame in output order (hashes in
    /// hex, a missing PTS as `-`). [`VerificationReport::from_text`] reads
    /// it back.
    pub fn to_text(&self) -> String {
        let mut out = String::from("mediaredir-verify 1\n");
        for (id, r) in &self.streams {
            let kind = match r.kind {
                MediaKind::Video => "video",
                MediaKind::Audio => "audio",
            };
            out.push_str(&format!(
                "stream {id} {kind} {} {} {:x} {}\n",
                r.count(),
                r.samples,
                r.audio_hash,
                r.caps.replace('\n', " ")
            ));
            for f in &r.frames {
                let pts = f.pts.map_or_else(|| "-".to_owned(), |p| p.to_string());
                out.push_str(&format!("frame {id} {pts} {:x}\n", f.hash));
            }
        }
        out
    }

    /// Parses what [`VerificationReport::to_text`] wrote.
    ///
    /// # Errors
    /// [`EngineError::Reference`] naming the first malformed line.
    pub fn from_text(text: &str) -> Result<VerificationReport, EngineError> {
        let mut lines = text.lines();
        if lines.next() != Some("mediaredir-verify 1") {
            return Err(EngineError::Reference("not a verification report".into()));
        }
        let mut report = VerificationReport::default();
        for line in lines.filter(|l| !l.is_empty()) {
            let bad = || EngineError::Reference(format!("bad report line: {line}"));
            let hex = |v: &str| u64::from_str_radix(v, 16).map_err(|_| bad());
            let dec = |v: &str| v.parse::<u64>().map_err(|_| bad());
            let f: Vec<&str> = line.splitn(7, ' ').collect();
            match f.as_slice() {
                ["stream", id, kind, _count, samples, audio, rest @ ..] => {
                    let kind = match *kind {
                        "video" => MediaKind::Video,
                        "audio" => MediaKind::Audio,
                        _ => return Err(bad()),
                    };
                    let id = u32::try_from(dec(id)?).map_err(|_| bad())?;
                    let mut r = StreamReport::new(kind);
                    r.samples = dec(samples)?;
                    r.audio_hash = hex(audio)?;
                    r.caps = rest.first().copied().unwrap_or_default().to_owned();
                    report.streams.insert(id, r);
                }
                ["frame", id, pts, hash] => {
                    let id = u32::try_from(dec(id)?).map_err(|_| bad())?;
                    let pts = if *pts == "-" { None } else { Some(dec(pts)?) };
                    let hash = hex(hash)?;
                    report
                        .streams
                        .get_mut(&id)
                        .ok_or_else(bad)?
                        .frames
                        .push(FrameHash { pts, hash });
                }
                _ => return Err(bad()),
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_text_round_trips() {
        let mut v = StreamReport::new(MediaKind::Video);
        v.caps = "video/x-raw, format=(string)I420, width=(int)64".into();
        v.frames.push(FrameHash {
            pts: Some(33),
            hash: 0xdead_beef,
        });
        v.frames.push(FrameHash { pts: None, hash: 7 });
        let mut a = StreamReport::new(MediaKind::Audio);
        a.samples = 48000;
        a.audio_hash = 0x1234_5678_9abc_def0;
        let mut r = VerificationReport::default();
        r.streams.insert(3, v.clone());
        r.streams.insert(4, a.clone());
        let back = VerificationReport::from_text(&r.to_text()).unwrap();
        assert!(back.streams[&3].bit_exact(&v));
        assert_eq!(back.streams[&3].frames, v.frames);
        assert_eq!(back.streams[&3].caps, v.caps);
        assert!(back.streams[&4].bit_exact(&a));
        assert!(VerificationReport::from_text("junk").is_err());
        assert!(VerificationReport::from_text("mediaredir-verify 1\nframe 9 1 2\n").is_err());
    }
}

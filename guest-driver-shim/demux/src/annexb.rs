//! Raw H.264/H.265 Annex-B byte streams split into access units.
//!
//! Elementary streams have no container: access-unit boundaries come from
//! the NAL types (AUD, parameter sets, SEI, and the "first slice" flag of
//! VCL NALs) and times from a frame rate the caller gives. Parameter sets
//! stay in the access unit that follows them; the track has no codec data,
//! which tells the device the samples are Annex-B. The picture size comes
//! from the first SPS.

use std::path::Path;

use crate::bytes::scale;
use crate::{Clip, Codec, DemuxError, Demuxer, Sample, Track};

/// Guesses H.265 from the file extension, else from the first NAL header.
pub(crate) fn looks_like_hevc(path: &Path, data: &[u8]) -> bool {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("h265" | "hevc" | "265") => return true,
        Some("h264" | "avc" | "264") => return false,
        _ => {}
    }
    let Some((start, _)) = NalIter::new(data).next() else {
        return false;
    };
    let nal = &data[start..];
    match (nal.first(), nal.get(1)) {
        (Some(&b0), Some(&b1)) => {
            let t = (b0 >> 1) & 0x3F;
            b0 & 0x81 == 0 && matches!(t, 19 | 20 | 32..=35 | 39) && b1 & 0x07 != 0
        }
        _ => false,
    }
}

/// Iterates NAL units as (start, end) ranges without their start codes.
struct NalIter<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> NalIter<'a> {
    fn new(data: &'a [u8]) -> Self {
        let mut it = NalIter { data, pos: 0 };
        it.pos = it.find_start(0).map_or(data.len(), |(_, after)| after);
        it
    }

    /// Finds the next 00 00 01 at or after `from`: (its offset, offset after it).
    fn find_start(&self, from: usize) -> Option<(usize, usize)> {
        let d = self.data;
        let mut i = from;
        while i + 3 <= d.len() {
            if d[i + 2] > 1 {
                i += 3;
            } else if d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1 {
                return Some((i, i + 3));
            } else {
                i += 1;
            }
        }
        None
    }
}

impl Iterator for NalIter<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        if self.pos >= self.data.len() {
            return None;
        }
        let start = self.pos;
        let (mut end, next) = match self.find_start(start) {
            Some((sc, after)) => (sc, after),
            None => (self.data.len(), self.data.len()),
        };
        // Trailing zeros belong to the next start code (00 00 00 01).
        while end > start && self.data[end - 1] == 0 {
            end -= 1;
        }
        self.pos = next;
        Some((start, end))
    }
}

/// What a NAL means for access-unit splitting.
#[derive(PartialEq, Eq)]
enum NalRole {
    /// Starts a new access unit if the current one has a picture already.
    Prefix,
    /// Slice of a picture; `first` if it opens a new picture.
    Vcl { first: bool, key: bool },
    /// Belongs to the current access unit.
    Other,
}

fn role(nal: &[u8], hevc: bool) -> NalRole {
    if hevc {
        let (Some(&b0), Some(&b2)) = (nal.first(), nal.get(2)) else {
            return NalRole::Other;
        };
        let t = (b0 >> 1) & 0x3F;
        match t {
            0..=31 => NalRole::Vcl {
                first: b2 & 0x80 != 0,
                key: (16..=23).contains(&t),
            },
            32..=35 | 39 | 41..=44 | 48..=55 => NalRole::Prefix,
            _ => NalRole::Other,
        }
    } else {
        let (Some(&b0), Some(&b1)) = (nal.first(), nal.get(1)) else {
            return NalRole::Other;
        };
        match b0 & 0x1F {
            t @ (1 | 5) => NalRole::Vcl {
                // first_mb_in_slice is ue(v); its first bit is 1 iff it is 0.
                first: b1 & 0x80 != 0,
                key: t == 5,
            },
            6..=9 | 14..=18 => NalRole::Prefix,
            _ => NalRole::Other,
        }
    }
}

/// Of one access unit in Annex-B form (as MPEG-TS carries it): whether it
/// holds a key picture, and the picture size from an SPS in it.
pub(crate) fn describe_access_unit(data: &[u8], hevc: bool) -> (bool, Option<(u32, u32)>) {
    let mut key = false;
    let mut size = None;
    for (s, e) in NalIter::new(data) {
        let nal = &data[s..e];
        if let NalRole::Vcl { key: true, .. } = role(nal, hevc) {
            key = true;
        }
        if size.is_none() && is_sps(nal, hevc) {
            size = if hevc {
                crate::sps::h265_size(nal)
            } else {
                crate::sps::h264_size(nal)
            };
        }
    }
    (key, size)
}

/// Whether `nal` is a sequence parameter set.
fn is_sps(nal: &[u8], hevc: bool) -> bool {
    match nal.first() {
        Some(&b) if hevc => (b >> 1) & 0x3F == 33,
        Some(&b) => b & 0x1F == 7,
        None => false,
    }
}

/// Demuxer of one Annex-B file held in memory.
pub(crate) struct AnnexBDemuxer {
    data: Vec<u8>,
    nals: Vec<(usize, usize)>,
    next_nal: usize,
    hevc: bool,
    tracks: Vec<Track>,
    frame_ns: (u64, u64),
    count: u64,
}

impl AnnexBDemuxer {
    /// Splits `data` at start codes; `fps` gives the times.
    pub(crate) fn new(data: Vec<u8>, hevc: bool, fps: (u32, u32)) -> Result<Self, DemuxError> {
        let nals: Vec<(usize, usize)> = NalIter::new(&data).filter(|(s, e)| e > s).collect();
        if !nals
            .iter()
            .any(|&(s, e)| matches!(role(&data[s..e], hevc), NalRole::Vcl { .. }))
        {
            return Err(DemuxError::corrupt("Annex-B", "no picture in the stream"));
        }
        if fps.0 == 0 || fps.1 == 0 {
            return Err(DemuxError::Unsupported {
                container: "Annex-B",
                feature: "a zero frame rate",
            });
        }
        let (width, height) = nals
            .iter()
            .map(|&(s, e)| &data[s..e])
            .find(|nal| is_sps(nal, hevc))
            .and_then(|nal| {
                if hevc {
                    crate::sps::h265_size(nal)
                } else {
                    crate::sps::h264_size(nal)
                }
            })
            .unwrap_or((0, 0));
        let track = Track {
            id: 1,
            codec: if hevc { Codec::H265 } else { Codec::H264 },
            width,
            height,
            sample_rate: 0,
            channels: 0,
            codec_data: Vec::new(),
            fps: Some(fps),
            start_trim: 0,
            end_trim: 0,
        };
        Ok(AnnexBDemuxer {
            data,
            nals,
            next_nal: 0,
            hevc,
            tracks: vec![track],
            frame_ns: (u64::from(fps.1) * 1_000_000_000, u64::from(fps.0)),
            count: 0,
        })
    }
}

impl Demuxer for AnnexBDemuxer {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        let mut au = Vec::new();
        let mut has_vcl = false;
        let mut key = false;
        while let Some(&(s, e)) = self.nals.get(self.next_nal) {
            let nal = &self.data[s..e];
            let r = role(nal, self.hevc);
            let starts_au = match r {
                NalRole::Prefix => true,
                NalRole::Vcl { first, .. } => first,
                NalRole::Other => false,
            };
            if starts_au && has_vcl {
                break;
            }
            if let NalRole::Vcl { key: k, .. } = r {
                has_vcl = true;
                key |= k;
            }
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(nal);
            self.next_nal += 1;
        }
        if au.is_empty() {
            return Ok(None);
        }
        if !has_vcl {
            // Parameter sets or SEI with no picture after them: a truncated stream.
            return Err(DemuxError::corrupt(
                "Annex-B",
                "stream ends without a picture after its last headers",
            ));
        }
        let (num, den) = self.frame_ns;
        let dts = scale(self.count, num, den);
        self.count += 1;
        Ok(Some(Sample {
            clip: Clip::NONE,
            track: 1,
            pts: None,
            dts: Some(dts),
            duration: Some(scale(1, num, den)),
            keyframe: key,
            discont: false,
            decode_only: false,
            data: au,
        }))
    }
}

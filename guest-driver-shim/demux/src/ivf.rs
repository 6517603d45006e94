//! IVF (VP8, VP9, AV1): a 32-byte file header and 12-byte frame headers.
//!
//! Simple enough to read by hand; VP8/VP9 keyframe flags come from the first
//! byte(s) of each frame since IVF itself carries none.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::bytes::scale;
use crate::{Clip, Codec, DemuxError, Demuxer, Sample, Track};

const NAME: &str = "IVF";
/// Largest frame accepted, so a corrupt size cannot exhaust memory.
const MAX_FRAME: usize = 64 << 20;

/// Demuxer of one IVF file.
pub(crate) struct IvfDemuxer {
    reader: BufReader<File>,
    tracks: Vec<Track>,
    /// Time base: a pts tick lasts `tb_num / tb_den` seconds.
    tb_num: u64,
    tb_den: u64,
}

impl IvfDemuxer {
    /// Reads the file header.
    pub(crate) fn open(path: &Path) -> Result<Self, DemuxError> {
        let mut reader = BufReader::new(File::open(path)?);
        let mut h = [0u8; 32];
        read_exact_or_corrupt(&mut reader, &mut h, "file header")?;
        let le16 = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
        let le32 = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let header_len = usize::from(le16(6));
        if header_len < 32 {
            return Err(DemuxError::corrupt(NAME, "header length below 32"));
        }
        let mut extra = vec![0u8; header_len - 32];
        read_exact_or_corrupt(&mut reader, &mut extra, "file header")?;
        let codec = match &h[8..12] {
            b"VP80" => Codec::Vp8,
            b"VP90" => Codec::Vp9,
            b"AV01" => Codec::Av1,
            other => {
                return Err(DemuxError::UnsupportedCodec {
                    container: NAME,
                    codec: String::from_utf8_lossy(other).into_owned(),
                });
            }
        };
        let (rate, tscale) = (le32(16), le32(20));
        if rate == 0 || tscale == 0 {
            return Err(DemuxError::corrupt(NAME, "zero time base"));
        }
        let track = Track {
            id: 1,
            codec,
            width: u32::from(le16(12)),
            height: u32::from(le16(14)),
            sample_rate: 0,
            channels: 0,
            codec_data: Vec::new(),
            fps: Some((rate, tscale)),
            start_trim: 0,
            end_trim: 0,
        };
        Ok(IvfDemuxer {
            reader,
            tracks: vec![track],
            tb_num: u64::from(tscale),
            tb_den: u64::from(rate),
        })
    }
}

/// Fills `buf`; a short read is a truncated file.
fn read_exact_or_corrupt(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<(), DemuxError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => DemuxError::corrupt(NAME, format!("truncated {what}")),
        _ => DemuxError::Io(e),
    })
}

impl Demuxer for IvfDemuxer {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        let mut h = [0u8; 12];
        let got = self.reader.read(&mut h[..1])?;
        if got == 0 {
            return Ok(None);
        }
        read_exact_or_corrupt(&mut self.reader, &mut h[1..], "frame header")?;
        let size =
            usize::try_from(u32::from_le_bytes([h[0], h[1], h[2], h[3]])).unwrap_or(usize::MAX);
        if size == 0 || size > MAX_FRAME {
            return Err(DemuxError::corrupt(NAME, format!("bad frame size {size}")));
        }
        let mut pts_b = [0u8; 8];
        pts_b.copy_from_slice(&h[4..12]);
        let pts = u64::from_le_bytes(pts_b);
        let mut data = vec![0u8; size];
        read_exact_or_corrupt(&mut self.reader, &mut data, "frame")?;
        let ns = scale(pts, self.tb_num * 1_000_000_000, self.tb_den);
        let keyframe = match self.tracks[0].codec {
            Codec::Vp8 => data[0] & 1 == 0,
            Codec::Vp9 => vp9_keyframe(&data),
            _ => av1_keyframe(&data),
        };
        Ok(Some(Sample {
            clip: Clip::NONE,
            track: 1,
            pts: Some(ns),
            dts: Some(ns),
            duration: Some(scale(1, self.tb_num * 1_000_000_000, self.tb_den)),
            keyframe,
            discont: false,
            decode_only: false,
            data,
        }))
    }
}

/// VP9 uncompressed header: frame_marker(2), profile(2 + reserved bit for
/// profile 3), show_existing_frame, frame_type (0 = key).
fn vp9_keyframe(data: &[u8]) -> bool {
    let b = data[0];
    if b >> 6 != 2 {
        return false;
    }
    let profile = ((b >> 5) & 1) | (((b >> 4) & 1) << 1);
    // Bit index from the MSB: marker 0-1, profile 2-3, [reserved 4].
    let mut bit = if profile == 3 { 5 } else { 4 };
    let show_existing = (b >> (7 - bit)) & 1;
    if show_existing == 1 {
        return false;
    }
    bit += 1;
    (b >> (7 - bit)) & 1 == 0
}

/// An AV1 temporal unit that carries a sequence header OBU starts a
/// coded video sequence; encoders emit one with each key frame.
fn av1_keyframe(data: &[u8]) -> bool {
    let mut pos = 0usize;
    while pos < data.len() {
        let header = data[pos];
        let obu_type = (header >> 3) & 0xF;
        if obu_type == 1 {
            return true;
        }
        let has_ext = header & 4 != 0;
        let has_size = header & 2 != 0;
        pos += 1 + usize::from(has_ext);
        if !has_size {
            return false;
        }
        let mut size = 0u64;
        let mut shift = 0;
        loop {
            let Some(&b) = data.get(pos) else {
                return false;
            };
            pos += 1;
            size |= u64::from(b & 0x7F) << shift;
            shift += 7;
            if b & 0x80 == 0 || shift > 56 {
                break;
            }
        }
        pos = pos.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
    }
    false
}

//! Native FLAC files (`.flac`): "fLaC", metadata blocks, then frames.
//!
//! FLAC frames do not store their length. As libFLAC and GStreamer's
//! flacparse do, a frame ends where the next valid frame header starts: a
//! sync code, fields that agree with STREAMINFO and a matching CRC-8, and
//! the bytes before it must pass the frame's CRC-16. A frame can be no
//! longer than its samples stored verbatim, which bounds the search (and
//! the memory) on damaged files. The device takes "fLaC" + STREAMINFO as
//! codec data, the form the Ogg and Matroska paths give.

use std::fs::File;
use std::path::Path;

use crate::reader::Reader;
use crate::{Codec, DemuxError, Demuxer, Sample, Track, tags};

const NAME: &str = "FLAC";

/// What the frames need from STREAMINFO.
#[derive(Debug, Clone, Copy)]
struct StreamInfo {
    max_block: u32,
    sample_rate: u32,
    channels: u32,
    bits: u32,
}

/// A frame header that passed its CRC-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// Samples per channel in the frame.
    pub(crate) block_size: u32,
    /// Variable block size (the header numbers samples, not frames).
    variable: bool,
    sample_rate: Option<u32>,
    channels: u32,
    bits: Option<u32>,
}

/// CRC-8, polynomial x^8 + x^2 + x + 1, of frame headers.
fn crc8(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |mut crc, &b| {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// CRC-16, polynomial x^16 + x^15 + x^2 + 1, of whole frames, by table.
const CRC16: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i: u16 = 0;
    while i < 256 {
        let mut crc = i << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i as usize] = crc;
        i += 1;
    }
    table
};

fn crc16_step(crc: u16, b: u8) -> u16 {
    (crc << 8) ^ CRC16[usize::from((crc >> 8) as u8 ^ b)]
}

/// Parses a frame header at the start of `b` (FLAC format, "FRAME_HEADER")
/// and checks its CRC-8.
pub(crate) fn frame_header(b: &[u8]) -> Option<FrameHeader> {
    if b.len() < 6 || b[0] != 0xFF || b[1] & 0xFE != 0xF8 {
        return None;
    }
    let (bs_code, sr_code) = (b[2] >> 4, b[2] & 0x0F);
    let (ch_code, bits_code) = (b[3] >> 4, (b[3] >> 1) & 7);
    if bs_code == 0 || sr_code == 15 || ch_code > 10 || b[3] & 1 != 0 || bits_code == 3 {
        return None;
    }
    // The frame or sample number, coded like UTF-8 (up to 7 bytes).
    let lead = b[4].leading_ones() as usize;
    let num_len = match lead {
        0 => 1,
        2..=7 => lead,
        _ => return None,
    };
    let mut at = 4 + num_len;
    if b.get(5..at)?.iter().any(|&c| c & 0xC0 != 0x80) {
        return None;
    }
    let mut extra = |n: usize| -> Option<u32> {
        let v = b
            .get(at..at + n)?
            .iter()
            .fold(0u32, |a, &x| (a << 8) | u32::from(x));
        at += n;
        Some(v)
    };
    let block_size = match bs_code {
        1 => 192,
        2..=5 => 576 << (bs_code - 2),
        6 => extra(1)? + 1,
        7 => extra(2)? + 1,
        _ => 256 << (bs_code - 8),
    };
    let sample_rate = match sr_code {
        0 => None,
        1..=11 => Some(
            [
                88_200, 176_400, 192_000, 8_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000,
                96_000,
            ][usize::from(sr_code - 1)],
        ),
        12 => Some(extra(1)? * 1000),
        13 => Some(extra(2)?),
        _ => Some(extra(2)? * 10),
    };
    let crc = *b.get(at)?;
    if crc8(&b[..at]) != crc {
        return None;
    }
    Some(FrameHeader {
        block_size,
        variable: b[1] & 1 != 0,
        sample_rate,
        channels: if ch_code < 8 {
            u32::from(ch_code) + 1
        } else {
            2
        },
        bits: [
            None,
            Some(8),
            Some(12),
            None,
            Some(16),
            Some(20),
            Some(24),
            Some(32),
        ][usize::from(bits_code)],
    })
}

impl StreamInfo {
    /// Whether `h` can be a frame of this stream.
    fn accepts(&self, h: &FrameHeader) -> bool {
        h.channels == self.channels
            && h.sample_rate.is_none_or(|r| r == self.sample_rate)
            && h.bits.is_none_or(|b| b == self.bits)
            && h.block_size <= self.max_block.max(16)
    }

    /// The longest a frame of `block` samples can be: every channel stored
    /// verbatim (one more bit for a side channel), headers and CRC.
    fn max_frame(&self, block: u32) -> usize {
        let per_channel = (u64::from(block) * u64::from(self.bits + 1)).div_ceil(8) + 2;
        usize::try_from(u64::from(self.channels) * per_channel + 16 + 2).unwrap_or(usize::MAX)
    }
}

/// Demuxer of one native FLAC file.
pub(crate) struct FlacDemuxer {
    reader: Reader,
    info: StreamInfo,
    tracks: Vec<Track>,
    /// Blocking strategy of the first frame.
    variable: Option<bool>,
    /// Samples before the next frame.
    position: u64,
}

impl FlacDemuxer {
    /// Reads the metadata blocks up to the first frame.
    pub(crate) fn open(path: &Path) -> Result<Self, DemuxError> {
        let mut reader = Reader::new(File::open(path)?)?;
        tags::skip_id3v2(&mut reader, NAME)?;
        let at = reader.offset();
        if reader.take(4)?.as_deref() != Some(b"fLaC") {
            return Err(DemuxError::corrupt(
                NAME,
                format!("no \"fLaC\" at byte {at}"),
            ));
        }
        let mut streaminfo = None;
        loop {
            let at = reader.offset();
            let head = reader.take(4)?.ok_or_else(|| {
                DemuxError::corrupt(NAME, format!("metadata block at byte {at} is cut"))
            })?;
            let (last, kind) = (head[0] & 0x80 != 0, head[0] & 0x7F);
            let len = (u64::from(head[1]) << 16) | (u64::from(head[2]) << 8) | u64::from(head[3]);
            if kind == 127 || (streaminfo.is_none() != (kind == 0)) || len > reader.remaining() {
                return Err(DemuxError::corrupt(
                    NAME,
                    format!("bad metadata block (type {kind}, {len} bytes) at byte {at}"),
                ));
            }
            if kind == 0 {
                let body = reader.take(34)?.filter(|_| len == 34).ok_or_else(|| {
                    DemuxError::corrupt(NAME, format!("STREAMINFO at byte {at} is not 34 bytes"))
                })?;
                streaminfo = Some(body);
            } else {
                reader.skip(len);
            }
            if last {
                break;
            }
        }
        let si = streaminfo.ok_or_else(|| DemuxError::corrupt(NAME, "no STREAMINFO"))?;
        let packed = u32::from_be_bytes([si[10], si[11], si[12], si[13]]);
        let info = StreamInfo {
            max_block: u32::from(u16::from_be_bytes([si[2], si[3]])),
            sample_rate: packed >> 12,
            channels: ((packed >> 9) & 7) + 1,
            bits: ((packed >> 4) & 31) + 1,
        };
        if info.sample_rate == 0 {
            return Err(DemuxError::corrupt(NAME, "STREAMINFO gives no sample rate"));
        }
        // "fLaC", then STREAMINFO flagged as the last metadata block.
        let mut codec_data = b"fLaC\x80\x00\x00\x22".to_vec();
        codec_data.extend_from_slice(&si);
        let track = Track {
            id: 1,
            codec: Codec::Flac,
            width: 0,
            height: 0,
            sample_rate: info.sample_rate,
            channels: info.channels,
            codec_data,
            fps: None,
            start_trim: 0,
            end_trim: 0,
        };
        Ok(FlacDemuxer {
            reader,
            info,
            tracks: vec![track],
            variable: None,
            position: 0,
        })
    }

    /// The length of the frame with header `h` at the reader's position.
    fn frame_len(&mut self, h: &FrameHeader) -> Result<usize, DemuxError> {
        let at = self.reader.offset();
        let limit = self.info.max_frame(h.block_size);
        let remaining = self.reader.remaining();
        let window = self.reader.peek(limit.saturating_add(32))?;
        let mut crc = 0u16;
        for (q, &b) in window.iter().enumerate() {
            if q > 4
                && crc == 0
                && b == 0xFF
                && frame_header(&window[q..])
                    .is_some_and(|n| n.variable == h.variable && self.info.accepts(&n))
            {
                return Ok(q);
            }
            if q > limit {
                break;
            }
            crc = crc16_step(crc, b);
        }
        if crc == 0 && window.len() as u64 == remaining && window.len() <= limit {
            // The last frame ends with the file.
            return Ok(window.len());
        }
        Err(DemuxError::corrupt(
            NAME,
            format!("the frame at byte {at} has no valid end (CRC-16 or next header)"),
        ))
    }
}

impl Demuxer for FlacDemuxer {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        let at = self.reader.offset();
        let head = self.reader.peek(16)?;
        if head.is_empty() {
            return Ok(None);
        }
        let h = frame_header(head)
            .filter(|h| self.info.accepts(h) && self.variable.is_none_or(|v| v == h.variable))
            .ok_or_else(|| DemuxError::corrupt(NAME, format!("no frame header at byte {at}")))?;
        self.variable = Some(h.variable);
        let len = self.frame_len(&h)?;
        let data = self
            .reader
            .take(len)?
            .ok_or_else(|| DemuxError::corrupt(NAME, format!("the frame at byte {at} is cut")))?;
        let (position, samples) = (self.position, u64::from(h.block_size));
        self.position += samples;
        let rate = u64::from(self.info.sample_rate);
        Ok(Some(Sample::audio(1, position, samples, rate, data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crcs() {
        // CRC-8 and CRC-16 "check" values of "123456789".
        assert_eq!(crc8(b"123456789"), 0xF4);
        assert_eq!(
            b"123456789".iter().fold(0, |c, &b| crc16_step(c, b)),
            0xFEE8
        );
    }

    #[test]
    fn header_with_crc() {
        // Fixed blocking, 4096 samples, 44.1 kHz, stereo, 16-bit, frame 0.
        let mut h = vec![0xFF, 0xF8, 0xC9, 0x18, 0x00];
        h.push(crc8(&h));
        let f = frame_header(&h).expect("header");
        assert_eq!(
            (f.block_size, f.sample_rate, f.channels, f.bits),
            (4096, Some(44_100), 2, Some(16))
        );
        h[5] ^= 1;
        assert!(frame_header(&h).is_none());
    }
}

//! AC-3 and E-AC-3 syncframe headers (ATSC A/52, and its Annex E).
//!
//! Both start with the sync word `0B 77`; the bitstream id five bytes in
//! tells them apart (up to 10 AC-3, 11 to 16 E-AC-3). An AC-3 frame's
//! length comes from its sample rate and frame size code and always holds
//! 1536 samples; an E-AC-3 frame gives its length in words and holds one,
//! two, three or six blocks of 256 samples. Dependent E-AC-3 substreams
//! (the extra channels of 7.1) add no time of their own.
//!
//! Raw `.ac3`/`.eac3` files (as ffmpeg's `ac3`/`eac3` muxers write them)
//! are such frames one after another, read as [`crate::elementary`] reads
//! MP3; WAV files with AC-3 inside share the reader.

use crate::elementary::{FileDemuxer, First, FrameStream, Frames, find_first};
use crate::reader::Reader;
use crate::sps::Bits;
use crate::{Codec, DemuxError, Sample, Track};

/// AC-3 bitrates in kbit/s, by frame size code / 2.
const BITRATES: [u32; 19] = [
    32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640,
];

/// A parsed syncframe header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// E-AC-3 rather than AC-3.
    pub(crate) enhanced: bool,
    pub(crate) sample_rate: u32,
    /// Full-bandwidth channels plus the LFE channel.
    pub(crate) channels: u32,
    /// Frame length in bytes.
    len: usize,
    /// Samples per channel this frame adds (0 for a dependent substream).
    pub(crate) samples: u32,
}

/// Channels of an audio coding mode, LFE excluded.
fn acmod_channels(acmod: u32) -> u32 {
    [2, 1, 2, 3, 3, 4, 4, 5][(acmod & 7) as usize]
}

impl Header {
    /// Parses a header at the start of `b` (at least 8 bytes are needed);
    /// `None` if it is no valid AC-3 or E-AC-3 syncframe header.
    pub(crate) fn parse(b: &[u8]) -> Option<Header> {
        if b.get(..2)? != [0x0B, 0x77] {
            return None;
        }
        let bsid = b.get(5)? >> 3;
        match bsid {
            0..=8 => Self::parse_ac3(b),
            11..=16 => Self::parse_eac3(b),
            // 9 and 10 are the rare half/quarter-rate AC-3 forms.
            _ => None,
        }
    }

    fn parse_ac3(b: &[u8]) -> Option<Header> {
        let fscod = b[4] >> 6;
        let frmsizecod = b[4] & 0x3F;
        let br = *BITRATES.get(usize::from(frmsizecod / 2))?;
        let (sample_rate, words) = match fscod {
            0 => (48_000, 2 * br),
            1 => (44_100, 320 * br / 147 + u32::from(frmsizecod & 1)),
            2 => (32_000, 3 * br),
            _ => return None,
        };
        // BSI after bsid (5) and bsmod (3): acmod, mix levels, lfeon.
        let mut r = Bits::new(b.get(6..8)?);
        let acmod = r.bits(3)?;
        if acmod & 1 != 0 && acmod != 1 {
            r.skip(2)?;
        }
        if acmod & 4 != 0 {
            r.skip(2)?;
        }
        if acmod == 2 {
            r.skip(2)?;
        }
        let lfe = r.bit()?;
        Some(Header {
            enhanced: false,
            sample_rate,
            channels: acmod_channels(acmod) + lfe,
            len: words as usize * 2,
            samples: 1536,
        })
    }

    fn parse_eac3(b: &[u8]) -> Option<Header> {
        let mut r = Bits::new(b.get(2..5)?);
        let strmtyp = r.bits(2)?;
        let substream = r.bits(3)?;
        let words = r.bits(11)? + 1;
        let fscod = r.bits(2)?;
        let (sample_rate, blocks) = if fscod == 3 {
            let rate = match r.bits(2)? {
                0 => 24_000,
                1 => 22_050,
                2 => 16_000,
                _ => return None,
            };
            (rate, 6)
        } else {
            let blocks = [1, 2, 3, 6][r.bits(2)? as usize];
            ([48_000, 44_100, 32_000][fscod as usize], blocks)
        };
        let acmod = r.bits(3)?;
        let lfe = r.bit()?;
        if strmtyp == 3 || words < 3 {
            return None;
        }
        // Independent substream 0 carries the time; the others add
        // channels or programmes to it.
        let dependent = strmtyp == 1 || substream != 0;
        Some(Header {
            enhanced: true,
            sample_rate,
            channels: acmod_channels(acmod) + lfe,
            len: words as usize * 2,
            samples: if dependent { 0 } else { blocks * 256 },
        })
    }

    /// The device codec.
    pub(crate) fn codec(&self) -> Codec {
        if self.enhanced {
            Codec::Eac3
        } else {
            Codec::Ac3
        }
    }
}

impl crate::elementary::FrameHeader for Header {
    fn parse(b: &[u8]) -> Option<Self> {
        Header::parse(b)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn same_stream(&self, other: &Self) -> bool {
        self.enhanced == other.enhanced
            && (self.sample_rate == other.sample_rate || other.samples == 0)
    }
}

/// Frames of one AC-3 or E-AC-3 stream.
pub(crate) type Ac3Stream = Frames<Header>;

impl FrameStream for Ac3Stream {
    fn open(
        r: &mut Reader,
        id: u32,
        container: &'static str,
    ) -> Result<(Ac3Stream, Track), DemuxError> {
        let start = r.offset();
        let First::Found(first) = find_first::<Header>(r)? else {
            return Err(DemuxError::corrupt(
                container,
                format!("no AC-3 frames from byte {start}"),
            ));
        };
        let track = Track::audio(id, first.codec(), first.sample_rate, first.channels);
        let stream = Frames::new(first, id, container);
        Ok((stream, track))
    }

    fn next(&mut self, r: &mut Reader) -> Result<Option<Sample>, DemuxError> {
        self.next_timed(r, |h| (h.samples, h.sample_rate))
    }
}

/// Demuxer of one raw AC-3 or E-AC-3 file.
pub(crate) type Ac3Demuxer = FileDemuxer<Ac3Stream>;

/// The container name of raw AC-3 files in messages.
pub(crate) const NAME: &str = "AC-3";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elementary::FrameHeader;

    #[test]
    fn ac3_lengths_and_channels() {
        // 48 kHz, 448 kbit/s (code 30), bsid 8, acmod 7 (3/2), LFE on:
        // after acmod 7: cmixlev, surmixlev, then lfeon.
        let h = Header::parse(&[0x0B, 0x77, 0, 0, 30, 0x40, 0xE0 | 0x01, 0]).unwrap();
        assert_eq!((h.sample_rate, h.len(), h.samples), (48_000, 1792, 1536));
        assert_eq!((h.channels, h.codec()), (6, Codec::Ac3));
        // 44.1 kHz, 192 kbit/s, odd code 21: 417 words + 1.
        let h = Header::parse(&[0x0B, 0x77, 0, 0, 0x40 | 21, 0x40, 0x40, 0]).unwrap();
        assert_eq!((h.len(), h.channels), (2 * 418, 2));
        assert!(Header::parse(&[0x0B, 0x77, 0, 0, 0xC0, 0x40, 0, 0]).is_none());
        assert!(Header::parse(&[0x0B, 0x78, 0, 0, 30, 0x40, 0, 0]).is_none());
    }

    #[test]
    fn eac3_lengths_and_blocks() {
        // Independent, substream 0, 768 words, 48 kHz, 6 blocks, acmod 2,
        // no LFE, bsid 16.
        // frmsiz 767 = 0x2FF.
        let b = [0x0B, 0x77, 0x02, 0xFF, 0b0011_0100, 16 << 3, 0, 0];
        let h = Header::parse(&b).unwrap();
        assert_eq!((h.len(), h.samples, h.channels), (1536, 1536, 2));
        assert_eq!((h.sample_rate, h.codec()), (48_000, Codec::Eac3));
        // A dependent substream adds no samples.
        let mut d = b;
        d[2] |= 0x40;
        assert_eq!(Header::parse(&d).unwrap().samples, 0);
    }
}

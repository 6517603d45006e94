//! ADTS AAC elementary streams (`.aac`), as ffmpeg, faac and GStreamer's
//! aacparse write them.
//!
//! Each frame has a 7- or 9-byte header that says the profile, rate and
//! channels. The device takes raw AAC frames plus an AudioSpecificConfig,
//! the form MP4 and Matroska store, so this module strips every header and
//! builds the two-byte AudioSpecificConfig from the first.

use std::fs::File;
use std::path::Path;

use crate::elementary::{First, FrameHeader, find_first, next_frame};
use crate::reader::Reader;
use crate::{Codec, DemuxError, Demuxer, Sample, Track, tags};

const NAME: &str = "ADTS AAC";

/// Sampling frequencies by index (ISO 14496-3, table 1.18).
const RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// A parsed ADTS header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// MPEG-4 audio object type minus one.
    profile: u8,
    rate_index: u8,
    channel_config: u8,
    /// Header bytes (7, or 9 with a CRC).
    pub(crate) header_len: usize,
    frame_len: usize,
    /// Raw data blocks in the frame minus one.
    pub(crate) extra_blocks: u8,
}

impl Header {
    /// Parses an ADTS header; `None` if `b` does not start with one.
    pub(crate) fn parse(b: &[u8]) -> Option<Header> {
        let b = b.get(..7)?;
        // Sync word, layer 0.
        if b[0] != 0xFF || b[1] & 0xF6 != 0xF0 {
            return None;
        }
        let rate_index = (b[2] >> 2) & 0x0F;
        if usize::from(rate_index) >= RATES.len() {
            return None;
        }
        let header_len = if b[1] & 1 == 1 { 7 } else { 9 };
        let frame_len =
            (usize::from(b[3] & 3) << 11) | (usize::from(b[4]) << 3) | usize::from(b[5] >> 5);
        if frame_len <= header_len {
            return None;
        }
        Some(Header {
            profile: b[2] >> 6,
            rate_index,
            channel_config: ((b[2] & 1) << 2) | (b[3] >> 6),
            header_len,
            frame_len,
            extra_blocks: b[6] & 3,
        })
    }

    /// Channels, `None` where the layout is in a program config element.
    pub(crate) fn channels(&self) -> Option<u32> {
        match self.channel_config {
            0 => None,
            7 => Some(8),
            n => Some(u32::from(n)),
        }
    }

    pub(crate) fn sample_rate(&self) -> u32 {
        RATES[usize::from(self.rate_index)]
    }

    /// The AudioSpecificConfig: object type, rate index, channel
    /// configuration, and a GASpecificConfig of three zero bits.
    pub(crate) fn audio_specific_config(&self) -> Vec<u8> {
        let aot = self.profile + 1;
        vec![
            (aot << 3) | (self.rate_index >> 1),
            ((self.rate_index & 1) << 7) | (self.channel_config << 3),
        ]
    }
}

impl FrameHeader for Header {
    fn parse(b: &[u8]) -> Option<Self> {
        Header::parse(b)
    }

    fn len(&self) -> usize {
        self.frame_len
    }

    fn same_stream(&self, other: &Self) -> bool {
        self.profile == other.profile
            && self.rate_index == other.rate_index
            && self.channel_config == other.channel_config
    }
}

/// The refusal of ADTS streams whose channel layout is in a PCE.
pub(crate) const PCE_LAYOUT: DemuxError = DemuxError::Unsupported {
    container: NAME,
    feature: "ADTS channel configuration 0 (layout in a program config element)",
};

/// Demuxer of one ADTS file.
pub(crate) struct AdtsDemuxer {
    reader: Reader,
    first: Header,
    tracks: Vec<Track>,
    /// Samples before the next frame.
    position: u64,
}

impl AdtsDemuxer {
    /// Skips an ID3v2 tag (HLS audio segments have one) and reads the first header.
    pub(crate) fn open(path: &Path) -> Result<Self, DemuxError> {
        let mut reader = Reader::new(File::open(path)?)?;
        tags::trim_trailing_tags(&mut reader)?;
        tags::skip_id3v2(&mut reader, NAME)?;
        let start = reader.offset();
        let First::Found(first) = find_first::<Header>(&mut reader)? else {
            return Err(DemuxError::corrupt(
                NAME,
                format!("no ADTS frames from byte {start}"),
            ));
        };
        let channels = first.channels().ok_or(PCE_LAYOUT)?;
        let track = Track {
            id: 1,
            codec: Codec::Aac,
            width: 0,
            height: 0,
            sample_rate: first.sample_rate(),
            channels,
            codec_data: first.audio_specific_config(),
            fps: None,
            start_trim: 0,
            end_trim: 0,
        };
        Ok(AdtsDemuxer {
            reader,
            first,
            tracks: vec![track],
            position: 0,
        })
    }
}

impl Demuxer for AdtsDemuxer {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        let Some((h, mut data)) = next_frame(&mut self.reader, &self.first, NAME, false)? else {
            return Ok(None);
        };
        if h.extra_blocks != 0 {
            return Err(DemuxError::Unsupported {
                container: NAME,
                feature: "several raw data blocks in one ADTS frame",
            });
        }
        data.drain(..h.header_len);
        let position = self.position;
        self.position += 1024;
        let rate = u64::from(h.sample_rate());
        Ok(Some(Sample::audio(1, position, 1024, rate, data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_config() {
        // AAC-LC, 44.1 kHz (index 4), stereo, 371-byte frame, no CRC.
        let b = [0xFF, 0xF1, 0x50, 0x80, 0x2E, 0x7F, 0xFC];
        let h = Header::parse(&b).expect("header");
        assert_eq!(
            (h.frame_len, h.header_len, h.sample_rate()),
            (371, 7, 44_100)
        );
        assert_eq!(h.audio_specific_config(), vec![0x12, 0x10]);
        // MPEG audio (layer bits set) is not ADTS.
        assert!(Header::parse(&[0xFF, 0xFB, 0x90, 0, 0, 0, 0]).is_none());
    }
}

//! MPEG audio (ISO 11172-3 / 13818-3, and the MPEG-2.5 extension) frame
//! headers, and the Xing/Info, LAME and VBRI headers encoders put in the
//! first frame.
//!
//! The frame header gives each frame's length, so a stream is split into
//! frames by reading headers one after the other. The first frame of a
//! file from LAME, ffmpeg or GStreamer's xingmux carries no audio but a
//! Xing ("Info" for constant bitrate) or VBRI header; LAME's extension of
//! it says how many priming samples the encoder added in front and how
//! many padding samples at the end, which a gapless player cuts.

/// MPEG version of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    Mpeg1,
    Mpeg2,
    Mpeg25,
}

/// A parsed 4-byte frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: Version,
    /// 1, 2 or 3.
    pub(crate) layer: u8,
    pub(crate) crc: bool,
    /// kbit/s; 0 is free format.
    pub(crate) bitrate: u32,
    pub(crate) sample_rate: u32,
    pub(crate) padding: bool,
    pub(crate) channels: u32,
}

const BITRATES_V1: [[u16; 15]; 3] = [
    [
        0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
    ],
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
    ],
    [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ],
];
const BITRATES_V2: [[u16; 15]; 2] = [
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
    ],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];

impl Header {
    /// Parses a header; `None` if `b` is no valid MPEG audio frame header.
    pub(crate) fn parse(b: &[u8]) -> Option<Header> {
        let b = b.get(..4)?;
        if b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
            return None;
        }
        let version = match (b[1] >> 3) & 3 {
            0 => Version::Mpeg25,
            2 => Version::Mpeg2,
            3 => Version::Mpeg1,
            _ => return None,
        };
        let layer = match (b[1] >> 1) & 3 {
            1 => 3,
            2 => 2,
            3 => 1,
            _ => return None,
        };
        let bitrate_index = usize::from(b[2] >> 4);
        let rate_index = usize::from((b[2] >> 2) & 3);
        if bitrate_index == 15 || rate_index == 3 {
            return None;
        }
        let l = usize::from(layer - 1);
        let bitrate = match version {
            Version::Mpeg1 => BITRATES_V1[l][bitrate_index],
            _ => BITRATES_V2[l.min(1)][bitrate_index],
        };
        let base = [44_100, 48_000, 32_000][rate_index];
        let sample_rate = match version {
            Version::Mpeg1 => base,
            Version::Mpeg2 => base / 2,
            Version::Mpeg25 => base / 4,
        };
        Some(Header {
            version,
            layer,
            crc: b[1] & 1 == 0,
            bitrate: u32::from(bitrate),
            sample_rate,
            padding: b[2] & 2 != 0,
            channels: if b[3] >> 6 == 3 { 1 } else { 2 },
        })
    }

    /// Samples per channel in one frame.
    pub(crate) fn samples(&self) -> u32 {
        match (self.layer, self.version) {
            (1, _) => 384,
            (3, Version::Mpeg2 | Version::Mpeg25) => 576,
            _ => 1152,
        }
    }

    /// Frame length in bytes, header included; 0 for free format.
    pub(crate) fn len(&self) -> usize {
        let br = self.bitrate as usize * 1000;
        let sr = self.sample_rate as usize;
        let pad = usize::from(self.padding);
        match self.layer {
            1 => (12 * br / sr + pad) * 4,
            _ => self.samples() as usize / 8 * br / sr + pad,
        }
    }

    /// Whether `other` can be the next frame of the same stream.
    pub(crate) fn same_stream(&self, other: &Header) -> bool {
        self.version == other.version
            && self.layer == other.layer
            && self.sample_rate == other.sample_rate
    }

    /// The codec's name, for messages.
    pub(crate) fn codec_name(&self) -> &'static str {
        match (self.layer, self.version) {
            (1, Version::Mpeg1) => "MPEG-1 Layer I",
            (1, _) => "MPEG-2 Layer I",
            (2, Version::Mpeg1) => "MPEG-1 Layer II",
            (2, _) => "MPEG-2 Layer II",
            _ => "MPEG Layer III",
        }
    }

    /// Offset in the frame where a Xing header is: after the header and
    /// the side information, not counting a CRC (where LAME writes it in a
    /// CRC-protected file, and where mpegaudioparse and ffmpeg look).
    fn side_info_end(&self) -> usize {
        let side = match (self.version, self.channels) {
            (Version::Mpeg1, 1) => 17,
            (Version::Mpeg1, _) => 32,
            (_, 1) => 9,
            _ => 17,
        };
        4 + side
    }
}

impl crate::elementary::FrameHeader for Header {
    fn parse(b: &[u8]) -> Option<Self> {
        Header::parse(b)
    }

    fn len(&self) -> usize {
        if self.bitrate == 0 {
            0
        } else {
            Header::len(self)
        }
    }

    fn same_stream(&self, other: &Self) -> bool {
        Header::same_stream(self, other)
    }
}

/// What an encoder's info frame says about the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct InfoFrame {
    /// Audio frames in the stream (info frame excluded), when given.
    pub(crate) frames: Option<u32>,
    /// Priming samples (LAME encoder delay).
    pub(crate) delay: u32,
    /// Padding samples at the end.
    pub(crate) padding: u32,
    /// The LAME extension is signed "LAME": the only one GStreamer's
    /// mpegaudioparse reads (it ignores ffmpeg's "Lavc"/"Lavf" tags).
    pub(crate) lame: bool,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads a Xing/Info (with LAME extension) or VBRI header from the first
/// frame `frame` (header included); `None` if it is an audio frame.
pub(crate) fn info_frame(h: &Header, frame: &[u8]) -> Option<InfoFrame> {
    if h.layer != 3 {
        return None;
    }
    let at = h.side_info_end();
    let tag = frame.get(at..at + 4)?;
    if tag == b"Xing" || tag == b"Info" {
        let flags = be32(frame, at + 4)?;
        let mut pos = at + 8;
        let mut info = InfoFrame::default();
        if flags & 1 != 0 {
            info.frames = be32(frame, pos);
            pos += 4;
        }
        if flags & 2 != 0 {
            pos += 4;
        }
        if flags & 4 != 0 {
            pos += 100;
        }
        if flags & 8 != 0 {
            pos += 4;
        }
        // LAME tag: 9-byte encoder name, then fields up to the 24-bit pair
        // of 12-bit delay and padding 21 bytes in. ffmpeg writes "Lavc"/"Lavf".
        if let Some(name) = frame.get(pos..pos + 4)
            && matches!(name, b"LAME" | b"Lavc" | b"Lavf" | b"GOGO")
            && let Some(d) = frame.get(pos + 21..pos + 24)
        {
            info.delay = (u32::from(d[0]) << 4) | u32::from(d[1] >> 4);
            info.padding = (u32::from(d[1] & 0x0F) << 8) | u32::from(d[2]);
            info.lame = name == b"LAME";
        }
        return Some(info);
    }
    // VBRI (Fraunhofer) sits 32 bytes after the header.
    if frame.get(36..40)? == b"VBRI" {
        let delay = frame.get(42..44)?;
        return Some(InfoFrame {
            frames: be32(frame, 50),
            delay: u32::from(u16::from_be_bytes([delay[0], delay[1]])),
            padding: 0,
            lame: false,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        // MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, stereo: 417 bytes.
        let h = Header::parse(&[0xFF, 0xFB, 0x90, 0x00]).expect("header");
        assert_eq!((h.len(), h.samples(), h.channels), (417, 1152, 2));
        // With padding: 418.
        let h = Header::parse(&[0xFF, 0xFB, 0x92, 0x00]).expect("header");
        assert_eq!(h.len(), 418);
        // MPEG-2 Layer III, 64 kbit/s, 22.05 kHz, mono: 208 bytes, 576 samples.
        let h = Header::parse(&[0xFF, 0xF3, 0x80, 0xC0]).expect("header");
        assert_eq!((h.len(), h.samples(), h.channels), (208, 576, 1));
        // MPEG-2.5, 8 kHz, 8 kbit/s.
        let h = Header::parse(&[0xFF, 0xE3, 0x18, 0xC0]).expect("header");
        assert_eq!((h.sample_rate, h.len()), (8_000, 72));
        // Layer II, 192 kbit/s, 48 kHz: 576 bytes.
        let h = Header::parse(&[0xFF, 0xFD, 0xA4, 0x00]).expect("header");
        assert_eq!((h.layer, h.len()), (2, 576));
        assert_eq!(h.codec_name(), "MPEG-1 Layer II");
        // Bad bitrate, reserved rate, reserved version, no sync.
        assert!(Header::parse(&[0xFF, 0xFB, 0xF0, 0]).is_none());
        assert!(Header::parse(&[0xFF, 0xFB, 0x9C, 0]).is_none());
        assert!(Header::parse(&[0xFF, 0xEB, 0x90, 0]).is_none());
        assert!(Header::parse(&[0xFF, 0x7B, 0x90, 0]).is_none());
    }

    #[test]
    fn lame_delay_and_padding() {
        let h = Header::parse(&[0xFF, 0xFB, 0x90, 0x00]).expect("header");
        let mut f = vec![0u8; h.len()];
        f[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x00]);
        let x = 4 + 32;
        f[x..x + 4].copy_from_slice(b"Info");
        f[x + 4..x + 8].copy_from_slice(&1u32.to_be_bytes());
        f[x + 8..x + 12].copy_from_slice(&42u32.to_be_bytes());
        let l = x + 12;
        f[l..l + 9].copy_from_slice(b"LAME3.100");
        // delay 576 = 0x240, padding 1234 = 0x4D2.
        f[l + 21..l + 24].copy_from_slice(&[0x24, 0x04, 0xD2]);
        let info = info_frame(&h, &f).expect("info frame");
        assert_eq!(
            info,
            InfoFrame {
                frames: Some(42),
                delay: 576,
                padding: 1234,
                lame: true,
            }
        );
    }
}

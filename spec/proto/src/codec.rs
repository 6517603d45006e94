//! Codec identifiers and the rules for their codec configuration data.
//!
//! The device carries compressed media it never decodes, so the only codec
//! knowledge it needs is what a stream's `codec_data` must look like: enough
//! to refuse garbage at `STREAM_CREATE` instead of failing later in the
//! client's decoder (spec, "Codecs and bitstream formats").

use crate::ProtoError;
use crate::enums::protocol_enum;

/// Kind of media a codec carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// Pictures.
    Video,
    /// Sound.
    Audio,
}

/// Whether a codec needs codec data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecDataRule {
    /// The stream is undecodable without it.
    Required,
    /// It selects the bitstream format (e.g. avcC vs Annex-B) or adds detail.
    Optional,
    /// The codec has none; a non-empty `codec_data` is invalid.
    Forbidden,
}

protocol_enum! {
    /// A codec (spec, "Codecs and bitstream formats").
    pub enum Codec: u32 {
        /// H.264 / AVC.
        H264 = 0x001 => "h264",
        /// H.265 / HEVC.
        H265 = 0x002 => "h265",
        /// VP8.
        Vp8 = 0x003 => "vp8",
        /// VP9.
        Vp9 = 0x004 => "vp9",
        /// AV1.
        Av1 = 0x005 => "av1",
        /// Motion JPEG.
        Mjpeg = 0x006 => "mjpeg",
        /// Theora.
        Theora = 0x007 => "theora",
        /// MPEG-2 video (ISO 13818-2; MPEG-1 video is a subset it decodes).
        Mpeg2Video = 0x008 => "mpeg2-video",
        /// MPEG-4 Part 2 video (ISO 14496-2: Simple/Advanced Simple, Xvid, DivX).
        Mpeg4Part2 = 0x009 => "mpeg4",
        /// Opus.
        Opus = 0x101 => "opus",
        /// Vorbis.
        Vorbis = 0x102 => "vorbis",
        /// AAC (MPEG-4 audio).
        Aac = 0x103 => "aac",
        /// MPEG-1/2 layer III.
        Mp3 = 0x104 => "mp3",
        /// FLAC.
        Flac = 0x105 => "flac",
        /// Interleaved signed 16-bit little-endian PCM.
        PcmS16le = 0x106 => "pcm-s16le",
        /// AC-3 (Dolby Digital, ATSC A/52).
        Ac3 = 0x107 => "ac3",
        /// E-AC-3 (Dolby Digital Plus, ATSC A/52 Annex E).
        Eac3 = 0x108 => "eac3",
        /// MPEG-1/2 audio Layer II.
        Mp2 = 0x109 => "mp2",
        /// Interleaved signed 24-bit little-endian PCM, 3 bytes a sample.
        PcmS24le = 0x10A => "pcm-s24le",
        /// Interleaved signed 32-bit little-endian PCM.
        PcmS32le = 0x10B => "pcm-s32le",
        /// Interleaved 32-bit IEEE float little-endian PCM.
        PcmF32le = 0x10C => "pcm-f32le",
        /// Interleaved unsigned 8-bit PCM (128 is silence).
        PcmU8 = 0x10D => "pcm-u8",
    }
    unknown = ProtoError::UnknownCodec;
}

impl Codec {
    /// Video or audio.
    pub fn kind(self) -> MediaKind {
        if self.as_u32() < 0x100 {
            MediaKind::Video
        } else {
            MediaKind::Audio
        }
    }

    /// Whether this is a video codec.
    pub fn is_video(self) -> bool {
        self.kind() == MediaKind::Video
    }

    /// Bytes of one sample of one channel, for the PCM codecs; `None` for
    /// compressed ones.
    pub fn pcm_sample_bytes(self) -> Option<u32> {
        match self {
            Codec::PcmU8 => Some(1),
            Codec::PcmS16le => Some(2),
            Codec::PcmS24le => Some(3),
            Codec::PcmS32le | Codec::PcmF32le => Some(4),
            _ => None,
        }
    }

    /// Whether this codec needs, accepts or forbids codec data.
    pub fn codec_data_rule(self) -> CodecDataRule {
        match self {
            Codec::Vorbis | Codec::Theora | Codec::Flac => CodecDataRule::Required,
            Codec::H264
            | Codec::H265
            | Codec::Av1
            | Codec::Opus
            | Codec::Aac
            | Codec::Mpeg2Video
            | Codec::Mpeg4Part2
            | Codec::PcmS16le
            | Codec::PcmS24le
            | Codec::PcmS32le
            | Codec::PcmF32le
            | Codec::PcmU8 => CodecDataRule::Optional,
            Codec::Vp8
            | Codec::Vp9
            | Codec::Mjpeg
            | Codec::Mp3
            | Codec::Ac3
            | Codec::Eac3
            | Codec::Mp2 => CodecDataRule::Forbidden,
        }
    }

    /// What this codec's codec data is, as the spec's table "Codec data"
    /// names it; `None` for the codecs that take none.
    pub fn codec_data_format(self) -> Option<&'static str> {
        match self {
            Codec::H264 => Some("avcC"),
            Codec::H265 => Some("hvcC"),
            Codec::Av1 => Some("av1C"),
            Codec::Opus => Some("OpusHead"),
            Codec::Aac => Some("AudioSpecificConfig"),
            Codec::Flac => Some("fLaC + STREAMINFO"),
            Codec::Vorbis | Codec::Theora => Some("three Xiph-laced header packets"),
            Codec::Mpeg2Video => Some("sequence header"),
            Codec::Mpeg4Part2 => Some("VOS/VOL headers"),
            _ if self.pcm_sample_bytes().is_some() => Some("WAVE dwChannelMask, 4 bytes LE"),
            _ => None,
        }
    }

    /// Checks `data` against this codec's rule and the structural minimum of
    /// its format (spec table "Codec data"). `channels` is the stream's
    /// channel count (Opus needs a header above two channels).
    pub fn check_codec_data(self, data: &[u8], channels: u32) -> Result<(), ProtoError> {
        let bad = |reason| ProtoError::BadCodecData {
            codec: self.name(),
            reason,
        };
        match (self.codec_data_rule(), data.is_empty()) {
            (CodecDataRule::Required, true) => return Err(bad("required but empty")),
            (CodecDataRule::Forbidden, false) => return Err(bad("this codec takes none")),
            (_, true) => {
                if self == Codec::Opus && channels > 2 {
                    return Err(bad("OpusHead is required above two channels"));
                }
                return Ok(());
            }
            _ => {}
        }
        match self {
            // AVCDecoderConfigurationRecord: version 1, at least 7 bytes.
            Codec::H264 if data.len() < 7 || data[0] != 1 => {
                Err(bad("not an avcC record (version 1, >= 7 bytes)"))
            }
            // HEVCDecoderConfigurationRecord: version 1, at least 23 bytes.
            Codec::H265 if data.len() < 23 || data[0] != 1 => {
                Err(bad("not an hvcC record (version 1, >= 23 bytes)"))
            }
            // AV1CodecConfigurationRecord: marker 1 + version 1 = 0x81.
            Codec::Av1 if data.len() < 4 || data[0] != 0x81 => {
                Err(bad("not an av1C record (first byte 0x81, >= 4 bytes)"))
            }
            Codec::Opus if data.len() < 19 || &data[..8] != b"OpusHead" => {
                Err(bad("not an OpusHead (magic, >= 19 bytes)"))
            }
            Codec::Aac if data.len() < 2 => Err(bad("AudioSpecificConfig needs >= 2 bytes")),
            Codec::Flac if data.len() < 42 || &data[..4] != b"fLaC" => {
                Err(bad("not fLaC + STREAMINFO (>= 42 bytes)"))
            }
            Codec::Vorbis | Codec::Theora => check_xiph_lacing(data).map_err(bad),
            // A sequence header (start code 0x000001B3), >= 12 bytes.
            Codec::Mpeg2Video if data.len() < 12 || data[..4] != [0, 0, 1, 0xB3] => {
                Err(bad("not a sequence header (00 00 01 B3, >= 12 bytes)"))
            }
            // Visual object sequence / object / object layer headers: they
            // begin with a start code prefix.
            Codec::Mpeg4Part2 if data.len() < 4 || data[..3] != [0, 0, 1] => Err(bad(
                "not a VOS/VOL header (start code 00 00 01, >= 4 bytes)",
            )),
            // PCM: a WAVE_FORMAT_EXTENSIBLE dwChannelMask, one bit per channel.
            _ if self.pcm_sample_bytes().is_some() => {
                let mask = <[u8; 4]>::try_from(data)
                    .map_err(|_| bad("a channel mask is 4 bytes"))
                    .map(u32::from_le_bytes)?;
                if mask.count_ones() == channels {
                    Ok(())
                } else {
                    Err(bad("the channel mask has not one bit per channel"))
                }
            }
            _ => Ok(()),
        }
    }
}

/// Checks that `data` is three packets in Xiph lacing (as in Matroska's
/// CodecPrivate for Vorbis and Theora): a count byte of 2, two laced sizes,
/// and a third packet that takes the rest and is not empty.
fn check_xiph_lacing(data: &[u8]) -> Result<(), &'static str> {
    if data.first() != Some(&2) {
        return Err("Xiph lacing must hold exactly three header packets");
    }
    let mut pos = 1usize;
    let mut total = 0usize;
    for _ in 0..2 {
        let mut size = 0usize;
        loop {
            let byte = *data.get(pos).ok_or("truncated lacing")?;
            pos += 1;
            size += usize::from(byte);
            if byte != 255 {
                break;
            }
        }
        total += size;
    }
    match data.len().checked_sub(pos + total) {
        Some(rest) if rest > 0 => Ok(()),
        _ => Err("laced sizes exceed the data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for codec in Codec::ALL {
            assert_eq!(Codec::from_u32(codec.as_u32()), Ok(codec));
        }
        assert_eq!(Codec::from_u32(0), Err(ProtoError::UnknownCodec(0)));
        assert_eq!(Codec::from_u32(0x10E), Err(ProtoError::UnknownCodec(0x10E)));
    }

    #[test]
    fn codec_data_formats_follow_the_rules() {
        for codec in Codec::ALL {
            let forbidden = codec.codec_data_rule() == CodecDataRule::Forbidden;
            assert_eq!(codec.codec_data_format().is_none(), forbidden, "{codec}");
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(Codec::Vp9.kind(), MediaKind::Video);
        assert_eq!(Codec::Opus.kind(), MediaKind::Audio);
    }

    #[test]
    fn pcm_codec_data_is_a_channel_mask() {
        for codec in [
            Codec::PcmS16le,
            Codec::PcmS24le,
            Codec::PcmF32le,
            Codec::PcmU8,
        ] {
            assert!(
                codec.check_codec_data(&[], 6).is_ok(),
                "WAVE's default order"
            );
            assert!(codec.check_codec_data(&0x60Fu32.to_le_bytes(), 6).is_ok());
            assert!(codec.check_codec_data(&0x3Fu32.to_le_bytes(), 2).is_err());
            assert!(codec.check_codec_data(&[0x3F, 0, 0], 6).is_err());
        }
        assert_eq!(Codec::PcmS24le.pcm_sample_bytes(), Some(3));
        assert_eq!(Codec::Mp3.pcm_sample_bytes(), None);
    }

    #[test]
    fn codec_data_rules() {
        assert!(Codec::Vp8.check_codec_data(&[], 0).is_ok());
        assert!(Codec::Vp8.check_codec_data(&[1], 0).is_err());
        assert!(Codec::Vorbis.check_codec_data(&[], 2).is_err());
        assert!(Codec::Opus.check_codec_data(&[], 2).is_ok());
        assert!(Codec::Opus.check_codec_data(&[], 6).is_err());
        let mut head = b"OpusHead".to_vec();
        head.resize(19, 0);
        assert!(Codec::Opus.check_codec_data(&head, 6).is_ok());
        assert!(
            Codec::H264
                .check_codec_data(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0], 0)
                .is_ok()
        );
        assert!(
            Codec::H264
                .check_codec_data(&[0, 0, 0, 1, 0x67, 0, 0], 0)
                .is_err()
        );
        assert!(Codec::Av1.check_codec_data(&[0x81, 0, 0, 0], 0).is_ok());
        assert!(Codec::Ac3.check_codec_data(&[], 6).is_ok());
        assert!(Codec::Ac3.check_codec_data(&[0x0B, 0x77], 6).is_err());
        let mut seq = vec![0, 0, 1, 0xB3];
        seq.resize(12, 0);
        assert!(Codec::Mpeg2Video.check_codec_data(&seq, 0).is_ok());
        assert!(Codec::Mpeg2Video.check_codec_data(&seq[..8], 0).is_err());
        assert!(
            Codec::Mpeg4Part2
                .check_codec_data(&[0, 0, 1, 0xB0], 0)
                .is_ok()
        );
        assert!(
            Codec::Mpeg4Part2
                .check_codec_data(&[1, 2, 3, 4], 0)
                .is_err()
        );
    }

    #[test]
    fn xiph_lacing() {
        // Packet sizes 30 and 300 (255 + 45), then a 10-byte third packet.
        let mut data = vec![2, 30, 255, 45];
        data.resize(4 + 30 + 300 + 10, 0);
        assert!(Codec::Vorbis.check_codec_data(&data, 2).is_ok());
        data.truncate(4 + 30 + 300);
        assert!(Codec::Vorbis.check_codec_data(&data, 2).is_err());
        assert!(Codec::Theora.check_codec_data(&[2, 255], 0).is_err());
        assert!(
            Codec::Theora
                .check_codec_data(&[3, 1, 1, 1, 1, 1], 0)
                .is_err()
        );
    }
}

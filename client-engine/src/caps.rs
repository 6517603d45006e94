//! GStreamer caps for a stream, built from its codec, format fields and
//! codec data (spec 7.18), so that `decodebin` can pick parser and decoder
//! without typefinding: avcC/hvcC select the packetised forms, their absence
//! Annex-B; OpusHead, Xiph-laced Vorbis/Theora headers and FLAC's STREAMINFO
//! become stream headers; an AudioSpecificConfig selects raw AAC, its
//! absence ADTS.

use gstreamer as gst;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::wire::CreateStream;

use crate::EngineError;

/// What the stream's `appsrc` announces, and what it pushes first.
#[derive(Debug, Clone)]
pub struct StreamCaps {
    /// The caps of the compressed stream.
    pub caps: gst::Caps,
    /// In-band configuration to push before the first sample (FLAC's
    /// `fLaC` + STREAMINFO), if any.
    pub prefix: Option<gst::Buffer>,
}

/// The caps of `codec` without any format detail: what the registry check
/// of [`crate::registry`] asks decoders about.
pub fn codec_caps(codec: Codec) -> gst::Caps {
    match codec {
        Codec::H264 => gst::Caps::builder("video/x-h264").build(),
        Codec::H265 => gst::Caps::builder("video/x-h265").build(),
        Codec::Vp8 => gst::Caps::builder("video/x-vp8").build(),
        Codec::Vp9 => gst::Caps::builder("video/x-vp9").build(),
        Codec::Av1 => gst::Caps::builder("video/x-av1").build(),
        Codec::Mjpeg => gst::Caps::builder("image/jpeg").build(),
        Codec::Theora => gst::Caps::builder("video/x-theora").build(),
        Codec::Opus => gst::Caps::builder("audio/x-opus").build(),
        Codec::Vorbis => gst::Caps::builder("audio/x-vorbis").build(),
        Codec::Aac => gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .build(),
        Codec::Mp3 => gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 1i32)
            .field("layer", 3i32)
            .build(),
        Codec::Flac => gst::Caps::builder("audio/x-flac").build(),
        Codec::PcmS16le | Codec::PcmS24le | Codec::PcmS32le | Codec::PcmF32le | Codec::PcmU8 => {
            gst::Caps::builder("audio/x-raw")
                .field("format", pcm_format(codec))
                .field("layout", "interleaved")
                .build()
        }
        Codec::Mpeg2Video => gst::Caps::builder("video/mpeg")
            .field("mpegversion", 2i32)
            .field("systemstream", false)
            .build(),
        Codec::Mpeg4Part2 => gst::Caps::builder("video/mpeg")
            .field("mpegversion", 4i32)
            .field("systemstream", false)
            .build(),
        Codec::Ac3 => gst::Caps::builder("audio/x-ac3").build(),
        Codec::Eac3 => gst::Caps::builder("audio/x-eac3").build(),
        Codec::Mp2 => gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 1i32)
            .field("layer", 2i32)
            .build(),
    }
}

/// GStreamer's sample format of a PCM codec (what wavparse gives).
fn pcm_format(codec: Codec) -> &'static str {
    match codec {
        Codec::PcmU8 => "U8",
        Codec::PcmS24le => "S24LE",
        Codec::PcmS32le => "S32LE",
        Codec::PcmF32le => "F32LE",
        _ => "S16LE",
    }
}

/// GStreamer's channel position of each bit of a WAVE dwChannelMask, in
/// bit order (WAVEFORMATEXTENSIBLE: FL, FR, FC, LFE, BL, BR, FLC, FRC, BC,
/// SL, SR, TC, TFL, TFC, TFR, TBL, TBC, TBR), as GStreamer's RIFF library
/// maps them for wavparse. From bit 9 on GStreamer's own bit order differs
/// (its bit 9 is a second LFE), so the mask cannot be taken as it is.
const WAVE_POSITIONS: [gstreamer_audio::AudioChannelPosition; 18] = {
    use gstreamer_audio::AudioChannelPosition as P;
    [
        P::FrontLeft,
        P::FrontRight,
        P::FrontCenter,
        P::Lfe1,
        P::RearLeft,
        P::RearRight,
        P::FrontLeftOfCenter,
        P::FrontRightOfCenter,
        P::RearCenter,
        P::SideLeft,
        P::SideRight,
        P::TopCenter,
        P::TopFrontLeft,
        P::TopFrontCenter,
        P::TopFrontRight,
        P::TopRearLeft,
        P::TopRearCenter,
        P::TopRearRight,
    ]
};

/// GStreamer's channel mask of a WAVE dwChannelMask, if it names exactly
/// `channels` positions GStreamer knows.
fn gst_channel_mask(wave: u32, channels: i32) -> Option<u64> {
    let positions: Vec<_> = WAVE_POSITIONS
        .iter()
        .enumerate()
        .filter(|(bit, _)| wave & (1 << bit) != 0)
        .map(|(_, p)| *p)
        .collect();
    if wave >> WAVE_POSITIONS.len() != 0 || i32::try_from(positions.len()).ok()? != channels {
        return None;
    }
    gstreamer_audio::AudioChannelPosition::positions_to_mask(&positions, false).ok()
}

/// The caps of raw PCM: above two channels with the stream's channel mask
/// (its codec data, a WAVE dwChannelMask, mapped to GStreamer's positions
/// as wavparse maps it) or else GStreamer's default mask for the count
/// (WAVE's default order, which the spec gives PCM streams), without which
/// `audio/x-raw` does not negotiate.
fn pcm_caps(codec: Codec, rate: i32, channels: i32, mask: &[u8]) -> Result<gst::Caps, EngineError> {
    let b = gst::Caps::builder("audio/x-raw")
        .field("format", pcm_format(codec))
        .field("layout", "interleaved")
        .field("rate", rate)
        .field("channels", channels);
    // A mask that does not name `channels` positions is ignored, as
    // wavparse ignores it (the default layout for the count follows). A
    // mono or stereo file may name its positions too (mono as front
    // centre).
    if let Some(mask) = <[u8; 4]>::try_from(mask)
        .ok()
        .and_then(|wave| gst_channel_mask(u32::from_le_bytes(wave), channels))
    {
        return Ok(b.field("channel-mask", gst::Bitmask::new(mask)).build());
    }
    if channels <= 2 {
        return Ok(b.build());
    }
    let mask = gstreamer_audio::AudioChannelPosition::fallback_mask(channels as u32);
    if mask == 0 {
        return Err(EngineError::InvalidFormat(format!(
            "PCM with {channels} channels has no default channel layout"
        )));
    }
    Ok(b.field("channel-mask", gst::Bitmask::new(mask)).build())
}

fn int(v: u32) -> Option<i32> {
    i32::try_from(v).ok().filter(|v| *v > 0)
}

fn header_buffer(bytes: &[u8]) -> gst::Buffer {
    let mut b = gst::Buffer::from_slice(bytes.to_vec());
    b.get_mut()
        .expect("new buffer is writable")
        .set_flags(gst::BufferFlags::HEADER);
    b
}

fn stream_header(packets: &[&[u8]]) -> gst::Array {
    gst::Array::new(packets.iter().map(|p| header_buffer(p)))
}

/// Splits Xiph-laced headers (Matroska's CodecPrivate for Vorbis/Theora):
/// a count byte (packets - 1), then the lacing of every packet but the last.
pub fn xiph_unlace(data: &[u8]) -> Result<Vec<&[u8]>, EngineError> {
    let bad = |why: &str| EngineError::InvalidFormat(format!("Xiph-laced headers: {why}"));
    let (&count, mut rest) = data.split_first().ok_or_else(|| bad("empty"))?;
    let n = usize::from(count) + 1;
    let mut sizes = Vec::with_capacity(n);
    for _ in 0..n - 1 {
        let mut size = 0usize;
        loop {
            let (&b, r) = rest.split_first().ok_or_else(|| bad("truncated lacing"))?;
            rest = r;
            size += usize::from(b);
            if b != 255 {
                break;
            }
        }
        sizes.push(size);
    }
    let mut packets = Vec::with_capacity(n);
    for size in sizes {
        if size > rest.len() {
            return Err(bad("packet larger than data"));
        }
        let (p, r) = rest.split_at(size);
        packets.push(p);
        rest = r;
    }
    packets.push(rest);
    if packets.iter().any(|p| p.is_empty()) {
        return Err(bad("empty packet"));
    }
    Ok(packets)
}

/// An empty OpusTags packet (vendor "", no comments): Opus stream headers
/// are a pair (OpusHead, OpusTags).
fn opus_tags() -> Vec<u8> {
    let mut t = b"OpusTags".to_vec();
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}

fn opus_caps(cs: &CreateStream) -> Result<gst::Caps, EngineError> {
    let d = &cs.codec_data;
    if d.is_empty() {
        let channels = int(cs.channels).unwrap_or(2);
        if channels > 2 {
            return Err(EngineError::InvalidFormat(
                "Opus with more than 2 channels needs an OpusHead".into(),
            ));
        }
        return Ok(gst::Caps::builder("audio/x-opus")
            .field("channel-mapping-family", 0i32)
            .field("channels", channels)
            .field("rate", int(cs.sample_rate).unwrap_or(48000))
            .build());
    }
    if d.len() < 19 || &d[..8] != b"OpusHead" {
        return Err(EngineError::InvalidFormat(
            "codec data is not an OpusHead".into(),
        ));
    }
    let channels = i32::from(d[9]);
    let rate = u32::from_le_bytes([d[12], d[13], d[14], d[15]]);
    let family = i32::from(d[18]);
    let tags = opus_tags();
    Ok(gst::Caps::builder("audio/x-opus")
        .field("channel-mapping-family", family)
        .field("channels", channels)
        .field("rate", int(rate).unwrap_or(48000))
        .field("streamheader", stream_header(&[d, &tags]))
        .build())
}

/// The caps (and in-band prefix) of a stream.
///
/// # Errors
/// [`EngineError::InvalidFormat`] when the codec data is malformed for its
/// codec.
pub fn stream_caps(cs: &CreateStream) -> Result<StreamCaps, EngineError> {
    let d = &cs.codec_data;
    let mut prefix = None;
    let caps = match cs.codec {
        Codec::H264 | Codec::H265 => {
            let (name, packetised) = if cs.codec == Codec::H264 {
                ("video/x-h264", "avc")
            } else {
                ("video/x-h265", "hvc1")
            };
            let b = gst::Caps::builder(name);
            if d.is_empty() {
                b.field("stream-format", "byte-stream").build()
            } else if d[0] == 1 {
                b.field("stream-format", packetised)
                    .field("alignment", "au")
                    .field("codec_data", gst::Buffer::from_slice(d.clone()))
                    .build()
            } else {
                return Err(EngineError::InvalidFormat(format!(
                    "{} codec data is not an avcC/hvcC record",
                    cs.codec.name()
                )));
            }
        }
        Codec::Vp8 | Codec::Vp9 | Codec::Mjpeg => {
            let mut b = gst::Caps::builder(codec_caps(cs.codec).structure(0).unwrap().name());
            if let (Some(w), Some(h)) = (int(cs.width), int(cs.height)) {
                b = b.field("width", w).field("height", h);
            }
            b.build()
        }
        Codec::Av1 => {
            let b = gst::Caps::builder("video/x-av1")
                .field("stream-format", "obu-stream")
                .field("alignment", "tu");
            if d.is_empty() {
                b.build()
            } else {
                b.field("codec_data", gst::Buffer::from_slice(d.clone()))
                    .build()
            }
        }
        Codec::Theora | Codec::Vorbis => {
            let packets = xiph_unlace(d)?;
            if packets.len() != 3 {
                return Err(EngineError::InvalidFormat(format!(
                    "{} needs 3 header packets, got {}",
                    cs.codec.name(),
                    packets.len()
                )));
            }
            let name = if cs.codec == Codec::Theora {
                "video/x-theora"
            } else {
                "audio/x-vorbis"
            };
            gst::Caps::builder(name)
                .field("streamheader", stream_header(&packets))
                .build()
        }
        Codec::Opus => opus_caps(cs)?,
        Codec::Aac => {
            let b = gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("framed", true);
            let b = if d.is_empty() {
                b.field("stream-format", "adts")
            } else {
                b.field("stream-format", "raw")
                    .field("codec_data", gst::Buffer::from_slice(d.clone()))
            };
            let b = match (int(cs.sample_rate), int(cs.channels)) {
                (Some(r), Some(c)) => b.field("rate", r).field("channels", c),
                _ => b,
            };
            b.build()
        }
        Codec::Mp3 => gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 1i32)
            .field("layer", 3i32)
            .build(),
        Codec::Flac => {
            if !d.is_empty() {
                if d.len() < 4 + 4 + 34 || &d[..4] != b"fLaC" {
                    return Err(EngineError::InvalidFormat(
                        "FLAC codec data is not fLaC + STREAMINFO".into(),
                    ));
                }
                prefix = Some(header_buffer(d));
            }
            gst::Caps::builder("audio/x-flac").build()
        }
        Codec::PcmS16le | Codec::PcmS24le | Codec::PcmS32le | Codec::PcmF32le | Codec::PcmU8 => {
            let (Some(rate), Some(channels)) = (int(cs.sample_rate), int(cs.channels)) else {
                return Err(EngineError::InvalidFormat(
                    "PCM needs sample rate and channels".into(),
                ));
            };
            pcm_caps(cs.codec, rate, channels, d)?
        }
        Codec::Mpeg2Video | Codec::Mpeg4Part2 => {
            let mut b = gst::Caps::builder("video/mpeg")
                .field(
                    "mpegversion",
                    if cs.codec == Codec::Mpeg2Video {
                        2i32
                    } else {
                        4
                    },
                )
                .field("systemstream", false);
            if let (Some(w), Some(h)) = (int(cs.width), int(cs.height)) {
                b = b.field("width", w).field("height", h);
            }
            if !d.is_empty() {
                b = b.field("codec_data", gst::Buffer::from_slice(d.clone()));
            }
            b.build()
        }
        Codec::Ac3 | Codec::Eac3 | Codec::Mp2 => codec_caps(cs.codec),
    };
    Ok(StreamCaps { caps, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wave_channel_masks_become_gstreamer_positions() {
        use gstreamer_audio::AudioChannelPosition as P;
        gst::init().unwrap();
        let mask = |p: &[P]| P::positions_to_mask(p, false).unwrap();
        // 5.1 (back): the same bits in both orders.
        let back = [
            P::FrontLeft,
            P::FrontRight,
            P::FrontCenter,
            P::Lfe1,
            P::RearLeft,
            P::RearRight,
        ];
        assert_eq!(gst_channel_mask(0x3f, 6), Some(mask(&back)));
        // 5.1 (side): WAVE bits 9 and 10 are the sides, GStreamer's bit 9
        // is a second LFE.
        let side = [
            P::FrontLeft,
            P::FrontRight,
            P::FrontCenter,
            P::Lfe1,
            P::SideLeft,
            P::SideRight,
        ];
        assert_eq!(gst_channel_mask(0x60f, 6), Some(mask(&side)));
        assert_ne!(gst_channel_mask(0x60f, 6), Some(0x60f));
        // A mask that does not name the channel count is not used.
        assert_eq!(gst_channel_mask(0x3f, 8), None);
        assert_eq!(gst_channel_mask(0x8000_0003, 3), None);
    }
    use mediaredir_proto::control::StreamFormat;

    fn cs(codec: Codec, codec_data: Vec<u8>) -> CreateStream {
        let format = StreamFormat {
            codec_data,
            ..StreamFormat::audio(codec, 0, 48000, 2)
        };
        CreateStream::from_format(1, 1, &format)
    }

    #[test]
    fn h264_forms() {
        gst::init().unwrap();
        let c = stream_caps(&cs(Codec::H264, vec![])).unwrap().caps;
        assert_eq!(
            c.structure(0)
                .unwrap()
                .get::<&str>("stream-format")
                .unwrap(),
            "byte-stream"
        );
        let c = stream_caps(&cs(Codec::H264, vec![1, 0x64, 0, 0x1f]))
            .unwrap()
            .caps;
        let s = c.structure(0).unwrap();
        assert_eq!(s.get::<&str>("stream-format").unwrap(), "avc");
        assert!(s.has_field("codec_data"));
        assert!(stream_caps(&cs(Codec::H264, vec![0, 0, 0, 1])).is_err());
    }

    #[test]
    fn multichannel_pcm_has_a_channel_mask() {
        gst::init().unwrap();
        let mut c = cs(Codec::PcmS16le, vec![]);
        assert!(
            !stream_caps(&c)
                .unwrap()
                .caps
                .structure(0)
                .unwrap()
                .has_field("channel-mask")
        );
        c.channels = 6;
        let caps = stream_caps(&c).unwrap().caps;
        let mask = caps
            .structure(0)
            .unwrap()
            .get::<gst::Bitmask>("channel-mask");
        // FL FR FC LFE RL RR.
        assert_eq!(mask.unwrap().0, 0x3f);
    }

    #[test]
    fn pcm_forms_and_the_stream_channel_mask() {
        gst::init().unwrap();
        for (codec, format) in [
            (Codec::PcmU8, "U8"),
            (Codec::PcmS24le, "S24LE"),
            (Codec::PcmS32le, "S32LE"),
            (Codec::PcmF32le, "F32LE"),
        ] {
            // 5.1 with side surrounds, as a WAVE_FORMAT_EXTENSIBLE file says.
            let mut c = cs(codec, 0x60Fu32.to_le_bytes().to_vec());
            c.channels = 6;
            let caps = stream_caps(&c).unwrap().caps;
            let s = caps.structure(0).unwrap();
            assert_eq!(s.get::<&str>("format").unwrap(), format);
            // GStreamer's side left/right are its bits 10 and 11.
            assert_eq!(s.get::<gst::Bitmask>("channel-mask").unwrap().0, 0xC0F);
        }
    }

    #[test]
    fn xiph_lacing() {
        let mut d = vec![2u8, 255, 45, 3];
        d.extend(std::iter::repeat_n(1u8, 300));
        d.extend([2u8; 3]);
        d.extend([3u8; 5]);
        let p = xiph_unlace(&d).unwrap();
        assert_eq!(p.iter().map(|p| p.len()).collect::<Vec<_>>(), [300, 3, 5]);
        assert!(xiph_unlace(&[2, 10, 1]).is_err());
        assert!(xiph_unlace(&[]).is_err());
    }

    #[test]
    fn opus_head_and_aac() {
        gst::init().unwrap();
        let mut head = b"OpusHead".to_vec();
        head.extend([1, 2, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        let c = stream_caps(&cs(Codec::Opus, head)).unwrap().caps;
        let s = c.structure(0).unwrap();
        assert_eq!(s.get::<i32>("channels").unwrap(), 2);
        assert!(s.has_field("streamheader"));
        assert!(stream_caps(&cs(Codec::Opus, b"junk".to_vec())).is_err());
        let c = stream_caps(&cs(Codec::Aac, vec![])).unwrap().caps;
        assert_eq!(
            c.structure(0)
                .unwrap()
                .get::<&str>("stream-format")
                .unwrap(),
            "adts"
        );
        let c = stream_caps(&cs(Codec::Aac, vec![0x12, 0x10])).unwrap().caps;
        assert_eq!(
            c.structure(0)
                .unwrap()
                .get::<&str>("stream-format")
                .unwrap(),
            "raw"
        );
    }
}

//! GStreamer caps for a stream, built from its codec, format fields and
//! codec data (spec 7.18), so that `decodebin` can pick parser and decoder
//! without typefinding: avcC/hvcC select the packetised forms, their absence
//! Annex-B; OpusHead, Xiph-laced Vorbis/Theora headers and FLAC's STREAMINFO
//! become stream headers; an AudioSpecificConfig selects raw AAC, its
//! absence ADTS. Each codec's media type (and a PCM stream's channel mask)
//! comes from `mediaredir-gst-caps`, the mapping the guest's GStreamer
//! plugin reads stream formats with.

use gstreamer as gst;
use mediaredir_gst_caps::{codec_structure, gst_channel_mask};
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
    codec_structure(codec).into()
}

/// Adds raw PCM's rate and channels to `s`: above two channels with the
/// stream's channel mask (its codec data, a WAVE dwChannelMask, mapped to
/// GStreamer's positions as wavparse maps it) or else GStreamer's default
/// mask for the count (WAVE's default order, which the spec gives PCM
/// streams), without which `audio/x-raw` does not negotiate.
fn set_pcm_layout(
    s: &mut gst::Structure,
    rate: i32,
    channels: i32,
    mask: &[u8],
) -> Result<(), EngineError> {
    s.set("rate", rate);
    s.set("channels", channels);
    // A mask that does not name `channels` positions is ignored, as
    // wavparse ignores it (the default layout for the count follows). A
    // mono or stereo file may name its positions too (mono as front
    // centre).
    if let Some(mask) = <[u8; 4]>::try_from(mask)
        .ok()
        .and_then(|wave| gst_channel_mask(u32::from_le_bytes(wave), channels))
    {
        s.set("channel-mask", gst::Bitmask::new(mask));
        return Ok(());
    }
    if channels <= 2 {
        return Ok(());
    }
    let mask = gstreamer_audio::AudioChannelPosition::fallback_mask(channels as u32);
    if mask == 0 {
        return Err(EngineError::InvalidFormat(format!(
            "PCM with {channels} channels has no default channel layout"
        )));
    }
    s.set("channel-mask", gst::Bitmask::new(mask));
    Ok(())
}

fn int(v: u32) -> Option<i32> {
    i32::try_from(v).ok().filter(|v| *v > 0)
}

/// Adds the stream's picture size to `s`, if it has one.
fn set_size(s: &mut gst::Structure, cs: &CreateStream) {
    if let (Some(w), Some(h)) = (int(cs.media.width), int(cs.media.height)) {
        s.set("width", w);
        s.set("height", h);
    }
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

/// Adds Opus's channel mapping, channels and rate to `s`: from the
/// OpusHead in the codec data, or else the stream's fields (mapping family
/// 0, so at most two channels).
fn set_opus_format(s: &mut gst::Structure, cs: &CreateStream) -> Result<(), EngineError> {
    let d = &cs.codec_data;
    if d.is_empty() {
        let channels = int(cs.media.channels).unwrap_or(2);
        if channels > 2 {
            return Err(EngineError::InvalidFormat(
                "Opus with more than 2 channels needs an OpusHead".into(),
            ));
        }
        s.set("channel-mapping-family", 0i32);
        s.set("channels", channels);
        s.set("rate", int(cs.media.sample_rate).unwrap_or(48000));
        return Ok(());
    }
    if d.len() < 19 || &d[..8] != b"OpusHead" {
        return Err(EngineError::InvalidFormat(
            "codec data is not an OpusHead".into(),
        ));
    }
    let rate = u32::from_le_bytes([d[12], d[13], d[14], d[15]]);
    s.set("channel-mapping-family", i32::from(d[18]));
    s.set("channels", i32::from(d[9]));
    s.set("rate", int(rate).unwrap_or(48000));
    s.set("streamheader", stream_header(&[d, &opus_tags()]));
    Ok(())
}

/// The caps (and in-band prefix) of a stream: its codec's structure
/// ([`codec_caps`]) with the stream's format and codec data.
///
/// # Errors
/// [`EngineError::InvalidFormat`] when the codec data is malformed for its
/// codec.
pub fn stream_caps(cs: &CreateStream) -> Result<StreamCaps, EngineError> {
    let d = &cs.codec_data;
    let mut prefix = None;
    let mut s = codec_structure(cs.codec);
    match cs.codec {
        Codec::H264 | Codec::H265 => {
            let packetised = if cs.codec == Codec::H264 {
                "avc"
            } else {
                "hvc1"
            };
            if d.is_empty() {
                s.set("stream-format", "byte-stream");
            } else if d[0] == 1 {
                s.set("stream-format", packetised);
                s.set("alignment", "au");
                s.set("codec_data", gst::Buffer::from_slice(d.clone()));
            } else {
                return Err(EngineError::InvalidFormat(format!(
                    "{} codec data is not an avcC/hvcC record",
                    cs.codec.name()
                )));
            }
        }
        Codec::Vp8 | Codec::Vp9 | Codec::Mjpeg => set_size(&mut s, cs),
        Codec::Av1 => {
            s.set("stream-format", "obu-stream");
            s.set("alignment", "tu");
            if !d.is_empty() {
                s.set("codec_data", gst::Buffer::from_slice(d.clone()));
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
            s.set("streamheader", stream_header(&packets));
        }
        Codec::Opus => set_opus_format(&mut s, cs)?,
        Codec::Aac => {
            s.set("framed", true);
            if d.is_empty() {
                s.set("stream-format", "adts");
            } else {
                s.set("stream-format", "raw");
                s.set("codec_data", gst::Buffer::from_slice(d.clone()));
            }
            if let (Some(r), Some(c)) = (int(cs.media.sample_rate), int(cs.media.channels)) {
                s.set("rate", r);
                s.set("channels", c);
            }
        }
        Codec::Flac => {
            if !d.is_empty() {
                if d.len() < 4 + 4 + 34 || &d[..4] != b"fLaC" {
                    return Err(EngineError::InvalidFormat(
                        "FLAC codec data is not fLaC + STREAMINFO".into(),
                    ));
                }
                prefix = Some(header_buffer(d));
            }
        }
        Codec::PcmS16le | Codec::PcmS24le | Codec::PcmS32le | Codec::PcmF32le | Codec::PcmU8 => {
            let (Some(rate), Some(channels)) = (int(cs.media.sample_rate), int(cs.media.channels))
            else {
                return Err(EngineError::InvalidFormat(
                    "PCM needs sample rate and channels".into(),
                ));
            };
            set_pcm_layout(&mut s, rate, channels, d)?;
        }
        Codec::Mpeg2Video | Codec::Mpeg4Part2 => {
            set_size(&mut s, cs);
            if !d.is_empty() {
                s.set("codec_data", gst::Buffer::from_slice(d.clone()));
            }
        }
        Codec::Mp3 | Codec::Ac3 | Codec::Eac3 | Codec::Mp2 => {}
    }
    Ok(StreamCaps {
        caps: s.into(),
        prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        c.media.channels = 6;
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
            c.media.channels = 6;
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

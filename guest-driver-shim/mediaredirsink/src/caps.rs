//! GStreamer caps <-> the device's codecs and stream formats.
//!
//! The inverse of the client engine's mapping (`client-engine/src/caps.rs`,
//! which builds caps from a `STREAM_CREATE`): here caps become a
//! [`StreamFormat`], with the codec data in the form the wire protocol
//! wants (spec, "Codecs and bitstream formats"): avcC/hvcC for packetised
//! H.264/H.265 (none for Annex-B), OpusHead, Xiph-laced Vorbis headers,
//! `fLaC` + STREAMINFO, an AudioSpecificConfig for raw AAC (none for ADTS),
//! the parser's sequence header (MPEG-2 video); AC-3, E-AC-3 and MP2 have
//! none. Each codec's media type and the mapping of PCM channel masks to
//! WAVE's are `mediaredir-gst-caps`', shared with the engine.
//! Kept in this crate so the rest of the guest side needs no GStreamer.

use gstreamer as gst;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::{Direction, MediaParams, StreamFormat};

/// The codecs the sink can carry, in the order of its template caps.
pub const CODECS: [Codec; 20] = [
    Codec::H264,
    Codec::H265,
    Codec::Vp8,
    Codec::Vp9,
    Codec::Av1,
    Codec::Opus,
    Codec::Vorbis,
    Codec::Aac,
    Codec::Flac,
    Codec::Mp3,
    Codec::Mpeg2Video,
    Codec::Mpeg4Part2,
    Codec::Ac3,
    Codec::Eac3,
    Codec::Mp2,
    Codec::PcmS16le,
    Codec::PcmS24le,
    Codec::PcmS32le,
    Codec::PcmF32le,
    Codec::PcmU8,
];

/// The caps structure the sink accepts for `codec`, if it carries it: the
/// codec's structure (`mediaredir-gst-caps`, as the client engine builds
/// its caps) with the forms the sink takes (stream formats, a parser's
/// framing).
pub fn codec_structure(codec: Codec) -> Option<gst::Structure> {
    let mut s = mediaredir_gst_caps::codec_structure(codec);
    match codec {
        Codec::H264 => {
            s.set("stream-format", gst::List::new(["avc", "byte-stream"]));
            s.set("alignment", "au");
        }
        Codec::H265 => {
            s.set("stream-format", gst::List::new(["hvc1", "byte-stream"]));
            s.set("alignment", "au");
        }
        Codec::Vp8 | Codec::Vp9 | Codec::Opus | Codec::Vorbis => {}
        Codec::Av1 => {
            s.set("stream-format", "obu-stream");
            s.set("alignment", "tu");
        }
        // framed: aacparse's output (a demuxer's ADTS caps, as tsdemux
        // gives them, lack the rate and channel count).
        Codec::Aac => {
            s.set("framed", true);
            s.set("stream-format", gst::List::new(["raw", "adts"]));
        }
        Codec::Flac | Codec::Ac3 | Codec::Eac3 => s.set("framed", true),
        Codec::Mp3 | Codec::Mp2 | Codec::Mpeg4Part2 => s.set("parsed", true),
        // MPEG-1 video is the subset of MPEG-2 it is (spec 7.18).
        Codec::Mpeg2Video => {
            s.set("mpegversion", gst::IntRange::new(1i32, 2));
            s.set("parsed", true);
        }
        // Raw PCM (a WAV file's): redirected as it is, to the client's
        // sound card rather than the guest's.
        Codec::PcmS16le | Codec::PcmS24le | Codec::PcmS32le | Codec::PcmF32le | Codec::PcmU8 => {}
        Codec::Mjpeg | Codec::Theora => return None,
    }
    Some(s)
}

/// DivX 4 and 5 (what avidemux calls the MPEG-4 Part 2 of a DIVX or DX50
/// AVI file): MPEG-4 Part 2 under another name.
fn divx_structure() -> gst::Structure {
    gst::Structure::builder("video/x-divx")
        .field("divxversion", gst::IntRange::new(4i32, 5))
        .build()
}

/// Caps of the given codecs (those the sink carries), in template order.
pub fn caps_for(codecs: &[Codec]) -> gst::Caps {
    let mut caps = gst::Caps::new_empty();
    {
        let caps = caps.get_mut().expect("new caps are writable");
        for codec in CODECS.iter().filter(|c| codecs.contains(c)) {
            if let Some(s) = codec_structure(*codec) {
                caps.append_structure(s);
            }
            if *codec == Codec::Mpeg4Part2 {
                caps.append_structure(divx_structure());
            }
        }
    }
    caps
}

/// The sink's template caps: every codec it carries.
pub fn template_caps() -> gst::Caps {
    caps_for(&CODECS)
}

/// The codec of a caps structure, if the sink carries it.
pub fn codec_of(s: &gst::StructureRef) -> Option<Codec> {
    if s.name() == "video/x-divx" {
        return s
            .can_intersect(&divx_structure())
            .then_some(Codec::Mpeg4Part2);
    }
    CODECS
        .iter()
        .copied()
        .find(|c| codec_structure(*c).is_some_and(|t| s.name() == t.name() && s.can_intersect(&t)))
}

/// Why caps cannot become a stream format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn positive(s: &gst::StructureRef, field: &str) -> u32 {
    s.get::<i32>(field)
        .ok()
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0)
}

fn buffer_bytes(buffer: &gst::BufferRef) -> Result<Vec<u8>, FormatError> {
    let map = buffer
        .map_readable()
        .map_err(|_| FormatError("unreadable codec data".into()))?;
    Ok(map.as_slice().to_vec())
}

fn codec_data(s: &gst::StructureRef) -> Result<Vec<u8>, FormatError> {
    match s.get::<gst::Buffer>("codec_data") {
        Ok(b) => buffer_bytes(&b),
        Err(_) => Ok(Vec::new()),
    }
}

fn stream_headers(s: &gst::StructureRef) -> Result<Vec<Vec<u8>>, FormatError> {
    let Ok(array) = s.get::<gst::Array>("streamheader") else {
        return Ok(Vec::new());
    };
    array
        .iter()
        .map(|v| {
            let b = v
                .get::<gst::Buffer>()
                .map_err(|_| FormatError("a streamheader is not a buffer".into()))?;
            buffer_bytes(&b)
        })
        .collect()
}

/// Xiph lacing (Matroska's CodecPrivate): packet count - 1, then the laced
/// size of every packet but the last, then the packets.
pub fn xiph_lace(packets: &[Vec<u8>]) -> Result<Vec<u8>, FormatError> {
    let count = u8::try_from(packets.len().saturating_sub(1))
        .map_err(|_| FormatError("too many header packets".into()))?;
    let mut out = vec![count];
    if let Some((_, laced)) = packets.split_last() {
        for p in laced {
            let mut n = p.len();
            while n >= 255 {
                out.push(255);
                n -= 255;
            }
            // Less than 255 after the loop.
            out.push(u8::try_from(n).unwrap_or(254));
        }
    }
    for p in packets {
        out.extend_from_slice(p);
    }
    Ok(out)
}

/// The codec data of `codec` from the caps structure `s`.
fn wire_codec_data(codec: Codec, s: &gst::StructureRef) -> Result<Vec<u8>, FormatError> {
    let format = s.get::<&str>("stream-format").unwrap_or("");
    match codec {
        Codec::H264 | Codec::H265 => {
            if format == "byte-stream" {
                Ok(Vec::new())
            } else {
                let d = codec_data(s)?;
                if d.is_empty() {
                    return Err(FormatError(format!(
                        "{codec} stream-format={format} without codec_data"
                    )));
                }
                Ok(d)
            }
        }
        Codec::Av1 | Codec::Mpeg2Video | Codec::Mpeg4Part2 => codec_data(s),
        Codec::Aac => {
            if format == "adts" {
                Ok(Vec::new())
            } else {
                codec_data(s)
            }
        }
        Codec::Opus => {
            let headers = stream_headers(s)?;
            Ok(headers
                .into_iter()
                .find(|h| h.starts_with(b"OpusHead"))
                .unwrap_or_default())
        }
        Codec::Vorbis => {
            let headers = stream_headers(s)?;
            if headers.len() != 3 {
                return Err(FormatError(format!(
                    "vorbis needs 3 stream headers, caps have {}",
                    headers.len()
                )));
            }
            xiph_lace(&headers)
        }
        Codec::Flac => flac_codec_data(&stream_headers(s)?),
        Codec::PcmS16le | Codec::PcmS24le | Codec::PcmS32le | Codec::PcmF32le | Codec::PcmU8 => {
            match s.get::<gst::Bitmask>("channel-mask") {
                Ok(mask) if mask.0 != 0 => mediaredir_gst_caps::wave_channel_mask(mask.0)
                    .map(|m| m.to_le_bytes().to_vec())
                    .ok_or_else(|| {
                        FormatError(format!("channel positions {:#x} not in WAVE", mask.0))
                    }),
                _ => Ok(Vec::new()),
            }
        }
        _ => Ok(Vec::new()),
    }
}

/// FLAC's codec data (spec 7.18): `fLaC` and the STREAMINFO block, flagged
/// as the last metadata block, from flacparse's stream headers: for a
/// native FLAC file `fLaC`, STREAMINFO and the other blocks, each a buffer;
/// for Ogg FLAC one mapping header (0x7f "FLAC", version, header count)
/// holding `fLaC` and STREAMINFO, not flagged last since the comment
/// follows. Sent without that flag the client's parser takes the first
/// frame for another metadata block and finds no frame.
pub fn flac_codec_data(headers: &[Vec<u8>]) -> Result<Vec<u8>, FormatError> {
    const STREAMINFO: usize = 34;
    let all = headers.concat();
    let start = all
        .windows(4)
        .position(|w| w == b"fLaC")
        .ok_or_else(|| FormatError("flac streamheader without fLaC".into()))?;
    let block = all
        .get(start + 4..start + 8 + STREAMINFO)
        .ok_or_else(|| FormatError("flac streamheader without STREAMINFO".into()))?;
    let len = usize::from(block[1]) << 16 | usize::from(block[2]) << 8 | usize::from(block[3]);
    if block[0] & 0x7f != 0 || len != STREAMINFO {
        return Err(FormatError(
            "flac streamheader: fLaC not followed by STREAMINFO".into(),
        ));
    }
    let mut data = b"fLaC".to_vec();
    data.push(0x80);
    data.extend_from_slice(&block[1..]);
    Ok(data)
}

/// Whether buffers flagged `HEADER` carry what the codec data already
/// holds (and are not sent as samples).
pub fn headers_in_codec_data(codec: Codec) -> bool {
    matches!(codec, Codec::Opus | Codec::Vorbis | Codec::Flac)
}

/// Whether new caps describe the stream already open: equal but for the
/// frame rate and bit rate, which the device takes as information (the
/// buffers' timestamps rule).
pub fn same_stream(open: &StreamFormat, new: &StreamFormat) -> bool {
    let informational = |f: &StreamFormat| StreamFormat {
        media: MediaParams {
            fps_num: 0,
            fps_den: 0,
            bitrate: 0,
            ..f.media
        },
        ..f.clone()
    };
    informational(open) == informational(new)
}

/// The playback stream format of fixed caps (`txq` 0: the caller picks).
pub fn stream_format(caps: &gst::CapsRef) -> Result<StreamFormat, FormatError> {
    let s = caps
        .structure(0)
        .ok_or_else(|| FormatError("empty caps".into()))?;
    let codec = codec_of(s).ok_or_else(|| FormatError(format!("unsupported caps {s}")))?;
    let (fps_num, fps_den) = s
        .get::<gst::Fraction>("framerate")
        .ok()
        .and_then(|f| {
            Some((
                u32::try_from(f.numer()).ok()?,
                u32::try_from(f.denom()).ok()?,
            ))
        })
        .unwrap_or((0, 0));
    let video = codec.is_video();
    Ok(StreamFormat {
        codec,
        direction: Direction::Playback,
        txq: 0,
        source_id: 0,
        media: MediaParams {
            width: if video { positive(s, "width") } else { 0 },
            height: if video { positive(s, "height") } else { 0 },
            fps_num,
            fps_den,
            sample_rate: if video { 0 } else { positive(s, "rate") },
            channels: if video { 0 } else { positive(s, "channels") },
            bitrate: 0,
        },
        codec_data: wire_codec_data(codec, s)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// A STREAMINFO block (not flagged last) with a distinctive body.
    fn streaminfo() -> Vec<u8> {
        let mut b = vec![0, 0, 0, 34];
        b.extend((0u8..34).map(|i| i + 1));
        b
    }

    #[test]
    fn flac_codec_data_is_flagged_last_for_ogg_and_native_headers() {
        let mut expected = b"fLaC".to_vec();
        expected.push(0x80);
        expected.extend_from_slice(&streaminfo()[1..]);
        // Ogg FLAC: the mapping header holds fLaC and STREAMINFO.
        let mut ogg = vec![0x7f, b'F', b'L', b'A', b'C', 1, 0, 0, 2];
        ogg.extend_from_slice(b"fLaC");
        ogg.extend(streaminfo());
        let comment = vec![0x84, 0, 0, 4, 0, 0, 0, 0];
        assert_eq!(flac_codec_data(&[ogg, comment.clone()]).unwrap(), expected);
        // A native FLAC file: one buffer per block.
        let native = [b"fLaC".to_vec(), streaminfo(), comment];
        assert_eq!(flac_codec_data(&native).unwrap(), expected);
        // No STREAMINFO after fLaC: refused, not sent malformed.
        assert!(flac_codec_data(&[b"fLaC".to_vec()]).is_err());
        let mut wrong = b"fLaC".to_vec();
        wrong.extend([4, 0, 0, 34]);
        wrong.extend([0; 34]);
        assert!(flac_codec_data(&[wrong]).is_err());
    }

    #[test]
    fn template_covers_every_codec_and_maps_back() {
        gst::init().unwrap();
        let caps = template_caps();
        // Every codec, and DivX after MPEG-4 Part 2.
        assert_eq!(caps.size(), CODECS.len() + 1);
        let mut codecs: Vec<Codec> = CODECS.to_vec();
        let at = codecs.iter().position(|c| *c == Codec::Mpeg4Part2).unwrap();
        codecs.insert(at + 1, Codec::Mpeg4Part2);
        for (s, codec) in caps.iter().zip(codecs) {
            assert_eq!(codec_of(s), Some(codec), "{s}");
        }
        let divx3 = gst::Caps::builder("video/x-divx")
            .field("divxversion", 3i32)
            .build();
        assert_eq!(
            codec_of(divx3.structure(0).unwrap()),
            None,
            "DivX 3 is MS-MPEG-4"
        );
        let mp1 = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 1i32)
            .field("layer", 1i32)
            .build();
        assert_eq!(codec_of(mp1.structure(0).unwrap()), None);
        let mpeg1_video = gst::Caps::builder("video/mpeg")
            .field("mpegversion", 1i32)
            .field("systemstream", false)
            .field("parsed", true)
            .build();
        assert_eq!(
            codec_of(mpeg1_video.structure(0).unwrap()),
            Some(Codec::Mpeg2Video)
        );
        // MPEG-4 Part 2 from mpeg4videoparse, its VOS/VOL as codec data.
        let vol = [0u8, 0, 1, 0xb0, 1, 0, 0, 1, 0xb5];
        let mpeg4 = gst::Caps::builder("video/mpeg")
            .field("mpegversion", 4i32)
            .field("systemstream", false)
            .field("parsed", true)
            .field("width", 160i32)
            .field("height", 120i32)
            .field("framerate", gst::Fraction::new(25, 1))
            .field("codec_data", gst::Buffer::from_slice(vol))
            .build();
        let format = stream_format(&mpeg4).unwrap();
        assert_eq!(format.codec, Codec::Mpeg4Part2);
        assert_eq!((format.media.width, format.media.height), (160, 120));
        assert_eq!(format.codec_data, vol);
    }

    #[test]
    fn formats_from_caps() {
        gst::init().unwrap();
        let caps = gst::Caps::builder("video/x-vp8")
            .field("width", 320i32)
            .field("height", 240i32)
            .field("framerate", gst::Fraction::new(30, 1))
            .build();
        let f = stream_format(&caps).unwrap();
        assert_eq!(
            (f.codec, f.media.width, f.media.height, f.media.fps_num),
            (Codec::Vp8, 320, 240, 30)
        );
        assert!(f.codec_data.is_empty());

        let avcc = gst::Buffer::from_slice([1u8, 0x64, 0, 0x1f, 0xff, 0xe1, 0]);
        let caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .field("codec_data", avcc)
            .build();
        let f = stream_format(&caps).unwrap();
        assert_eq!(f.codec_data[0], 1);
        Codec::H264.check_codec_data(&f.codec_data, 0).unwrap();

        let mut head = b"OpusHead".to_vec();
        head.extend([1, 2, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        let caps = gst::Caps::builder("audio/x-opus")
            .field("rate", 48000i32)
            .field("channels", 2i32)
            .field(
                "streamheader",
                gst::Array::new([
                    gst::Buffer::from_slice(head.clone()),
                    gst::Buffer::from_slice(b"OpusTags".to_vec()),
                ]),
            )
            .build();
        let f = stream_format(&caps).unwrap();
        assert_eq!((f.media.sample_rate, f.media.channels), (48000, 2));
        assert_eq!(f.codec_data, head);
    }

    #[test]
    fn a_new_frame_rate_is_the_same_stream() {
        gst::init().unwrap();
        let caps = |fps: &str| {
            gst::Caps::from_str(&format!(
                "video/x-h264, stream-format=byte-stream, alignment=au, width=160, \
                 height=120, framerate={fps}"
            ))
            .unwrap()
        };
        let a = stream_format(&caps("25/1")).unwrap();
        let b = stream_format(&caps("107/4")).unwrap();
        assert!(same_stream(&a, &b));
        let mut c = b.clone();
        c.media.width = 320;
        assert!(!same_stream(&a, &c));
    }

    #[test]
    fn pcm_channel_masks_become_wave_codec_data() {
        gst::init().unwrap();
        // 5.1 side: GStreamer's side left/right bits 10, 11 are WAVE's 9, 10.
        let caps = gst::Caps::from_str(
            "audio/x-raw, format=S24LE, layout=interleaved, rate=48000, channels=6, \
             channel-mask=(bitmask)0xc0f",
        )
        .unwrap();
        let f = stream_format(&caps).unwrap();
        assert_eq!((f.codec, f.media.channels), (Codec::PcmS24le, 6));
        assert_eq!(f.codec_data, 0x60Fu32.to_le_bytes());
        // A second LFE (GStreamer bit 9) has no WAVE speaker.
        let caps = gst::Caps::from_str(
            "audio/x-raw, format=S16LE, layout=interleaved, rate=48000, channels=4, \
             channel-mask=(bitmask)0x20b",
        )
        .unwrap();
        assert!(stream_format(&caps).is_err());
    }

    #[test]
    fn vorbis_headers_are_xiph_laced() {
        let packets = vec![vec![1u8; 30], vec![3u8; 300], vec![5u8; 10]];
        let laced = xiph_lace(&packets).unwrap();
        assert_eq!(&laced[..4], &[2, 30, 255, 45]);
        Codec::Vorbis.check_codec_data(&laced, 2).unwrap();
    }
}

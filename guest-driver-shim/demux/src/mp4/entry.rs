//! MP4 sample entries (stsd) to device codecs and codec data.
//!
//! avcC/hvcC/av1C are passed through as stored; AAC's AudioSpecificConfig is
//! dug out of the esds descriptors and Opus's dOps is rewritten as the
//! OpusHead the device expects (little-endian, with magic).

use crate::bytes::Cursor;
use crate::{Codec, DemuxError};

const NAME: &str = "MP4";

/// What a sample entry says about its stream.
pub(super) struct Entry {
    pub(super) codec: Codec,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) sample_rate: u32,
    pub(super) channels: u32,
    pub(super) codec_data: Vec<u8>,
}

/// A box: its four-character type and body.
pub(super) type Mp4Box<'a> = ([u8; 4], &'a [u8]);

/// Iterates the child boxes of `data` as (type, body).
pub(super) fn children(data: &[u8]) -> Result<Vec<Mp4Box<'_>>, DemuxError> {
    let mut c = Cursor::new(data, NAME);
    let mut out = Vec::new();
    while c.remaining() >= 8 {
        let size = c.u32()?;
        let mut kind = [0u8; 4];
        kind.copy_from_slice(c.take(4)?);
        let body_len = match size {
            0 => c.remaining(),
            1 => {
                let big = c.u64()?;
                usize::try_from(big.checked_sub(16).ok_or_else(|| bad("box size"))?)
                    .map_err(|_| bad("box size"))?
            }
            s => usize::try_from(s.checked_sub(8).ok_or_else(|| bad("box size"))?)
                .map_err(|_| bad("box size"))?,
        };
        out.push((kind, c.take(body_len)?));
    }
    Ok(out)
}

/// The body of the first child of type `kind`.
pub(super) fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, DemuxError> {
    Ok(children(data)?
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, b)| b))
}

/// The body of the first `inner` box in the first `outer` child of `data`
/// (`edts/elst`, `mvex/mehd`).
pub(super) fn grandchild<'a>(
    data: &'a [u8],
    outer: &[u8; 4],
    inner: &[u8; 4],
) -> Result<Option<&'a [u8]>, DemuxError> {
    match child(data, outer)? {
        Some(body) => child(body, inner),
        None => Ok(None),
    }
}

pub(super) fn bad(what: &str) -> DemuxError {
    DemuxError::corrupt(NAME, format!("bad {what}"))
}

/// Parses the stsd body (full box) into its first entry.
pub(super) fn parse_stsd(stsd: &[u8]) -> Result<Entry, DemuxError> {
    let mut c = Cursor::new(stsd, NAME);
    c.skip(4)?; // version, flags
    if c.u32()? == 0 {
        return Err(bad("empty stsd"));
    }
    let rest = c.take(c.remaining())?;
    let (kind, body) = children(rest)?
        .into_iter()
        .next()
        .ok_or_else(|| bad("stsd entry"))?;
    match &kind {
        b"avc1" | b"avc3" => video(body, Codec::H264, b"avcC"),
        b"hvc1" | b"hev1" => video(body, Codec::H265, b"hvcC"),
        b"av01" => video(body, Codec::Av1, b"av1C"),
        b"vp08" => video(body, Codec::Vp8, b"----"),
        b"vp09" => video(body, Codec::Vp9, b"----"),
        b"mp4a" => audio(body, b"mp4a"),
        b"Opus" => audio(body, b"Opus"),
        b"fLaC" => audio(body, b"fLaC"),
        b".mp3" => audio(body, b".mp3"),
        // Common Encryption sample entries (ISO/IEC 23001-7): refused by name.
        b"encv" => Err(protected(body, VISUAL_ENTRY_LEN)),
        b"enca" => Err(protected(body, AUDIO_ENTRY_LEN)),
        other => Err(DemuxError::UnsupportedCodec {
            container: NAME,
            codec: String::from_utf8_lossy(other).into_owned(),
        }),
    }
}

/// Bytes of a visual sample entry before its child boxes.
const VISUAL_ENTRY_LEN: usize = 78;
/// Bytes of a (version 0) audio sample entry before its child boxes.
const AUDIO_ENTRY_LEN: usize = 28;

/// The error for an encrypted sample entry: its `sinf` box names the
/// original format (`frma`) and the scheme (`schm`), when they are there.
fn protected(body: &[u8], fixed: usize) -> DemuxError {
    let fourcc = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let sinf = body
        .get(fixed..)
        .and_then(|boxes| child(boxes, b"sinf").ok().flatten());
    let original = sinf
        .and_then(|s| child(s, b"frma").ok().flatten())
        .and_then(|f| f.get(..4))
        .map_or_else(String::new, fourcc);
    // schm is a full box: version and flags, then the scheme type.
    let scheme = sinf
        .and_then(|s| child(s, b"schm").ok().flatten())
        .and_then(|f| f.get(4..8))
        .map_or_else(String::new, fourcc);
    DemuxError::Protected {
        container: NAME,
        scheme,
        original,
    }
}

fn video(body: &[u8], codec: Codec, config: &[u8; 4]) -> Result<Entry, DemuxError> {
    let mut c = Cursor::new(body, NAME);
    c.skip(6 + 2 + 16)?;
    let width = u32::from(c.u16()?);
    let height = u32::from(c.u16()?);
    c.skip(78 - 28)?;
    let codec_data = child(c.take(c.remaining())?, config)?
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    if matches!(codec, Codec::H264 | Codec::H265) && codec_data.is_empty() {
        return Err(bad("video entry without avcC/hvcC"));
    }
    Ok(Entry {
        codec,
        width,
        height,
        sample_rate: 0,
        channels: 0,
        codec_data,
    })
}

fn audio(body: &[u8], kind: &[u8; 4]) -> Result<Entry, DemuxError> {
    let mut c = Cursor::new(body, NAME);
    c.skip(6 + 2)?;
    let version = c.u16()?;
    c.skip(6)?;
    let mut channels = u32::from(c.u16()?);
    c.skip(2 + 4)?;
    let mut sample_rate = c.u32()? >> 16;
    match version {
        0 => {}
        1 => c.skip(16)?,
        2 => {
            c.skip(4)?;
            let rate = f64::from_bits(c.u64()?);
            if rate.is_finite() && rate >= 0.0 && rate < f64::from(u32::MAX) {
                // Truncation intended: rates are whole numbers of Hz.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let r = rate.round() as u32;
                sample_rate = r;
            }
            channels = c.u32()?;
            c.skip(20)?;
        }
        _ => return Err(bad("sound sample entry version")),
    }
    let boxes = c.take(c.remaining())?;
    let (codec, codec_data) = match kind {
        b"mp4a" => {
            let esds = child(boxes, b"esds")?.ok_or_else(|| bad("mp4a without esds"))?;
            let (oti, asc) = parse_esds(esds)?;
            match oti {
                0x40 | 0x66..=0x68 => (Codec::Aac, asc),
                0x69 | 0x6B => (Codec::Mp3, Vec::new()),
                other => {
                    return Err(DemuxError::UnsupportedCodec {
                        container: NAME,
                        codec: format!("mp4a object type 0x{other:02x}"),
                    });
                }
            }
        }
        b"Opus" => {
            let dops = child(boxes, b"dOps")?.ok_or_else(|| bad("Opus without dOps"))?;
            (Codec::Opus, dops_to_opus_head(dops)?)
        }
        b"fLaC" => {
            let dfla = child(boxes, b"dfLa")?.ok_or_else(|| bad("fLaC without dfLa"))?;
            let blocks = dfla.get(4..).ok_or_else(|| bad("dfLa"))?;
            let mut data = b"fLaC".to_vec();
            data.extend_from_slice(blocks);
            (Codec::Flac, data)
        }
        _ => (Codec::Mp3, Vec::new()),
    };
    if codec == Codec::Opus {
        sample_rate = 48_000;
    }
    Ok(Entry {
        codec,
        width: 0,
        height: 0,
        sample_rate,
        channels,
        codec_data,
    })
}

/// Reads an MPEG-4 descriptor header: (tag, body).
fn descriptor<'a>(c: &mut Cursor<'a>) -> Result<(u8, &'a [u8]), DemuxError> {
    let tag = c.u8()?;
    let mut len = 0usize;
    for _ in 0..4 {
        let b = c.u8()?;
        len = (len << 7) | usize::from(b & 0x7F);
        if b & 0x80 == 0 {
            break;
        }
    }
    Ok((tag, c.take(len)?))
}

/// esds → (objectTypeIndication, AudioSpecificConfig).
fn parse_esds(esds: &[u8]) -> Result<(u8, Vec<u8>), DemuxError> {
    let mut c = Cursor::new(esds, NAME);
    c.skip(4)?;
    let (tag, es) = descriptor(&mut c)?;
    if tag != 3 {
        return Err(bad("esds ES_Descriptor"));
    }
    let mut c = Cursor::new(es, NAME);
    c.skip(2)?;
    let flags = c.u8()?;
    if flags & 0x80 != 0 {
        c.skip(2)?;
    }
    if flags & 0x40 != 0 {
        let n = c.u8()?;
        c.skip(usize::from(n))?;
    }
    if flags & 0x20 != 0 {
        c.skip(2)?;
    }
    let (tag, dcd) = descriptor(&mut c)?;
    if tag != 4 {
        return Err(bad("esds DecoderConfigDescriptor"));
    }
    let mut c = Cursor::new(dcd, NAME);
    let oti = c.u8()?;
    c.skip(12)?;
    if c.remaining() == 0 {
        return Ok((oti, Vec::new()));
    }
    let (tag, dsi) = descriptor(&mut c)?;
    Ok((oti, if tag == 5 { dsi.to_vec() } else { Vec::new() }))
}

/// dOps (big-endian, version 0) → OpusHead (little-endian, version 1).
fn dops_to_opus_head(dops: &[u8]) -> Result<Vec<u8>, DemuxError> {
    let mut c = Cursor::new(dops, NAME);
    if c.u8()? != 0 {
        return Err(bad("dOps version"));
    }
    let channels = c.u8()?;
    let pre_skip = c.u16()?;
    let rate = c.u32()?;
    let gain = c.u16()?;
    let family = c.u8()?;
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(channels);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&rate.to_le_bytes());
    head.extend_from_slice(&gain.to_le_bytes());
    head.push(family);
    if family != 0 {
        let table = c.take(2 + usize::from(channels))?;
        head.extend_from_slice(table);
    }
    Ok(head)
}

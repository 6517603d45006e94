//! The `hdrl` list of an AVI file: per stream its `strh` (kind, clock)
//! and `strf` (BITMAPINFOHEADER for video, WAVEFORMATEX for audio), with
//! the codec-specific bytes after either (`extradata`).
//!
//! The list is small (a few KiB) and read whole into memory; every field
//! is read through bounds checks, so a damaged header is an error that
//! says which stream header is broken.

use crate::DemuxError;

use super::NAME;

/// Little-endian u16 at `at`, if there.
pub(super) fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Little-endian u32 at `at`, if there.
pub(super) fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// What a stream's `strf` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Format {
    Video {
        /// `biCompression`.
        fourcc: [u8; 4],
        width: u32,
        height: u32,
    },
    Audio {
        /// `wFormatTag`.
        tag: u16,
        channels: u16,
        rate: u32,
        block_align: u16,
        bits: u16,
    },
    /// Text, MIDI, or a stream without `strf`.
    Other,
}

/// One `strl` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StreamHeader {
    /// `fccHandler` of `strh`.
    pub(super) handler: [u8; 4],
    /// `dwScale` / `dwRate`: seconds per frame (video) or block (audio).
    pub(super) scale: u32,
    pub(super) rate: u32,
    pub(super) format: Format,
    /// Bytes after the fixed part of `strf` (codec data).
    pub(super) extradata: Vec<u8>,
}

/// A RIFF chunk in memory: (id, body); the walk stops at a cut chunk.
fn chunks(mut b: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let id: [u8; 4] = b.get(..4)?.try_into().ok()?;
        let len = usize::try_from(le32(b, 4)?).ok()?;
        let body = b.get(8..8usize.checked_add(len)?)?;
        b = b.get(8 + len + (len & 1)..).unwrap_or(&[]);
        Some((id, body))
    })
}

/// Parses the body of `LIST hdrl` (after its type), found at byte `at`.
pub(super) fn parse_hdrl(hdrl: &[u8], at: u64) -> Result<Vec<StreamHeader>, DemuxError> {
    let mut streams = Vec::new();
    for (id, body) in chunks(hdrl) {
        if &id != b"LIST" || body.get(..4) != Some(b"strl") {
            continue;
        }
        streams.push(parse_strl(&body[4..], streams.len(), at)?);
    }
    Ok(streams)
}

fn parse_strl(strl: &[u8], n: usize, at: u64) -> Result<StreamHeader, DemuxError> {
    let bad = |what: &str| {
        DemuxError::corrupt(
            NAME,
            format!("stream header {n} in the hdrl list at byte {at}: {what}"),
        )
    };
    let mut strh = None;
    let mut strf = None;
    for (id, body) in chunks(strl) {
        match &id {
            b"strh" if strh.is_none() => strh = Some(body),
            b"strf" if strf.is_none() => strf = Some(body),
            _ => {}
        }
    }
    let strh = strh.ok_or_else(|| bad("no strh"))?;
    let (Some(kind), Some(handler), Some(scale), Some(rate)) = (
        strh.get(..4),
        strh.get(4..8),
        le32(strh, 20),
        le32(strh, 24),
    ) else {
        return Err(bad("strh shorter than 28 bytes"));
    };
    let handler: [u8; 4] = handler.try_into().map_err(|_| bad("strh"))?;
    let strf = strf.unwrap_or(&[]);
    let (format, extradata) = match kind {
        b"vids" => {
            let (Some(size), Some(width), Some(height), Some(fourcc)) = (
                le32(strf, 0),
                le32(strf, 4),
                le32(strf, 8),
                strf.get(16..20),
            ) else {
                return Err(bad("video strf shorter than 20 bytes"));
            };
            let fixed = usize::try_from(size).unwrap_or(usize::MAX).clamp(40, 40);
            let format = Format::Video {
                fourcc: fourcc.try_into().map_err(|_| bad("strf"))?,
                width,
                // Negative heights mean top-down bitmaps.
                height: (height as i32).unsigned_abs(),
            };
            (format, strf.get(fixed..).unwrap_or(&[]).to_vec())
        }
        b"auds" => {
            let (Some(tag), Some(channels), Some(rate), Some(block_align), Some(bits)) = (
                le16(strf, 0),
                le16(strf, 2),
                le32(strf, 4),
                le16(strf, 12),
                le16(strf, 14),
            ) else {
                return Err(bad("audio strf shorter than 16 bytes"));
            };
            let extra = le16(strf, 16)
                .and_then(|n| strf.get(18..18 + usize::from(n)))
                .unwrap_or(&[]);
            let format = Format::Audio {
                tag,
                channels,
                rate,
                block_align,
                bits,
            };
            (format, extra.to_vec())
        }
        _ => (Format::Other, Vec::new()),
    };
    Ok(StreamHeader {
        handler,
        scale,
        rate,
        format,
        extradata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_containers::riff_chunk;

    #[test]
    fn video_and_audio_stream_headers() {
        let mut strh = b"vidsXVID".to_vec();
        strh.resize(20, 0);
        strh.extend_from_slice(&1u32.to_le_bytes());
        strh.extend_from_slice(&25u32.to_le_bytes());
        strh.resize(56, 0);
        let mut bih = 40u32.to_le_bytes().to_vec();
        bih.extend_from_slice(&320u32.to_le_bytes());
        bih.extend_from_slice(&(-240i32).to_le_bytes());
        bih.extend_from_slice(&[1, 0, 24, 0]);
        bih.extend_from_slice(b"XVID");
        bih.resize(40, 0);
        bih.extend_from_slice(&[0, 0, 1, 0xB0, 1]);
        let mut strl = b"strl".to_vec();
        strl.extend(riff_chunk(b"strh", &strh));
        strl.extend(riff_chunk(b"strf", &bih));
        let mut wave_strh = b"auds\0\0\0\0".to_vec();
        wave_strh.resize(56, 0);
        let wfx = [
            0x55, 0, 2, 0, 0x80, 0xBB, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0,
        ];
        let mut astrl = b"strl".to_vec();
        astrl.extend(riff_chunk(b"strh", &wave_strh));
        astrl.extend(riff_chunk(b"strf", &wfx));
        let mut hdrl = riff_chunk(b"avih", &[0; 56]);
        hdrl.extend(riff_chunk(b"LIST", &strl));
        hdrl.extend(riff_chunk(b"LIST", &astrl));
        let s = parse_hdrl(&hdrl, 12).expect("parses");
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].scale, s[0].rate, &s[0].handler), (1, 25, b"XVID"));
        assert_eq!(
            s[0].format,
            Format::Video {
                fourcc: *b"XVID",
                width: 320,
                height: 240
            }
        );
        assert_eq!(s[0].extradata, [0, 0, 1, 0xB0, 1]);
        assert!(matches!(
            s[1].format,
            Format::Audio {
                tag: 0x55,
                channels: 2,
                rate: 48_000,
                ..
            }
        ));
        // A cut strh is an error naming the stream.
        let mut short = b"strl".to_vec();
        short.extend(riff_chunk(b"strh", b"vids"));
        let err = parse_hdrl(&riff_chunk(b"LIST", &short), 12).expect_err("cut");
        assert!(err.to_string().contains("stream header 0"), "{err}");
    }
}

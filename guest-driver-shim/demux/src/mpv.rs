//! MPEG-1/2 video (ISO 11172-2 / 13818-2) and MPEG-4 Part 2 (ISO 14496-2)
//! headers, as far as a demuxer needs them: whether an access unit is a
//! point where decoding can begin (an intra picture after the decoder's
//! configuration), the picture size, and for MPEG-4 Part 2 the
//! configuration headers that become the stream's codec data.

use crate::sps::Bits;

/// Start codes: sequence header and picture header.
const SEQUENCE: u8 = 0xB3;
const PICTURE: u8 = 0x00;

/// What an access unit says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AccessUnit {
    /// Its picture is intra coded (I picture).
    pub(crate) intra: bool,
    /// It carries a sequence header (the decoder's configuration).
    pub(crate) sequence: bool,
    /// Width and height from the sequence header, if any.
    pub(crate) size: Option<(u32, u32)>,
}

/// Scans the start codes of one access unit.
pub(crate) fn describe(au: &[u8]) -> AccessUnit {
    let mut out = AccessUnit::default();
    let mut i = 0;
    while i + 4 <= au.len() {
        if au[i..i + 3] != [0, 0, 1] {
            i += 1;
            continue;
        }
        let body = &au[i + 4..];
        match au[i + 3] {
            SEQUENCE if body.len() >= 3 => {
                out.sequence = true;
                let w = (u32::from(body[0]) << 4) | u32::from(body[1] >> 4);
                let h = (u32::from(body[1] & 0x0F) << 8) | u32::from(body[2]);
                out.size.get_or_insert((w, h));
            }
            // temporal_reference (10 bits), picture_coding_type (3 bits).
            PICTURE if body.len() >= 2 => {
                out.intra = (body[1] >> 3) & 7 == 1;
                // The first picture decides; slices follow.
                break;
            }
            _ => {}
        }
        i += 4;
    }
    out
}

/// Finds where the next access unit starts in `data`: a sequence, GOP or
/// picture start code after the slices of the one being gathered.
/// `scan` (where to go on) and `in_slices` carry the search between calls
/// as more bytes arrive; both restart at 0/false once the caller has cut
/// the access unit off.
pub(crate) fn next_access_unit(
    data: &[u8],
    scan: &mut usize,
    in_slices: &mut bool,
) -> Option<usize> {
    while *scan + 4 <= data.len() {
        let p = *scan;
        *scan += 1;
        if data[p..p + 3] != [0, 0, 1] {
            continue;
        }
        match data[p + 3] {
            0x01..=0xAF => *in_slices = true,
            SEQUENCE | 0xB8 | PICTURE if *in_slices => return Some(p),
            _ => {}
        }
    }
    None
}

/// The frame rate a sequence header's `frame_rate_code` names.
pub(crate) fn frame_rate(sequence_header: &[u8]) -> Option<(u32, u32)> {
    Some(match sequence_header.get(7)? & 0x0F {
        1 => (24_000, 1001),
        2 => (24, 1),
        3 => (25, 1),
        4 => (30_000, 1001),
        5 => (30, 1),
        6 => (50, 1),
        7 => (60_000, 1001),
        8 => (60, 1),
        _ => return None,
    })
}

/// MPEG-4 Part 2 start codes: VOP (a picture), and the range of video
/// object layer headers.
const VOP: u8 = 0xB6;
const VOL: std::ops::RangeInclusive<u8> = 0x20..=0x2F;

/// Offsets of the start codes (`00 00 01 xx`) in `au`, with their codes.
fn start_codes(au: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    au.windows(4)
        .enumerate()
        .filter(|(_, w)| w[..3] == [0, 0, 1])
        .map(|(i, w)| (i, w[3]))
}

/// What an MPEG-4 Part 2 access unit says about itself: `intra` and
/// `sequence` (a VOL header precedes the VOP), `size` from the VOL.
pub(crate) fn describe_mpeg4(au: &[u8]) -> (AccessUnit, Vec<u8>) {
    let mut out = AccessUnit::default();
    let mut config = Vec::new();
    for (at, code) in start_codes(au) {
        if VOL.contains(&code) {
            out.sequence = true;
            out.size = out.size.or_else(|| vol_size(&au[at + 4..]));
        } else if code == VOP {
            // vop_coding_type: the top two bits; 0 is intra.
            out.intra = au.get(at + 4).is_some_and(|b| b >> 6 == 0);
            if out.sequence {
                config = au[..at].to_vec();
            }
            break;
        }
    }
    (out, config)
}

/// Width and height from a video object layer header (after its start code).
fn vol_size(vol: &[u8]) -> Option<(u32, u32)> {
    let mut r = Bits::new(vol.get(..vol.len().min(64))?);
    r.skip(1 + 8)?; // random_accessible_vol, video_object_type_indication
    let mut verid = 1;
    if r.bit()? == 1 {
        verid = r.bits(4)?;
        r.skip(3)?;
    }
    if r.bits(4)? == 0xF {
        r.skip(16)?; // extended pixel aspect ratio
    }
    if r.bit()? == 1 {
        r.skip(2 + 1)?; // chroma_format, low_delay
        if r.bit()? == 1 {
            r.skip(79)?; // VBV parameters
        }
    }
    let shape = r.bits(2)?;
    if shape == 3 && verid != 1 {
        r.skip(4)?;
    }
    r.skip(1)?;
    let resolution = r.bits(16)?;
    r.skip(1)?;
    if r.bit()? == 1 {
        // fixed_vop_time_increment: as many bits as resolution - 1 needs.
        let n = (32 - resolution.saturating_sub(1).leading_zeros()).max(1);
        r.skip(n as usize)?;
    }
    if shape != 0 {
        return None;
    }
    r.skip(1)?;
    let w = r.bits(13)?;
    r.skip(1)?;
    let h = r.bits(13)?;
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpeg4_vol_and_intra_vop() {
        // VOS, VO, then a VOL ffmpeg writes for 320x240 at 25 fps, then an
        // I-VOP.
        let au = [
            0x00, 0x00, 0x01, 0xB0, 0x01, 0x00, 0x00, 0x01, 0xB5, 0x89, 0x13, 0x00, 0x00, 0x01,
            0x00, 0x00, 0x00, 0x01, 0x20, 0x00, 0xC4, 0x8D, 0x88, 0x00, 0xCD, 0x0A, 0x04, 0x1E,
            0x14, 0x43, 0x00, 0x00, 0x01, 0xB6, 0x10, 0x60,
        ];
        let (d, config) = describe_mpeg4(&au);
        assert_eq!(d.size, Some((320, 240)));
        assert!(d.intra && d.sequence);
        assert_eq!(config.len(), 30);
        // A P-VOP alone.
        let (d, config) = describe_mpeg4(&[0, 0, 1, 0xB6, 0x50, 0]);
        assert!(!d.intra && !d.sequence && config.is_empty());
    }

    #[test]
    fn intra_picture_with_sequence_header() {
        // 320x240 sequence header, GOP header, I picture.
        let au = [
            0, 0, 1, 0xB3, 0x14, 0x00, 0xF0, 0x13, 0, 0, 1, 0xB8, 0, 8, 0, 0, 0, 0, 1, 0, 0, 0x0F,
            0xFF, 0xF8,
        ];
        let d = describe(&au);
        assert_eq!(d.size, Some((320, 240)));
        assert!(d.intra && d.sequence);
        // P picture (type 2), no sequence header.
        let d = describe(&[0, 0, 1, 0, 0, 0x50, 0, 0]);
        assert_eq!(d, AccessUnit::default());
    }
}

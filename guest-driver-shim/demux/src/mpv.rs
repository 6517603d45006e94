//! MPEG-1/2 video (ISO 11172-2 / 13818-2) headers, as far as a demuxer
//! needs them: whether an access unit starts a closed point where decoding
//! can begin (an intra picture) and the picture size from the sequence
//! header.

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

#[cfg(test)]
mod tests {
    use super::*;

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

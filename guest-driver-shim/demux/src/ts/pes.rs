//! PES packets (ISO 13818-1 section 2.4.3.6): the header with its 33-bit
//! 90 kHz PTS/DTS, and the unwrapping of those clocks, which restart at 0
//! every 26.5 hours (and in files cut from a broadcast, anywhere).

/// A parsed PES header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PesHeader {
    pub(super) pts: Option<u64>,
    pub(super) dts: Option<u64>,
    /// Where the payload starts in the PES packet.
    pub(super) payload_at: usize,
}

fn timestamp(b: &[u8]) -> Option<u64> {
    let b = b.get(..5)?;
    if b[0] & 1 == 0 || b[2] & 1 == 0 || b[4] & 1 == 0 {
        return None;
    }
    Some(
        (u64::from(b[0] >> 1 & 7) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1),
    )
}

/// Parses the header of a PES packet; `None` if it is not one.
pub(super) fn parse(pes: &[u8]) -> Option<PesHeader> {
    if pes.get(..3)? != [0, 0, 1] {
        return None;
    }
    let stream_id = *pes.get(3)?;
    // Streams without the optional header (padding, private 2, ECM...).
    if matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xFF | 0xF2 | 0xF8
    ) {
        return Some(PesHeader {
            pts: None,
            dts: None,
            payload_at: 6,
        });
    }
    if pes.get(6)? & 0xC0 != 0x80 {
        return parse_mpeg1(pes);
    }
    let flags = *pes.get(7)?;
    let header_len = usize::from(*pes.get(8)?);
    let (pts, dts) = match flags >> 6 {
        2 => (Some(timestamp(pes.get(9..)?)?), None),
        3 => (
            Some(timestamp(pes.get(9..)?)?),
            Some(timestamp(pes.get(14..)?)?),
        ),
        _ => (None, None),
    };
    Some(PesHeader {
        pts,
        dts,
        payload_at: 9 + header_len,
    })
}

/// The header of an MPEG-1 system stream packet (ISO 11172-1 section
/// 2.4.3.3): up to 16 stuffing bytes 0xFF, an optional STD buffer size
/// ('01'), then a PTS ('0010'), a PTS and DTS ('0011') or 0x0F.
fn parse_mpeg1(pes: &[u8]) -> Option<PesHeader> {
    let mut at = 6;
    while *pes.get(at)? == 0xFF {
        at += 1;
        if at > 6 + 16 {
            return None;
        }
    }
    if pes.get(at)? & 0xC0 == 0x40 {
        at += 2;
    }
    let b = *pes.get(at)?;
    let (pts, dts, len) = match b >> 4 {
        2 => (Some(timestamp(pes.get(at..)?)?), None, 5),
        3 => (
            Some(timestamp(pes.get(at..)?)?),
            Some(timestamp(pes.get(at + 5..)?)?),
            10,
        ),
        _ if b == 0x0F => (None, None, 1),
        _ => return None,
    };
    Some(PesHeader {
        pts,
        dts,
        payload_at: at + len,
    })
}

/// One wrap of the 33-bit clock.
const WRAP: u64 = 1 << 33;

/// Unwraps 33-bit timestamps into a monotonic 64-bit clock.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Unwrapper {
    last: Option<u64>,
}

impl Unwrapper {
    /// The unwrapped value of `ts` (33 bits): the one nearest the last.
    pub(super) fn unwrap(&mut self, ts: u64) -> u64 {
        let out = match self.last {
            None => ts,
            Some(last) => {
                let base = last & !(WRAP - 1);
                [base.wrapping_sub(WRAP), base, base + WRAP]
                    .into_iter()
                    .map(|b| b.wrapping_add(ts))
                    .filter(|c| *c < u64::MAX / 2)
                    .min_by_key(|c| c.abs_diff(last))
                    .unwrap_or(ts)
            }
        };
        self.last = Some(out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pts_and_dts() {
        // PTS 0x1_2345_6789 (33 bits), DTS 90000.
        let byte = |x: u64| u8::try_from(x & 0xFF).expect("byte");
        let enc = |marker: u8, t: u64| {
            [
                (marker << 4) | (byte(t >> 30 & 7) << 1) | 1,
                byte(t >> 22),
                (byte(t >> 15) << 1) | 1,
                byte(t >> 7),
                (byte(t) << 1) | 1,
            ]
        };
        let mut pes = vec![0, 0, 1, 0xE0, 0, 0, 0x80, 0xC0, 10];
        pes.extend_from_slice(&enc(3, 0x1_2345_6789));
        pes.extend_from_slice(&enc(1, 90_000));
        pes.push(0xAA);
        let h = parse(&pes).expect("header");
        assert_eq!(
            (h.pts, h.dts, h.payload_at),
            (Some(0x1_2345_6789), Some(90_000), 19)
        );
        assert_eq!(pes[h.payload_at], 0xAA);
    }

    #[test]
    fn mpeg1_packet_headers() {
        // Stuffing, STD buffer size, PTS 90000 and DTS 87000.
        let pes = [
            0, 0, 1, 0xE0, 0, 20, 0xFF, 0xFF, 0x60, 0x2E, 0x31, 0x00, 0x05, 0xBF, 0x21, 0x11, 0x00,
            0x05, 0xA7, 0xB1, 0xAA,
        ];
        let h = parse(&pes).expect("header");
        assert_eq!(
            (h.pts, h.dts, h.payload_at),
            (Some(90_000), Some(87_000), 20)
        );
        // No time stamp: 0x0F.
        let h = parse(&[0, 0, 1, 0xC0, 0, 2, 0x0F, 0xAA]).expect("header");
        assert_eq!((h.pts, h.payload_at), (None, 7));
        // Seventeen stuffing bytes are too many.
        let mut bad = vec![0, 0, 1, 0xC0, 0, 18];
        bad.extend([0xFF; 17]);
        bad.push(0x0F);
        assert_eq!(parse(&bad), None);
    }

    #[test]
    fn unwraps_across_the_33_bit_edge() {
        let mut u = Unwrapper::default();
        assert_eq!(u.unwrap(WRAP - 3000), WRAP - 3000);
        assert_eq!(u.unwrap(1000), WRAP + 1000);
        // A B-frame's earlier PTS right after the wrap stays before it.
        assert_eq!(u.unwrap(WRAP - 100), WRAP - 100);
        assert_eq!(u.unwrap(5000), WRAP + 5000);
    }
}

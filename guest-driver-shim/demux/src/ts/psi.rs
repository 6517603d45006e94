//! MPEG-TS program tables (ISO 13818-1 section 2.4.4): the PAT, which
//! names the PID of each program's map, and the PMT, which lists the
//! program's elementary streams with their types.
//!
//! Sections may span packets; they are gathered up to their declared
//! length (at most 1024 bytes, so a damaged length cannot grow memory) and
//! only used when their CRC-32 matches.

/// One section being gathered from the packets of a PID.
#[derive(Default)]
pub(super) struct SectionBuffer {
    data: Vec<u8>,
    /// Whether a section start was seen since the last error.
    started: bool,
}

/// Longest PSI section (section_length is at most 1021).
const MAX_SECTION: usize = 1024;

impl SectionBuffer {
    /// Adds a packet's payload; returns a complete section (CRC checked).
    pub(super) fn push(&mut self, payload: &[u8], unit_start: bool) -> Option<Vec<u8>> {
        if unit_start {
            let pointer = usize::from(*payload.first()?);
            self.data.clear();
            self.data
                .extend_from_slice(payload.get(1 + pointer..).unwrap_or_default());
            self.started = true;
        } else if self.started {
            self.data.extend_from_slice(payload);
        } else {
            return None;
        }
        if self.data.len() > MAX_SECTION {
            self.data.truncate(MAX_SECTION);
        }
        if self.data.len() < 3 || self.data[0] == 0xFF {
            return None;
        }
        let len = 3 + ((usize::from(self.data[1] & 0x0F) << 8) | usize::from(self.data[2]));
        if !(3 + 5 + 4..=MAX_SECTION).contains(&len) {
            self.started = false;
            return None;
        }
        if self.data.len() < len {
            return None;
        }
        self.started = false;
        let section = self.data[..len].to_vec();
        (crc32(&section) == 0).then_some(section)
    }
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, no reflection); 0 over a whole
/// section with its CRC.
pub(super) fn crc32(data: &[u8]) -> u32 {
    data.iter().fold(0xFFFF_FFFFu32, |mut crc, &b| {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// The PMT PID of the first program in a PAT section.
pub(super) fn pat_first_pmt(section: &[u8]) -> Option<u16> {
    if section.first() != Some(&0x00) {
        return None;
    }
    let entries = section.get(8..section.len().checked_sub(4)?)?;
    entries.chunks_exact(4).find_map(|e| {
        let program = u16::from_be_bytes([e[0], e[1]]);
        (program != 0).then(|| u16::from_be_bytes([e[2] & 0x1F, e[3]]))
    })
}

/// One elementary stream of a PMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EsInfo {
    pub(super) stream_type: u8,
    pub(super) pid: u16,
    /// A registration or AC-3/E-AC-3 descriptor says AC-3 family.
    pub(super) ac3: bool,
}

/// The elementary streams of a PMT section.
pub(super) fn pmt_streams(section: &[u8]) -> Option<Vec<EsInfo>> {
    if section.first() != Some(&0x02) {
        return None;
    }
    let body = section.get(..section.len().checked_sub(4)?)?;
    let info_len = (usize::from(*body.get(10)? & 0x0F) << 8) | usize::from(*body.get(11)?);
    let mut pos = 12 + info_len;
    let mut out = Vec::new();
    while pos + 5 <= body.len() {
        let stream_type = body[pos];
        let pid = u16::from_be_bytes([body[pos + 1] & 0x1F, body[pos + 2]]);
        let es_len = (usize::from(body[pos + 3] & 0x0F) << 8) | usize::from(body[pos + 4]);
        let descriptors = body.get(pos + 5..pos + 5 + es_len)?;
        out.push(EsInfo {
            stream_type,
            pid,
            ac3: has_ac3_descriptor(descriptors),
        });
        pos += 5 + es_len;
    }
    Some(out)
}

/// DVB AC-3 (0x6A) / enhanced AC-3 (0x7A) descriptors, or an "AC-3"
/// registration descriptor (ATSC).
fn has_ac3_descriptor(mut d: &[u8]) -> bool {
    while d.len() >= 2 {
        let (tag, len) = (d[0], usize::from(d[1]));
        let Some(body) = d.get(2..2 + len) else {
            return false;
        };
        if tag == 0x6A || tag == 0x7A || (tag == 0x05 && body.starts_with(b"AC-3")) {
            return true;
        }
        d = &d[2 + len..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_crc(mut s: Vec<u8>) -> Vec<u8> {
        let crc = crc32(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        s
    }

    #[test]
    fn pat_and_pmt() {
        // PAT: program 1 on PID 0x1000.
        let pat = with_crc(vec![0x00, 0xB0, 0x0D, 0, 1, 0xC1, 0, 0, 0, 1, 0xF0, 0x00]);
        assert_eq!(crc32(&pat), 0);
        let mut buf = SectionBuffer::default();
        let mut payload = vec![0u8];
        payload.extend_from_slice(&pat);
        let section = buf.push(&payload, true).expect("section");
        assert_eq!(pat_first_pmt(&section), Some(0x1000));
        // PMT: H.264 on 0x100, ADTS on 0x101 with an AC-3 descriptor.
        let pmt = with_crc(vec![
            0x02, 0xB0, 0x19, 0, 1, 0xC1, 0, 0, 0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xF0,
            0x00, 0x0F, 0xE1, 0x01, 0xF0, 0x02, 0x6A, 0x00,
        ]);
        let streams = pmt_streams(&pmt).expect("pmt");
        assert_eq!(streams.len(), 2);
        assert_eq!(
            (streams[0].stream_type, streams[0].pid, streams[0].ac3),
            (0x1B, 0x100, false)
        );
        assert!(streams[1].ac3);
        // A flipped byte fails the CRC.
        let mut bad = payload.clone();
        bad[5] ^= 1;
        assert!(buf.push(&bad, true).is_none());
    }
}

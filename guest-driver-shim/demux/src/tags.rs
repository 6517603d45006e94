//! Metadata tags around elementary audio streams: ID3v2 in front, ID3v1
//! and APEv2 at the end. Players skip them; so does this crate, and it
//! never reads their contents (a cover picture can be megabytes).

use std::io;

use crate::DemuxError;
use crate::reader::Reader;

/// Size of an ID3v2 tag starting at `head` (at least 10 bytes), header and
/// footer included; `None` if `head` is not an ID3v2 header.
///
/// The size field counts the tag after unsynchronisation, so the unsync
/// flag changes nothing here; the v2.4 footer flag adds 10 bytes.
pub(crate) fn id3v2_len(
    head: &[u8],
    container: &'static str,
    at: u64,
) -> Result<Option<u64>, DemuxError> {
    if head.len() < 10 || &head[..3] != b"ID3" {
        return Ok(None);
    }
    let (major, flags, size) = (head[3], head[5], &head[6..10]);
    if major == 0xFF || head[4] == 0xFF || size.iter().any(|b| b & 0x80 != 0) {
        return Err(DemuxError::corrupt(
            container,
            format!("bad ID3v2 tag header at byte {at}"),
        ));
    }
    let body = size.iter().fold(0u64, |acc, &b| (acc << 7) | u64::from(b));
    let footer = if major >= 4 && flags & 0x10 != 0 {
        10
    } else {
        0
    };
    Ok(Some(10 + body + footer))
}

/// Skips every ID3v2 tag at the reader's position (some files have two).
pub(crate) fn skip_id3v2(r: &mut Reader, container: &'static str) -> Result<(), DemuxError> {
    loop {
        let at = r.offset();
        let head = r.peek(10)?;
        match id3v2_len(head, container, at)? {
            Some(len) => {
                if len > r.remaining() {
                    return Err(DemuxError::corrupt(
                        container,
                        format!("ID3v2 tag at byte {at} runs past the end of the file"),
                    ));
                }
                r.skip(len);
            }
            None => return Ok(()),
        }
    }
}

/// Stops `r` before an ID3v1 tag (and its "TAG+" extension) and an APEv2
/// tag at the end of the file.
pub(crate) fn trim_trailing_tags(r: &mut Reader) -> io::Result<()> {
    let end = r.end();
    let mut stop = end;
    if stop >= 128 && r.read_at(stop - 128, 3)? == b"TAG" {
        stop -= 128;
        if stop >= 227 && r.read_at(stop - 227, 4)? == b"TAG+" {
            stop -= 227;
        }
    }
    if stop >= 32 {
        let footer = r.read_at(stop - 32, 32)?;
        if &footer[..8] == b"APETAGEX" {
            let le32 = |o: usize| {
                u64::from(u32::from_le_bytes([
                    footer[o],
                    footer[o + 1],
                    footer[o + 2],
                    footer[o + 3],
                ]))
            };
            // The size counts the items and the footer; a header adds 32.
            let header = if le32(20) & 0x8000_0000 != 0 { 32 } else { 0 };
            let len = le32(12) + header;
            if len <= stop {
                stop -= len;
            }
        }
    }
    if stop < end {
        r.set_end(stop);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id3v2_sizes() {
        let mut h = *b"ID3\x03\x00\x00\x00\x00\x02\x01";
        assert_eq!(id3v2_len(&h, "MP3", 0).expect("ok"), Some(10 + 257));
        // v2.4 with footer, unsync flag set: footer adds 10, unsync nothing.
        h[3] = 4;
        h[5] = 0x10 | 0x80;
        assert_eq!(id3v2_len(&h, "MP3", 0).expect("ok"), Some(20 + 257));
        h[8] = 0x80;
        assert!(id3v2_len(&h, "MP3", 0).is_err());
        assert_eq!(id3v2_len(b"\xFF\xFB\x90\x00", "MP3", 0).expect("ok"), None);
    }
}

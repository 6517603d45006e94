//! Xiph lacing of header packets.
//!
//! The device takes Vorbis (and Theora) headers as one codec-data blob in
//! Matroska's CodecPrivate form; Ogg carries them as separate packets.

/// Laces `packets` (at least one) the way Matroska's CodecPrivate does:
/// count - 1, then the sizes of all but the last in 255-runs, then the data.
pub(crate) fn lace(packets: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(u8::try_from(packets.len().saturating_sub(1)).unwrap_or(u8::MAX));
    if let Some((_, init)) = packets.split_last() {
        for p in init {
            let mut size = p.len();
            while size >= 255 {
                out.push(255);
                size -= 255;
            }
            out.push(u8::try_from(size).unwrap_or(0));
        }
    }
    for p in packets {
        out.extend_from_slice(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laces_long_sizes() {
        let a = vec![1u8; 300];
        let out = lace(&[&a, b"bb", b"c"]);
        assert_eq!(&out[..4], &[2, 255, 45, 2]);
        assert_eq!(out.len(), 4 + 303);
    }
}

//! Sample counts of Opus and FLAC packets, read from their headers.
//!
//! Ogg carries granule positions only per page; a player needs a time per
//! packet, which the codecs' own packet headers give cheaply.

/// Samples at 48 kHz in an Opus packet (RFC 6716 section 3.1).
pub(crate) fn opus_samples(packet: &[u8]) -> u64 {
    let Some(&toc) = packet.first() else { return 0 };
    let config = toc >> 3;
    let per_frame: u64 = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => packet.get(1).map_or(0, |b| u64::from(b & 0x3F)),
    };
    per_frame * frames
}

/// Whether `packet` starts with a FLAC frame sync code (not a metadata block).
pub(super) fn is_flac_frame(packet: &[u8]) -> bool {
    packet.len() >= 2 && packet[0] == 0xFF && packet[1] & 0xFE == 0xF8
}

/// Block size of a FLAC frame (FLAC format, "FRAME_HEADER").
pub(super) fn flac_samples(frame: &[u8]) -> u64 {
    if frame.len() < 5 || !is_flac_frame(frame) {
        return 0;
    }
    let code = frame[2] >> 4;
    // The coded frame/sample number is UTF-8-like: its length is the count
    // of leading ones of its first byte (1 if none).
    let lead = frame[4].leading_ones() as usize;
    let num_len = match lead {
        0 => 1,
        2..=7 => lead,
        _ => return 0,
    };
    let at = 4 + num_len;
    match code {
        1 => 192,
        2..=5 => 576 << (code - 2),
        6 => frame.get(at).map_or(0, |&b| u64::from(b) + 1),
        7 => match (frame.get(at), frame.get(at + 1)) {
            (Some(&a), Some(&b)) => u64::from(u16::from_be_bytes([a, b])) + 1,
            _ => 0,
        },
        8..=15 => 256 << (code - 8),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_20ms_celt() {
        // config 31 (CELT FB 20 ms), code 0.
        assert_eq!(opus_samples(&[31 << 3]), 960);
        assert_eq!(opus_samples(&[(31 << 3) | 3, 3]), 2880);
    }

    #[test]
    fn flac_block_codes() {
        assert_eq!(flac_samples(&[0xFF, 0xF8, 0xC9, 0x08, 0x00]), 4096);
        assert_eq!(
            flac_samples(&[0xFF, 0xF8, 0x79, 0x08, 0x00, 0x01, 0x00]),
            257
        );
    }
}

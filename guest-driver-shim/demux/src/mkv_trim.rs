//! Opus trimming in Matroska/WebM: the track's `CodecDelay` (the encoder's
//! pre-skip, in ns) drops samples at the start and a block group's
//! `DiscardPadding` (ns) drops the end padding of its block, exactly as
//! GStreamer's matroskademux marks them with GstAudioClippingMeta.
//!
//! The `matroska-demuxer` crate reads blocks but not `DiscardPadding`, so
//! this module walks the file's EBML structure once, reading only element
//! headers and block groups, and maps each padded block (track, timestamp)
//! to its padding.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::DemuxError;

const SEGMENT: u32 = 0x1853_8067;
const CLUSTER: u32 = 0x1F43_B675;
const TIMESTAMP: u32 = 0xE7;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const DISCARD_PADDING: u32 = 0x75A2;
/// Elements a cluster of unknown size may hold; any other ends it.
const CLUSTER_CHILDREN: [u32; 7] = [TIMESTAMP, BLOCK_GROUP, 0xA3, 0xAB, 0xA7, 0x5854, 0xAF];
/// Largest block group read to look for its padding.
const MAX_GROUP: u64 = 16 << 20;

/// `(track number, block timestamp in timestamp-scale ticks)` -> padding, ns.
pub(crate) type Paddings = HashMap<(u64, u64), u64>;

struct Reader {
    file: BufReader<File>,
    pos: u64,
    len: u64,
}

impl Reader {
    fn byte(&mut self) -> Option<u8> {
        let mut b = [0u8; 1];
        self.file.read_exact(&mut b).ok()?;
        self.pos += 1;
        Some(b[0])
    }

    /// An EBML variable-length integer; `marker` keeps the length bits
    /// (element IDs). `None` at the end or on a malformed one; the size
    /// "unknown" (all ones) is `Some(u64::MAX)`.
    fn vint(&mut self, marker: bool) -> Option<u64> {
        let first = self.byte()?;
        let len = first.leading_zeros() as usize + 1;
        if len > 8 {
            return None;
        }
        let mask = if len == 8 { 0 } else { 0xFFu8 >> len };
        let mut v = u64::from(if marker { first } else { first & mask });
        let mut all_ones = first & mask == mask;
        for _ in 1..len {
            let b = self.byte()?;
            all_ones &= b == 0xFF;
            v = (v << 8) | u64::from(b);
        }
        Some(if !marker && all_ones { u64::MAX } else { v })
    }

    fn skip_to(&mut self, pos: u64) -> Option<()> {
        self.file.seek(SeekFrom::Start(pos)).ok()?;
        self.pos = pos;
        Some(())
    }
}

fn uint(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0, |v, &x| (v << 8) | u64::from(x))
}

fn sint(b: &[u8]) -> i64 {
    let Some(&first) = b.first() else { return 0 };
    let start = if first & 0x80 != 0 { -1i64 } else { 0 };
    b.iter()
        .take(8)
        .fold(start, |v, &x| (v << 8) | i64::from(x))
}

/// Reads a vint from a slice: (value without marker, bytes used).
fn slice_vint(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || b.len() < len {
        return None;
    }
    let mask = if len == 8 { 0 } else { 0xFFu8 >> len };
    let v = b[1..len]
        .iter()
        .fold(u64::from(first & mask), |v, &x| (v << 8) | u64::from(x));
    Some((v, len))
}

/// The padding of one block group body, keyed by its block.
fn block_group(body: &[u8], cluster_ts: u64, out: &mut Paddings) {
    let mut at = 0;
    let mut block = None;
    let mut padding = None;
    while at < body.len() {
        let Some((id, n)) = slice_vint(body.get(at..).unwrap_or_default())
            .map(|(_, n)| (uint(&body[at..at + n]), n))
        else {
            return;
        };
        at += n;
        let Some((size, n)) = slice_vint(&body[at..]) else {
            return;
        };
        at += n;
        let Some(data) = usize::try_from(size)
            .ok()
            .and_then(|s| body.get(at..at.checked_add(s)?))
        else {
            return;
        };
        at += data.len();
        match u32::try_from(id) {
            Ok(BLOCK) => {
                if let Some((track, n)) = slice_vint(data)
                    && let Some(rel) = data.get(n..n + 2)
                {
                    let rel = i64::from(i16::from_be_bytes([rel[0], rel[1]]));
                    block = Some((track, cluster_ts.saturating_add_signed(rel)));
                }
            }
            Ok(DISCARD_PADDING) => padding = Some(sint(data)),
            _ => {}
        }
    }
    if let (Some(key), Some(p)) = (block, padding)
        && p > 0
    {
        out.insert(key, p.unsigned_abs());
    }
}

/// Every positive `DiscardPadding` of the file. A structure this walk does
/// not understand ends it: the blocks found so far keep their padding.
pub(crate) fn paddings(path: &Path) -> Result<Paddings, DemuxError> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut r = Reader {
        file: BufReader::new(file),
        pos: 0,
        len,
    };
    let mut out = Paddings::new();
    let mut cluster_ts = 0u64;
    // The end of the cluster being read, if inside one.
    let mut cluster_end: Option<u64> = None;
    while r.pos < r.len {
        if cluster_end.is_some_and(|e| r.pos >= e) {
            cluster_end = None;
        }
        let (Some(id), Some(size)) = (r.vint(true), r.vint(false)) else {
            break;
        };
        let Ok(id) = u32::try_from(id) else { break };
        let body = r.pos;
        let end = if size == u64::MAX {
            None
        } else {
            body.checked_add(size)
        };
        if cluster_end.is_some() && !CLUSTER_CHILDREN.contains(&id) {
            // An unknown-size cluster ends where a non-child begins.
            cluster_end = None;
        }
        match id {
            SEGMENT => continue,
            CLUSTER => {
                cluster_end = Some(end.unwrap_or(u64::MAX));
                continue;
            }
            TIMESTAMP | BLOCK_GROUP if cluster_end.is_some() => {
                let Some(end) = end.filter(|_| size <= MAX_GROUP) else {
                    break;
                };
                let mut data = vec![0u8; usize::try_from(size).unwrap_or(0)];
                if r.file.read_exact(&mut data).is_err() {
                    break;
                }
                r.pos = end;
                if id == TIMESTAMP {
                    cluster_ts = uint(&data);
                } else {
                    block_group(&data, cluster_ts, &mut out);
                }
            }
            _ => {
                let Some(end) = end else { break };
                if r.skip_to(end).is_none() {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// Samples of `ns` nanoseconds at `rate`, rounded as GStreamer does.
pub(crate) fn ns_to_samples(ns: u64, rate: u32) -> u64 {
    let r = (u128::from(ns) * u128::from(rate) + 500_000_000) / 1_000_000_000;
    u64::try_from(r).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_and_vints() {
        assert_eq!(sint(&[0xFF, 0x38]), -200);
        assert_eq!(sint(&[0x01, 0x00]), 256);
        assert_eq!(slice_vint(&[0x81]), Some((1, 1)));
        assert_eq!(slice_vint(&[0x40, 0x02]), Some((2, 2)));
        assert_eq!(ns_to_samples(6_500_000, 48_000), 312);
    }
}

//! The sample table of one MP4 track (stbl) flattened into samples.
//!
//! MP4 stores sizes, chunk offsets, durations, composition offsets and sync
//! samples in separate run-length tables; a player wants one list of
//! (offset, size, dts, pts, duration, keyframe) in decode order.

use super::entry::{bad, child};
use crate::DemuxError;
use crate::bytes::Cursor;

const NAME: &str = "MP4";
/// Most samples a track may claim, so a corrupt count cannot exhaust memory.
const MAX_SAMPLES: usize = 1 << 26;

/// One sample's place and times (in track timescale ticks).
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) offset: u64,
    pub(super) size: u32,
    pub(super) dts: u64,
    pub(super) pts: u64,
    pub(super) duration: u32,
    pub(super) keyframe: bool,
}

fn full_box<'a>(body: &'a [u8]) -> Result<(u8, Cursor<'a>), DemuxError> {
    let mut c = Cursor::new(body, NAME);
    let version = c.u8()?;
    c.skip(3)?;
    Ok((version, c))
}

fn count(c: &mut Cursor<'_>, entry_size: usize) -> Result<usize, DemuxError> {
    let n = usize::try_from(c.u32()?).map_err(|_| bad("table size"))?;
    if n.saturating_mul(entry_size) > c.remaining() {
        return Err(bad("table runs past its box"));
    }
    Ok(n)
}

/// Builds the sample list from an stbl body; `file_len` bounds offsets.
pub(super) fn build(stbl: &[u8], file_len: u64) -> Result<Vec<Entry>, DemuxError> {
    let need = |k: &[u8; 4]| -> Result<&[u8], DemuxError> {
        child(stbl, k)?.ok_or_else(|| bad(&format!("missing {}", String::from_utf8_lossy(k))))
    };
    // Sizes.
    let (_, mut c) = full_box(need(b"stsz")?)?;
    let uniform = c.u32()?;
    let n = usize::try_from(c.u32()?).map_err(|_| bad("stsz"))?;
    // Uniform sizes must fit in the file too: a count is not a reason to
    // allocate for samples that cannot be there.
    if n > MAX_SAMPLES || (n as u64).saturating_mul(u64::from(uniform)) > file_len {
        return Err(bad("sample count"));
    }
    let sizes: Vec<u32> = if uniform != 0 {
        vec![uniform; n]
    } else {
        if n.saturating_mul(4) > c.remaining() {
            return Err(bad("stsz runs past its box"));
        }
        (0..n).map(|_| c.u32()).collect::<Result<_, _>>()?
    };
    // Chunk offsets.
    let offsets: Vec<u64> = if let Some(stco) = child(stbl, b"stco")? {
        let (_, mut c) = full_box(stco)?;
        let k = count(&mut c, 4)?;
        (0..k)
            .map(|_| c.u32().map(u64::from))
            .collect::<Result<_, _>>()?
    } else {
        let (_, mut c) = full_box(need(b"co64")?)?;
        let k = count(&mut c, 8)?;
        (0..k).map(|_| c.u64()).collect::<Result<_, _>>()?
    };
    // Samples per chunk.
    let (_, mut c) = full_box(need(b"stsc")?)?;
    let k = count(&mut c, 12)?;
    let mut stsc = Vec::with_capacity(k);
    for _ in 0..k {
        let first = c.u32()?;
        let per = c.u32()?;
        c.skip(4)?;
        stsc.push((first, per));
    }
    let mut entries = Vec::with_capacity(n);
    let mut run = 0usize;
    for (i, &chunk_off) in offsets.iter().enumerate() {
        let chunk = u32::try_from(i + 1).map_err(|_| bad("chunk count"))?;
        while run + 1 < stsc.len() && stsc[run + 1].0 <= chunk {
            run += 1;
        }
        let per = stsc.get(run).map_or(0, |r| r.1);
        let mut off = chunk_off;
        for _ in 0..per {
            let Some(&size) = sizes.get(entries.len()) else {
                break;
            };
            let end = off
                .checked_add(u64::from(size))
                .ok_or_else(|| bad("offset"))?;
            if end > file_len {
                return Err(DemuxError::corrupt(
                    NAME,
                    "sample lies past the end of the file",
                ));
            }
            entries.push(Entry {
                offset: off,
                size,
                dts: 0,
                pts: 0,
                duration: 0,
                keyframe: true,
            });
            off = end;
        }
    }
    if entries.len() != n {
        return Err(bad("chunk table does not cover every sample"));
    }
    // Decode times.
    let (_, mut c) = full_box(need(b"stts")?)?;
    let k = count(&mut c, 8)?;
    let mut i = 0usize;
    let mut t = 0u64;
    for _ in 0..k {
        let runs = c.u32()?;
        let delta = c.u32()?;
        for _ in 0..runs {
            let Some(e) = entries.get_mut(i) else { break };
            e.dts = t;
            e.pts = t;
            e.duration = delta;
            t = t.saturating_add(u64::from(delta));
            i += 1;
        }
    }
    if i != n {
        return Err(bad("stts does not cover every sample"));
    }
    // Composition offsets.
    if let Some(ctts) = child(stbl, b"ctts")? {
        let (version, mut c) = full_box(ctts)?;
        let k = count(&mut c, 8)?;
        let mut i = 0usize;
        for _ in 0..k {
            let runs = c.u32()?;
            let raw = c.u32()?;
            let off = if version == 0 {
                i64::from(raw)
            } else {
                i64::from(i32::from_be_bytes(raw.to_be_bytes()))
            };
            for _ in 0..runs {
                let Some(e) = entries.get_mut(i) else { break };
                e.pts = e.dts.saturating_add_signed(off);
                i += 1;
            }
        }
    }
    // Sync samples (absent: every sample is one).
    if let Some(stss) = child(stbl, b"stss")? {
        let (_, mut c) = full_box(stss)?;
        let k = count(&mut c, 4)?;
        entries.iter_mut().for_each(|e| e.keyframe = false);
        for _ in 0..k {
            let idx = usize::try_from(c.u32()?).map_err(|_| bad("stss"))?;
            if let Some(e) = idx.checked_sub(1).and_then(|i| entries.get_mut(i)) {
                e.keyframe = true;
            }
        }
    }
    Ok(entries)
}

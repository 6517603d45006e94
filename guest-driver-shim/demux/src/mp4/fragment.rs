//! Fragmented MP4 (ISO/IEC 14496-12 §8.8): `moof` boxes to sample entries.
//!
//! A fragmented file's `moov` has empty sample tables and an `mvex` whose
//! `trex` boxes give each track's default sample duration, size and flags;
//! the samples come in `moof` boxes, one `traf` per track with a `tfhd`
//! (defaults again, where the data is based), a `tfdt` (the decode time of
//! its first sample) and `trun`s (the samples). Each `moof` is read into
//! memory (it is small and capped) and its samples are appended to the same
//! per-track tables a progressive file's `stbl` gives, so playback, edit
//! lists and interleaving treat both alike; the `mdat`s are never read here.
//!
//! Where the specification leaves room, this follows GStreamer's qtdemux,
//! the reference of what plays: a `trun` without a data offset whose
//! fragment names no base starts after the `mdat` header following the
//! `moof`; composition offsets are signed in either `trun` version; audio
//! samples are all keyframes, a video sample is one unless its
//! sample_is_non_sync_sample flag is set (ffmpeg also takes
//! sample_depends_on == 1 as not a keyframe; encoders set both together);
//! a fragment's first decode time continues the track unless its `tfdt`
//! is more than a second away (a gap), where `tfdt` wins.

use super::entry::{child, children, grandchild};
use super::table::Entry;
use crate::DemuxError;
use crate::bytes::Cursor;

const NAME: &str = "MP4";
/// Largest `moof` read, so a corrupt size cannot exhaust memory.
pub(super) const MAX_MOOF: u64 = 16 << 20;
/// Most samples all fragments of a file may add (a two-hour film at 60
/// frames/s with 48 kHz AAC has under a million).
const MAX_FRAGMENT_SAMPLES: usize = 1 << 23;

const TF_BASE_DATA_OFFSET: u32 = 0x1;
const TF_SAMPLE_DESCRIPTION_INDEX: u32 = 0x2;
const TF_DEFAULT_DURATION: u32 = 0x8;
const TF_DEFAULT_SIZE: u32 = 0x10;
const TF_DEFAULT_FLAGS: u32 = 0x20;
const TR_DATA_OFFSET: u32 = 0x1;
const TR_FIRST_SAMPLE_FLAGS: u32 = 0x4;
const TR_DURATION: u32 = 0x100;
const TR_SIZE: u32 = 0x200;
const TR_FLAGS: u32 = 0x400;
const TR_CTS: u32 = 0x800;
/// sample_is_non_sync_sample in the sample flags.
const NON_SYNC: u32 = 0x1_0000;

/// Per-sample defaults (`trex`, overridden by `tfhd`).
#[derive(Debug, Clone, Copy, Default)]
struct Defaults {
    duration: u32,
    size: u32,
    flags: u32,
}

/// A track's fragment state: where its samples go and what it defaults to.
pub(super) struct FragTrack {
    /// The track's `tkhd` id, which `tfhd` names.
    pub(super) id: u32,
    pub(super) video: bool,
    /// Ticks of the track timescale in one second.
    pub(super) timescale: u64,
    defaults: Defaults,
    /// Decode time after the last sample added, and the length of the
    /// last fragment (for the gap rule).
    next_dts: Option<u64>,
    last_fragment: u64,
}

impl FragTrack {
    pub(super) fn new(id: u32, video: bool, timescale: u64) -> Self {
        FragTrack {
            id,
            video,
            timescale,
            defaults: Defaults::default(),
            next_dts: None,
            last_fragment: 0,
        }
    }
}

/// An error naming the box and its byte offset in the file.
fn at(kind: &str, offset: u64, what: &str) -> DemuxError {
    DemuxError::corrupt(NAME, format!("bad {kind} box at byte {offset}: {what}"))
}

/// Reads `mvex/trex` defaults into the tracks it names.
pub(super) fn read_mvex(moov: &[u8], tracks: &mut [FragTrack]) -> Result<(), DemuxError> {
    let Some(mvex) = child(moov, b"mvex")? else {
        return Ok(());
    };
    for (kind, trex) in children(mvex)? {
        if &kind != b"trex" {
            continue;
        }
        let mut c = Cursor::new(trex, NAME);
        c.skip(4)?;
        let id = c.u32()?;
        c.skip(4)?; // default_sample_description_index
        let defaults = Defaults {
            duration: c.u32()?,
            size: c.u32()?,
            flags: c.u32()?,
        };
        if let Some(t) = tracks.iter_mut().find(|t| t.id == id) {
            t.defaults = defaults;
        }
    }
    Ok(())
}

/// The `mvex/mehd` duration (movie timescale) of a fragmented file, the
/// whole file's length; `None` when absent or 0 (ffmpeg's empty moov).
pub(super) fn mehd_duration(moov: &[u8]) -> Result<Option<u64>, DemuxError> {
    let Some(mehd) = grandchild(moov, b"mvex", b"mehd")? else {
        return Ok(None);
    };
    let mut c = Cursor::new(mehd, NAME);
    let version = c.u8()?;
    c.skip(3)?;
    let duration = if version == 1 {
        c.u64()?
    } else {
        u64::from(c.u32()?)
    };
    Ok((duration > 0).then_some(duration))
}

/// One `moof`: its body, the file offset of its header and its total size.
pub(super) struct Moof<'a> {
    pub(super) body: &'a [u8],
    pub(super) offset: u64,
    pub(super) size: u64,
}

/// Appends the samples of `moof` to `tables` (one per `tracks` entry);
/// samples must lie within `file_len`. Tracks the file has but the caller
/// dropped (not audio/video, not chosen) are skipped.
pub(super) fn read_moof(
    moof: &Moof<'_>,
    tracks: &mut [FragTrack],
    tables: &mut [Vec<Entry>],
    file_len: u64,
) -> Result<(), DemuxError> {
    let mut prev_end: Option<u64> = None;
    let mut added = vec![0u64; tracks.len()];
    for (kind, traf) in children(moof.body).map_err(|_| at("moof", moof.offset, "child box"))? {
        if &kind != b"traf" {
            continue;
        }
        let boxes = children(traf).map_err(|_| at("traf", moof.offset, "child box"))?;
        if let Some((k, _)) = boxes
            .iter()
            .find(|(k, _)| matches!(k, b"senc" | b"saiz" | b"saio"))
        {
            // Sample encryption (ISO/IEC 23001-7) in a fragment: the
            // bytes mean nothing without the keys.
            return Err(DemuxError::Protected {
                container: NAME,
                scheme: String::from_utf8_lossy(k).into_owned(),
                original: String::new(),
            });
        }
        let find = |k: &[u8; 4]| boxes.iter().find(|(kind, _)| kind == k).map(|b| b.1);
        let tfhd = find(b"tfhd").ok_or_else(|| at("traf", moof.offset, "no tfhd"))?;
        let bad_tfhd = |_| at("tfhd", moof.offset, "shorter than its flags say");
        let mut c = Cursor::new(tfhd, NAME);
        let tf_flags = c.u32().map_err(bad_tfhd)? & 0xFF_FFFF;
        let id = c.u32().map_err(bad_tfhd)?;
        let base = if tf_flags & TF_BASE_DATA_OFFSET != 0 {
            Some(c.u64().map_err(bad_tfhd)?)
        } else {
            None
        };
        if tf_flags & TF_SAMPLE_DESCRIPTION_INDEX != 0 {
            c.skip(4).map_err(bad_tfhd)?;
        }
        let Some(t) = tracks.iter().position(|t| t.id == id) else {
            // A track not played: its runs are not read, so a later traf
            // that names neither a base nor a data offset (no muxer seen
            // writes that after another traf) would be placed wrongly.
            continue;
        };
        let mut d = tracks[t].defaults;
        if tf_flags & TF_DEFAULT_DURATION != 0 {
            d.duration = c.u32().map_err(bad_tfhd)?;
        }
        if tf_flags & TF_DEFAULT_SIZE != 0 {
            d.size = c.u32().map_err(bad_tfhd)?;
        }
        if tf_flags & TF_DEFAULT_FLAGS != 0 {
            d.flags = c.u32().map_err(bad_tfhd)?;
        }
        let tfdt = find(b"tfdt")
            .map(|b| {
                let mut c = Cursor::new(b, NAME);
                let version = c.u8()?;
                c.skip(3)?;
                if version == 1 {
                    c.u64()
                } else {
                    c.u32().map(u64::from)
                }
            })
            .transpose()
            .map_err(|_| at("tfdt", moof.offset, "too short"))?;
        // Where the first run's data is when the run says nothing: the
        // explicit base, else the data after the previous traf's (the
        // specification), else after the next mdat's header (qtdemux).
        let mut data_end = base.or(prev_end);
        let start = fragment_start(&tracks[t], tfdt);
        let mut dts = start;
        for (kind, trun) in &boxes {
            if kind != b"trun" {
                continue;
            }
            let first = tables[t].len();
            // A real file has at least a byte per sample: a count beyond
            // that (or the cap) is a damaged box, not a reason to allocate.
            let total: usize = tables.iter().map(Vec::len).sum();
            let most = usize::try_from(file_len)
                .map_or(MAX_FRAGMENT_SAMPLES, |n| n.min(MAX_FRAGMENT_SAMPLES));
            let run = Run {
                moof,
                base,
                data_end,
                defaults: d,
                video: tracks[t].video,
                dts,
                budget: most.saturating_sub(total),
            };
            let end = read_trun(trun, &run, &mut tables[t])?;
            data_end = Some(end.0);
            dts = end.1;
            for e in &tables[t][first..] {
                if e.offset.saturating_add(u64::from(e.size)) > file_len {
                    return Err(at(
                        "trun",
                        moof.offset,
                        "a sample lies past the end of the file",
                    ));
                }
            }
        }
        prev_end = data_end;
        added[t] += dts - start;
        tracks[t].next_dts = Some(dts);
    }
    for (t, n) in tracks.iter_mut().zip(added) {
        if n > 0 {
            t.last_fragment = n;
        }
    }
    Ok(())
}

/// The decode time of a fragment's first sample of track `t` (qtdemux's
/// rule: the track continues unless `tfdt` is more than a second, or half
/// the last fragment, away).
fn fragment_start(t: &FragTrack, tfdt: Option<u64>) -> u64 {
    match (t.next_dts, tfdt) {
        (None, tfdt) => tfdt.unwrap_or(0),
        (Some(next), Some(tfdt)) if tfdt.abs_diff(next) > t.timescale.max(t.last_fragment / 2) => {
            tfdt
        }
        (Some(next), _) => next,
    }
}

/// Where one `trun` is and what it inherits.
struct Run<'a> {
    moof: &'a Moof<'a>,
    /// The `tfhd` base data offset, if given.
    base: Option<u64>,
    /// The end of the previous run's data (in this `traf` or the last).
    data_end: Option<u64>,
    defaults: Defaults,
    video: bool,
    /// The decode time of the run's first sample.
    dts: u64,
    /// Most samples the run may add.
    budget: usize,
}

/// Appends one `trun`'s samples; returns (end of its data, next decode time).
fn read_trun(trun: &[u8], run: &Run<'_>, out: &mut Vec<Entry>) -> Result<(u64, u64), DemuxError> {
    let moof = run.moof;
    let d = run.defaults;
    let mut dts = run.dts;
    let short = |_| at("trun", moof.offset, "shorter than its sample count says");
    let mut c = Cursor::new(trun, NAME);
    let flags = c.u32().map_err(short)? & 0xFF_FFFF;
    let count = usize::try_from(c.u32().map_err(short)?).unwrap_or(usize::MAX);
    let mut pos = if flags & TR_DATA_OFFSET != 0 {
        let off = i64::from(i32::from_be_bytes(c.u32().map_err(short)?.to_be_bytes()));
        run.base
            .unwrap_or(moof.offset)
            .checked_add_signed(off)
            .ok_or_else(|| at("trun", moof.offset, "data offset before the file"))?
    } else {
        run.data_end
            .unwrap_or(moof.offset.saturating_add(moof.size).saturating_add(8))
    };
    let first_flags = if flags & TR_FIRST_SAMPLE_FLAGS != 0 {
        Some(c.u32().map_err(short)?)
    } else {
        None
    };
    let fields = [TR_DURATION, TR_SIZE, TR_FLAGS, TR_CTS]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count();
    if count > run.budget || count.saturating_mul(fields * 4) > c.remaining() {
        return Err(at("trun", moof.offset, "sample count"));
    }
    out.reserve(count);
    for i in 0..count {
        let duration = if flags & TR_DURATION != 0 {
            c.u32()?
        } else {
            d.duration
        };
        let size = if flags & TR_SIZE != 0 {
            c.u32()?
        } else {
            d.size
        };
        let sflags = if flags & TR_FLAGS != 0 {
            c.u32()?
        } else {
            d.flags
        };
        let sflags = match first_flags {
            Some(f) if i == 0 => f,
            _ => sflags,
        };
        let cts = if flags & TR_CTS != 0 {
            i64::from(i32::from_be_bytes(c.u32()?.to_be_bytes()))
        } else {
            0
        };
        out.push(Entry {
            offset: pos,
            size,
            dts,
            pts: dts.saturating_add_signed(cts),
            duration,
            keyframe: !run.video || sflags & NON_SYNC == 0,
        });
        pos = pos.saturating_add(u64::from(size));
        dts = dts.saturating_add(u64::from(duration));
    }
    Ok((pos, dts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_containers::mp4_box;

    fn words(w: &[u32]) -> Vec<u8> {
        w.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    /// A moof body of one traf for track 1: tfhd flags and fields, tfdt,
    /// and one trun of `trun` words (flags first).
    fn moof(tfhd: &[u32], tfdt: Option<u32>, trun: &[u32]) -> Vec<u8> {
        let mut traf = mp4_box(b"tfhd", &words(tfhd));
        if let Some(t) = tfdt {
            traf.extend(mp4_box(b"tfdt", &words(&[0, t])));
        }
        traf.extend(mp4_box(b"trun", &words(trun)));
        mp4_box(b"traf", &traf)
    }

    fn read(body: &[u8], offset: u64, tracks: &mut [FragTrack]) -> Result<Vec<Entry>, DemuxError> {
        let m = Moof {
            body,
            offset,
            size: body.len() as u64 + 8,
        };
        let mut tables = vec![Vec::new()];
        read_moof(&m, tracks, &mut tables, 1 << 20)?;
        Ok(tables.remove(0))
    }

    #[test]
    fn trun_fields_flags_and_signed_offsets() {
        let mut t = [FragTrack::new(1, true, 90_000)];
        // default-base-is-moof, default duration 3000 and flags non-sync;
        // trun: data offset 100, first-sample flags (sync), per-sample size
        // and a version-1 composition offset of -3000.
        let body = moof(
            &[0x2_0028, 1, 3000, 0x1_0000],
            Some(9000),
            &[0x0A05, 2, 100, 0, 10, 0, 20, (-3000i32).cast_unsigned()],
        );
        let e = read(&body, 1000, &mut t).expect("parses");
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].offset, e[0].size, e[1].offset), (1100, 10, 1110));
        assert!(e[0].keyframe, "first-sample flags");
        assert!(!e[1].keyframe, "default flags: sample_is_non_sync_sample");
        assert_eq!((e[0].dts, e[1].dts, e[1].duration), (9000, 12000, 3000));
        assert_eq!(e[1].pts, 9000, "signed composition offset");
    }

    #[test]
    fn next_fragment_continues_unless_tfdt_jumps() {
        let mut t = [FragTrack::new(1, false, 1000)];
        let frag = |tfdt| moof(&[0x2_0018, 1, 10, 5], Some(tfdt), &[0x001, 4, 0]);
        read(&frag(0), 0, &mut t).expect("first");
        // 2 ticks off: continues at 40 (qtdemux); 5000 off: tfdt wins.
        assert_eq!(read(&frag(42), 100, &mut t).expect("second")[0].dts, 40);
        assert_eq!(read(&frag(5080), 200, &mut t).expect("third")[0].dts, 5080);
    }

    #[test]
    fn hostile_counts_and_encryption_are_errors() {
        let mut t = [FragTrack::new(1, false, 1000)];
        // 2^31 samples with every field defaulted: no per-sample bytes to
        // bound it, so the file's length does.
        let body = moof(&[0x2_0000, 1], None, &[0, 1 << 31]);
        let err = read(&body, 64, &mut t).expect_err("refused");
        assert!(err.to_string().contains("trun box at byte 64"), "{err}");
        // A count larger than the box's entries.
        let body = moof(&[0x2_0000, 1], None, &[0x200, 1000, 5]);
        assert!(read(&body, 0, &mut t).is_err());
        let mut traf = mp4_box(b"tfhd", &words(&[0x2_0000, 1]));
        traf.extend(mp4_box(b"senc", &[0; 8]));
        let err = read(&mp4_box(b"traf", &traf), 0, &mut t).expect_err("DRM");
        assert!(matches!(err, DemuxError::Protected { .. }), "{err}");
    }
}

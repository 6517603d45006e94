//! Edit lists (`edts`/`elst`): the media time a track presents at 0 (for
//! every track: B-frame delay, encoder delay), and for audio tracks the
//! clipping of the priming
//! samples an encoder put before the audio (AAC's encoder delay, 1024 or
//! 2112 samples) and the padding after it, which a player drops.
//!
//! An audio track whose edit list is one edit (after any leading empty
//! edits) plays media time `media_time .. media_time + duration`; every
//! sample outside it is priming or padding. GStreamer's qtdemux makes that
//! range a segment in nanoseconds and the decoder clips to it, so the clip
//! follows its roundings ([`crate::gst_clip`]). It is counted in decoded
//! samples: an AAC frame decodes to 1024 samples even when `stts` gives the
//! last one a shorter duration, so a frame's length is the larger of the
//! two. Several edits (real cuts) are not trimming and are left alone.
//! Without an edit list the track plays `0 .. duration` ([`whole_track`]).

use super::entry::{bad, grandchild};
use crate::bytes::Cursor;
use crate::gst_clip::{ns_floor, segment_clip};
use crate::{Clip, Codec, DemuxError};

const NAME: &str = "MP4";

/// The media range an audio track plays, in nanoseconds of media time as
/// qtdemux computes its segment (rounded down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    /// The edit's media time, ticks: the media time presented at 0.
    pub(super) media_time: u64,
    /// Samples before this are priming.
    pub(super) start_ns: u64,
    /// Samples from this on are padding (`None`: to the end).
    pub(super) end_ns: Option<u64>,
}

/// Reads the track's edit list; `None` when it trims nothing this module
/// understands. `movie_timescale` is mvhd's, `timescale` mdhd's.
pub(super) fn window(
    trak: &[u8],
    movie_timescale: u64,
    timescale: u64,
) -> Result<Option<Window>, DemuxError> {
    let Some(elst) = grandchild(trak, b"edts", b"elst")? else {
        return Ok(None);
    };
    let mut c = Cursor::new(elst, NAME);
    let version = c.u8()?;
    c.skip(3)?;
    let count = c.u32()?;
    let mut edits = Vec::new();
    for _ in 0..count.min(64) {
        let (duration, media_time) = if version == 1 {
            (c.u64()?, i64::from_be_bytes(c.u64()?.to_be_bytes()))
        } else {
            (
                u64::from(c.u32()?),
                i64::from(i32::from_be_bytes(c.u32()?.to_be_bytes())),
            )
        };
        let rate = c.u32()?;
        if media_time >= 0 {
            edits.push((duration, media_time.unsigned_abs(), rate));
        }
    }
    let [(duration, media_time, rate)] = edits[..] else {
        return Ok(None);
    };
    if rate != 1 << 16 {
        return Ok(None);
    }
    if movie_timescale == 0 {
        return Err(bad("zero movie timescale"));
    }
    let start_ns = ns_floor(media_time, timescale);
    let end_ns =
        (duration != 0).then(|| start_ns.saturating_add(ns_floor(duration, movie_timescale)));
    Ok(Some(Window {
        media_time,
        start_ns,
        end_ns,
    }))
}

/// The play range of a track without an edit list: qtdemux makes its
/// segment `0 .. duration` (mdhd's, in ns rounded down), so the decoder
/// clips what decodes past the end (the part of ffmpeg's last AAC frame
/// that `stts` leaves out when it writes no edit list). `None` for a
/// duration of 0 (unknown: a fragmented file's empty moov).
pub(super) fn whole_track(duration: u64, timescale: u64) -> Option<Window> {
    (duration > 0).then(|| Window {
        media_time: 0,
        start_ns: 0,
        end_ns: Some(ns_floor(duration, timescale)),
    })
}

/// Decoded samples of `packet` of `codec`, in ticks of the track's
/// timescale: where that is the sample rate, the larger of what the packet
/// decodes to (an AAC frame: 1024; Opus: its TOC's count at 48 kHz) and
/// what `stts` gives it, which is shorter for a last frame cut by an edit.
/// Otherwise the `stts` duration.
pub(super) fn decoded_len(
    codec: Codec,
    timescale: u64,
    sample_rate: u32,
    packet: &[u8],
    stts: u32,
) -> u64 {
    let stts = u64::from(stts);
    if timescale != u64::from(sample_rate) {
        return stts;
    }
    match codec {
        Codec::Aac => stts.max(1024),
        Codec::Opus => stts.max(crate::ogg::frames::opus_samples(packet)),
        _ => stts,
    }
}

/// The clip of the sample decoding to samples `first .. first + len` of
/// the track (at `rate`, the track's timescale).
pub(super) fn clip(window: Window, first: u64, len: u64, rate: u64) -> Clip {
    segment_clip(first, len, rate, window.start_ns, window.end_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_aac_priming_and_padding() {
        // ffmpeg's 2 s sine at 48 kHz: media_time 1024, 2000 ms edit
        // (movie timescale 1000), 96 000 samples.
        let w = Window {
            media_time: 1024,
            start_ns: ns_floor(1024, 48_000),
            end_ns: Some(ns_floor(1024, 48_000) + 2_000_000_000),
        };
        assert_eq!(
            clip(w, 0, 1024, 48_000),
            Clip {
                start: 1024,
                end: 0
            }
        );
        assert_eq!(clip(w, 1024, 1024, 48_000), Clip::NONE);
        // The last frame (stts says 768, it decodes to 1024) ends 256
        // samples after the edit; the roundings keep one more.
        assert_eq!(clip(w, 96_256, 1024, 48_000), Clip { start: 0, end: 255 });
    }
}

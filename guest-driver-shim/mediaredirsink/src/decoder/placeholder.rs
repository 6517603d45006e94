//! What a redirecting decoder outputs while the client decodes: a
//! placeholder for each frame, so that the application's own sink, clock
//! and position run as they would with a local decoder.
//!
//! - Video: one picture in the spec's key colour (7.14, `COLORKEY`:
//!   magenta) at the stream's size, made once per format and pushed for
//!   every frame as a new buffer sharing its memory (no per-frame
//!   allocation or drawing); the viewer shows the video where the guest's
//!   desktop shows the key, so what the player draws over it stays visible.
//! - Audio: silence of the stream's rate and channels, cut from one zeroed
//!   buffer, so that the application's audio sink keeps driving the clock.
//!
//! A decoder outputs in presentation order; compressed video arrives in
//! decode order. [`Timeline`] turns one into the other: a frame is output
//! once the decode time of the input reached its presentation time (no
//! later input can be shown before it), or, where the demuxer gives no
//! decode times (Matroska), once [`REORDER_WINDOW`] later frames came in;
//! a frame without a duration takes it from the next one's time.

use gstreamer as gst;
use gstreamer_audio as gst_audio;
use gstreamer_video as gst_video;

use mediaredir_proto::control::{COLOR_KEY_RGB, StreamFormat};

/// Frames held for reordering at most (an H.264 DPB holds 16).
const MAX_REORDER: usize = 16;

/// Video frames held when the input has no decode times: what encoders
/// reorder at most in practice (x264's B-pyramid with three B-frames).
pub(super) const REORDER_WINDOW: usize = 4;

/// Duration of an output whose duration nothing tells (20 ms).
const DEFAULT_DURATION: u64 = 20_000_000;

/// A frame to output: presentation time and duration (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    pub(super) pts: Option<u64>,
    pub(super) duration: Option<u64>,
}

/// Decode order in, presentation order out.
#[derive(Debug, Default)]
pub(super) struct Timeline {
    /// Sorted by presentation time.
    pending: Vec<Slot>,
    /// Frames held when the input has no decode times (0: audio, which
    /// is never reordered).
    window: usize,
}

impl Timeline {
    /// A timeline that holds `window` frames of input without decode
    /// times.
    pub(super) fn new(window: usize) -> Timeline {
        Timeline {
            pending: Vec::new(),
            window,
        }
    }

    /// Takes one input frame; returns the frames now due, in order.
    /// `frame_duration`: what a frame lasts when the input does not say
    /// (video: from the frame rate).
    pub(super) fn push(
        &mut self,
        pts: Option<u64>,
        dts: Option<u64>,
        duration: Option<u64>,
        frame_duration: Option<u64>,
    ) -> Vec<Slot> {
        let slot = Slot {
            pts,
            duration: duration.or(frame_duration),
        };
        let Some(t) = pts else {
            // Untimed: out at once, behind what is due.
            let mut out = self.drain();
            out.push(slot);
            return out;
        };
        let at = self
            .pending
            .partition_point(|s| s.pts.is_some_and(|p| p <= t));
        self.pending.insert(at, slot);
        // Nothing decoded later is shown before the input's decode time;
        // without decode times, the window decides.
        let mut out = Vec::new();
        while let Some(first) = self.pending.first().copied() {
            let due = match dts {
                Some(limit) => first.pts.is_none_or(|p| p <= limit),
                None => self.pending.len() > self.window,
            } || self.pending.len() > MAX_REORDER;
            if !due {
                break;
            }
            let next = self.pending.get(1).and_then(|s| s.pts);
            let Some(duration) = first.duration.or_else(|| {
                next.zip(first.pts)
                    .map(|(n, p)| n.saturating_sub(p))
                    .filter(|d| *d > 0)
            }) else {
                // Its duration comes with the next frame.
                break;
            };
            self.pending.remove(0);
            out.push(Slot {
                duration: Some(duration),
                ..first
            });
        }
        out
    }

    /// Everything held, in order (end of stream).
    pub(super) fn drain(&mut self) -> Vec<Slot> {
        let mut out: Vec<Slot> = std::mem::take(&mut self.pending);
        for i in 0..out.len() {
            if out[i].duration.is_none() {
                let next = out.get(i + 1).and_then(|s| s.pts);
                out[i].duration = next
                    .zip(out[i].pts)
                    .map(|(n, p)| n.saturating_sub(p))
                    .filter(|d| *d > 0)
                    .or(Some(DEFAULT_DURATION));
            }
        }
        out
    }

    /// Forgets what is held (flush).
    pub(super) fn clear(&mut self) {
        self.pending.clear();
    }
}

/// Raw video formats a placeholder can be made in, the preferred first
/// (what `gtksink`, `ximagesink` and `glimagesink` take natively, then what
/// `xvimagesink` takes).
const VIDEO_FORMATS: [gst_video::VideoFormat; 11] = {
    use gst_video::VideoFormat as F;
    [
        F::Bgrx,
        F::Rgbx,
        F::Xrgb,
        F::Xbgr,
        F::Bgra,
        F::Rgba,
        F::Argb,
        F::Abgr,
        F::I420,
        F::Yv12,
        F::Nv12,
    ]
};

/// The key colour as (R, G, B).
fn key_rgb() -> [u8; 3] {
    let [_, r, g, b] = COLOR_KEY_RGB.to_be_bytes();
    [r, g, b]
}

/// The key colour as BT.601 limited-range (Y, Cb, Cr), as a converter
/// would make it of the RGB key.
fn key_yuv() -> [u8; 3] {
    let [r, g, b] = key_rgb().map(f64::from);
    let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
    let cb = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
    let cr = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
    // Clamped to 0..=255, so the cast is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    [y, cb, cr].map(|v| v.round().clamp(0.0, 255.0) as u8)
}

/// The caps a video placeholder may take, for `format`'s picture.
pub(super) fn video_caps(format: &StreamFormat, pixel_aspect: gst::Fraction) -> gst::Caps {
    let m = &format.media;
    let size = |v: u32| i32::try_from(v).ok().filter(|v| *v > 0);
    let framerate = match (i32::try_from(m.fps_num), i32::try_from(m.fps_den)) {
        (Ok(n), Ok(d)) if n > 0 && d > 0 => gst::Fraction::new(n, d),
        _ => gst::Fraction::new(0, 1),
    };
    gst_video::VideoCapsBuilder::new()
        .format_list(VIDEO_FORMATS)
        .width(size(m.width).unwrap_or(640))
        .height(size(m.height).unwrap_or(480))
        .framerate(framerate)
        .pixel_aspect_ratio(pixel_aspect)
        .build()
}

/// A key-colour picture of `info`'s format and size, if the format is one
/// of [`VIDEO_FORMATS`].
pub(super) fn key_picture(info: &gst_video::VideoInfo) -> Option<gst::Buffer> {
    use gst_video::VideoFormat as F;
    let mut buffer = gst::Buffer::with_size(info.size()).ok()?;
    {
        let buffer = buffer.get_mut()?;
        let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, info).ok()?;
        let [r, g, b] = key_rgb();
        let [y, u, v] = key_yuv();
        let pixel: Option<[u8; 4]> = match info.format() {
            F::Bgrx | F::Bgra => Some([b, g, r, 255]),
            F::Rgbx | F::Rgba => Some([r, g, b, 255]),
            F::Xrgb | F::Argb => Some([255, r, g, b]),
            F::Xbgr | F::Abgr => Some([255, b, g, r]),
            _ => None,
        };
        match (pixel, info.format()) {
            (Some(pixel), _) => {
                for chunk in frame.plane_data_mut(0).ok()?.chunks_exact_mut(4) {
                    chunk.copy_from_slice(&pixel);
                }
            }
            (None, F::I420) => {
                frame.plane_data_mut(0).ok()?.fill(y);
                frame.plane_data_mut(1).ok()?.fill(u);
                frame.plane_data_mut(2).ok()?.fill(v);
            }
            (None, F::Yv12) => {
                frame.plane_data_mut(0).ok()?.fill(y);
                frame.plane_data_mut(1).ok()?.fill(v);
                frame.plane_data_mut(2).ok()?.fill(u);
            }
            (None, F::Nv12) => {
                frame.plane_data_mut(0).ok()?.fill(y);
                for chunk in frame.plane_data_mut(1).ok()?.chunks_exact_mut(2) {
                    chunk.copy_from_slice(&[u, v]);
                }
            }
            _ => return None,
        }
    }
    Some(buffer)
}

/// Raw audio formats silence can be made in (zero is silence in each).
const AUDIO_FORMATS: [gst_audio::AudioFormat; 4] = [
    gst_audio::AudioFormat::S16le,
    gst_audio::AudioFormat::F32le,
    gst_audio::AudioFormat::S32le,
    gst_audio::AudioFormat::F64le,
];

/// The caps silence for `format` may take.
pub(super) fn audio_caps(format: &StreamFormat) -> gst::Caps {
    let m = &format.media;
    let rate = i32::try_from(m.sample_rate)
        .ok()
        .filter(|r| *r > 0)
        .unwrap_or(48_000);
    let channels = i32::try_from(m.channels)
        .ok()
        .filter(|c| *c > 0)
        .unwrap_or(2);
    let builder = gst_audio::AudioCapsBuilder::new_interleaved()
        .format_list(AUDIO_FORMATS)
        .rate(rate)
        .channels(channels);
    match channels {
        1 | 2 => builder.build(),
        // More than two: GStreamer's default layout for the count.
        n => builder
            .channel_mask(gst_audio::AudioChannelPosition::fallback_mask(n as u32))
            .build(),
    }
}

/// Silence: cut from one zeroed buffer, grown when a longer one is asked.
#[derive(Debug)]
pub(super) struct Silence {
    rate: usize,
    bytes_per_frame: usize,
    zeros: gst::Buffer,
}

impl Silence {
    pub(super) fn new(info: &gst_audio::AudioInfo) -> Option<Silence> {
        let rate = usize::try_from(info.rate()).ok()?;
        let bytes_per_frame = usize::try_from(info.bpf()).ok()?;
        // One second to start with.
        let zeros = gst::Buffer::from_mut_slice(vec![0u8; bytes_per_frame.checked_mul(rate)?]);
        Some(Silence {
            rate,
            bytes_per_frame,
            zeros,
        })
    }

    /// Silence lasting `duration` ns (a buffer sharing the zeroed memory).
    pub(super) fn take(&mut self, duration: u64) -> gst::Buffer {
        let rate = u64::try_from(self.rate).unwrap_or(u64::MAX);
        let frames = duration.saturating_mul(rate).div_ceil(1_000_000_000);
        let bytes = usize::try_from(frames)
            .unwrap_or(usize::MAX)
            .saturating_mul(self.bytes_per_frame)
            // At most ten seconds in one buffer.
            .min(
                self.bytes_per_frame
                    .saturating_mul(self.rate)
                    .saturating_mul(10),
            );
        if bytes > self.zeros.size() {
            self.zeros = gst::Buffer::from_mut_slice(vec![0u8; bytes]);
        }
        self.zeros
            .copy_region(gst::BufferCopyFlags::MEMORY, ..bytes)
            .unwrap_or_else(|_| self.zeros.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn times(slots: &[Slot]) -> Vec<(u64, u64)> {
        slots
            .iter()
            .map(|s| (s.pts.unwrap_or(u64::MAX), s.duration.unwrap_or(0)))
            .collect()
    }

    #[test]
    fn decode_order_comes_out_in_presentation_order() {
        // I P B B P B as an encoder with two B-frames orders them:
        // presentation 0, 3, 1, 2, 5, 4 (x 40 ms); decode times 0..5 as
        // an MP4 has them (presentation shifted by the edit list), or none
        // as Matroska has.
        for with_dts in [true, false] {
            let mut t = Timeline::new(REORDER_WINDOW);
            let mut out = Vec::new();
            for (i, pts) in [0u64, 3, 1, 2, 5, 4].into_iter().enumerate() {
                let dts = with_dts.then_some(i as u64 * 40 * MS);
                out.extend(t.push(Some((pts + 1) * 40 * MS), dts, Some(40 * MS), None));
            }
            out.extend(t.drain());
            let pts: Vec<u64> = times(&out).iter().map(|(p, _)| p / (40 * MS) - 1).collect();
            assert_eq!(pts, [0, 1, 2, 3, 4, 5], "decode times: {with_dts}");
        }
    }

    #[test]
    fn a_missing_duration_comes_from_the_next_frame() {
        let mut t = Timeline::new(0);
        assert!(t.push(Some(0), None, None, None).is_empty());
        let out = t.push(Some(21 * MS), None, None, None);
        assert_eq!(times(&out), [(0, 21 * MS)]);
        assert_eq!(times(&t.drain()), [(21 * MS, DEFAULT_DURATION)]);
        // The frame rate's duration when the input has none.
        assert_eq!(
            times(&t.push(Some(0), None, None, Some(33 * MS))),
            [(0, 33 * MS)]
        );
    }

    #[test]
    fn reordering_is_bounded() {
        // Decode times that never reach the presentation times: at most
        // MAX_REORDER frames are held.
        let mut t = Timeline::new(0);
        let mut released = 0;
        for i in 0..100u64 {
            released += t
                .push(Some(1_000 * MS + i * MS), Some(0), Some(MS), None)
                .len();
            assert!(t.pending.len() <= MAX_REORDER);
        }
        assert_eq!(released + t.drain().len(), 100);
    }

    #[test]
    fn a_flush_forgets_what_is_held() {
        let mut t = Timeline::new(0);
        assert!(t.push(Some(80 * MS), Some(0), Some(MS), None).is_empty());
        t.clear();
        assert!(t.drain().is_empty());
    }

    #[test]
    fn the_picture_is_the_key_colour_in_every_format() {
        gst::init().expect("GStreamer");
        for format in VIDEO_FORMATS {
            let info = gst_video::VideoInfo::builder(format, 6, 4)
                .build()
                .expect("info");
            let picture = key_picture(&info).expect("a picture");
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(&picture, &info)
                .expect("readable");
            let plane = frame.plane_data(0).expect("plane 0");
            match format {
                gst_video::VideoFormat::Bgrx => assert_eq!(&plane[..4], &[255, 0, 255, 255]),
                gst_video::VideoFormat::Argb => assert_eq!(&plane[..4], &[255, 255, 0, 255]),
                gst_video::VideoFormat::I420 => {
                    assert_eq!(plane[0], key_yuv()[0]);
                    assert_eq!(frame.plane_data(2).expect("V")[0], key_yuv()[2]);
                }
                _ => {}
            }
        }
        // Magenta in BT.601 limited range.
        assert_eq!(key_yuv(), [106, 202, 222]);
    }

    #[test]
    fn silence_shares_one_buffer() {
        gst::init().expect("GStreamer");
        let info = gst_audio::AudioInfo::builder(gst_audio::AudioFormat::S16le, 48_000, 2)
            .build()
            .expect("info");
        let mut silence = Silence::new(&info).expect("silence");
        let a = silence.take(20 * MS);
        assert_eq!(a.size(), 960 * 4);
        let map = a.map_readable().expect("readable");
        assert!(map.iter().all(|b| *b == 0));
        // Longer than the zeroed buffer: it grows.
        assert_eq!(silence.take(2_000 * MS).size(), 96_000 * 4);
    }
}

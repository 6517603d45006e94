//! Clipping of decoded audio for decoders that ignore
//! `GstAudioClippingMeta`.
//!
//! The wire's per-sample clipping (`Sample.clip_start` / `clip_end`) is
//! handed to the decoder as GstAudioClippingMeta, which opusdec and the
//! gst-libav decoders (AAC, MP3) apply. vorbisdec and flacdec do not (with
//! oggdemux their trimming comes from the segment), nor does a52dec (AC-3
//! and E-AC-3, whose priming before a TS or VOB's first picture tsdemux and
//! mpegpsdemux cut by segment), so for those codecs
//! the engine drops the same samples from the decoder's output itself:
//! start clips from the first output, the last sample's end clip from the
//! last output before EOS (held back one buffer to know it is the last).

use std::sync::{Arc, Mutex, MutexGuard};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_audio as gst_audio;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::wire::Clip;

/// Whether GStreamer's decoder for `codec` applies GstAudioClippingMeta.
pub(crate) fn decoder_clips(codec: Codec) -> bool {
    !matches!(
        codec,
        Codec::Vorbis | Codec::Flac | Codec::Ac3 | Codec::Eac3
    )
}

/// Samples still to drop from a stream's decoded output.
#[derive(Debug, Default)]
pub(crate) struct OutputTrim {
    start: u64,
    end: u64,
    held: Option<gst::Buffer>,
}

fn lock(m: &Mutex<OutputTrim>) -> MutexGuard<'_, OutputTrim> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl OutputTrim {
    /// Records the clipping of one pushed sample.
    pub(crate) fn add(&mut self, clip: Clip) {
        self.start = self.start.saturating_add(u64::from(clip.start));
        // Only the last sample's end clip matters (the one applied at EOS);
        // the empty EOS sample that may follow it has none.
        if clip.end != 0 {
            self.end = u64::from(clip.end);
        }
    }
}

/// `buffer` without `front` frames at its start and `back` at its end
/// (`None` when nothing is left).
fn cut(
    buffer: gst::Buffer,
    front: u64,
    back: u64,
    info: &gst_audio::AudioInfo,
) -> Option<gst::Buffer> {
    let bpf = info.bpf() as usize;
    let frames = buffer.size() / bpf.max(1);
    let front = usize::try_from(front).unwrap_or(usize::MAX).min(frames);
    let back = usize::try_from(back)
        .unwrap_or(usize::MAX)
        .min(frames - front);
    if front == 0 && back == 0 {
        return Some(buffer);
    }
    let keep = frames - front - back;
    if keep == 0 {
        return None;
    }
    let pts = buffer.pts();
    // A sub-region sharing the decoded memory (no DEEP copy), with its
    // GstAudioMeta cut to match: a52dec's output carries one, and a byte
    // region copied with the whole buffer's meta cannot be mapped.
    let mut out = gst_audio::audio_buffer_truncate(buffer, info.bpf(), front, Some(keep));
    let rate = u128::from(info.rate().max(1));
    let ns = |n: usize| {
        let v = (n as u128) * 1_000_000_000 / rate;
        gst::ClockTime::from_nseconds(u64::try_from(v).unwrap_or(u64::MAX))
    };
    let b = out.make_mut();
    b.set_pts(pts.map(|p| p + ns(front)));
    b.set_duration(ns(keep));
    Some(out)
}

/// Applies `trim` to the decoded buffers leaving `pad`.
pub(crate) fn install(pad: &gst::Pad, trim: Arc<Mutex<OutputTrim>>) {
    let probe = gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM;
    pad.add_probe(probe, move |pad, info| {
        let info_caps = pad
            .current_caps()
            .and_then(|c| gst_audio::AudioInfo::from_caps(&c).ok());
        match info.data.take() {
            Some(gst::PadProbeData::Buffer(buffer)) => {
                let mut t = lock(&trim);
                let Some(audio) = info_caps else {
                    info.data = Some(gst::PadProbeData::Buffer(buffer));
                    return gst::PadProbeReturn::Ok;
                };
                let frames = (buffer.size() / (audio.bpf() as usize).max(1)) as u64;
                let front = t.start.min(frames);
                t.start -= front;
                let Some(buffer) = cut(buffer, front, 0, &audio) else {
                    return gst::PadProbeReturn::Drop;
                };
                match t.held.replace(buffer) {
                    Some(prev) => {
                        info.data = Some(gst::PadProbeData::Buffer(prev));
                        gst::PadProbeReturn::Ok
                    }
                    None => gst::PadProbeReturn::Drop,
                }
            }
            Some(gst::PadProbeData::Event(event)) => {
                match event.type_() {
                    gst::EventType::Eos => {
                        let (held, end) = {
                            let mut t = lock(&trim);
                            (t.held.take(), std::mem::take(&mut t.end))
                        };
                        if let (Some(b), Some(audio)) = (held, info_caps)
                            && let Some(b) = cut(b, 0, end, &audio)
                        {
                            // The pad is already EOS: hand the buffer to
                            // its peer directly, ahead of the EOS event.
                            if let Some(peer) = pad.peer()
                                && let Err(e) = peer.chain(b)
                            {
                                log::debug!("trim: last buffer: {e:?}");
                            }
                        }
                    }
                    gst::EventType::FlushStop => {
                        let mut t = lock(&trim);
                        t.held = None;
                    }
                    _ => {}
                }
                info.data = Some(gst::PadProbeData::Event(event));
                gst::PadProbeReturn::Ok
            }
            other => {
                info.data = other;
                gst::PadProbeReturn::Ok
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_keeps_the_audio_meta_right() {
        gst::init().unwrap();
        let info = gst_audio::AudioInfo::builder(gst_audio::AudioFormat::F32le, 48_000, 2)
            .build()
            .unwrap();
        let data: Vec<u8> = (0..10u8 * 8).collect();
        let mut buffer = gst::Buffer::from_slice(data);
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::ZERO);
            // What a52dec's output carries.
            gst_audio::AudioMeta::add(b, &info, 10, &[]).unwrap();
        }
        let out = cut(buffer, 3, 2, &info).expect("5 frames left");
        let meta = out.meta::<gst_audio::AudioMeta>().expect("meta kept");
        assert_eq!(meta.samples(), 5);
        let map = out.map_readable().unwrap();
        assert_eq!(map.as_slice(), &(24..64u8).collect::<Vec<_>>()[..]);
        assert_eq!(out.pts(), Some(gst::ClockTime::from_nseconds(62_500)));
        assert!(cut(out.clone(), 5, 0, &info).is_none());
    }
}

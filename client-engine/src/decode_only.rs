//! Video frames the guest flags `DECODE_ONLY` are decoded but never shown
//! (spec: a frame between a keyframe and a seek position, or one a
//! container presents past the end of its track).
//!
//! The engine sets `GST_BUFFER_FLAG_DECODE_ONLY` on such a sample, but
//! GStreamer's video parsers (`h264parse`, `h265parse`, ...) build new
//! buffers and do not carry the flag to the decoder, which then shows the
//! frame. So the stream also remembers the presentation time of each such
//! sample and drops the decoded frame that carries it. Decoders output
//! frames in presentation order, so a remembered time below the frame that
//! just left can never come and is forgotten (the decoder dropped that
//! frame itself).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

/// The most presentation times remembered: a bound against a guest that
/// flags every sample of a stream whose frames never come out.
const MAX_PENDING: usize = 1024;

/// Presentation times (ns) of the samples flagged `DECODE_ONLY` whose
/// frames have not left the decoder yet.
#[derive(Debug, Default)]
pub(crate) struct DecodeOnly {
    pending: Mutex<BTreeSet<u64>>,
}

impl DecodeOnly {
    /// Remembers a `DECODE_ONLY` sample presented at `pts`.
    pub(crate) fn mark(&self, pts: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.insert(pts);
        while pending.len() > MAX_PENDING {
            pending.pop_first();
        }
    }

    /// Whether the decoded frame presented at `pts` is to be dropped;
    /// forgets every time up to `pts`.
    fn take(&self, pts: u64) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let later = pending.split_off(&pts);
        let earlier = std::mem::replace(&mut *pending, later);
        drop(earlier);
        pending.remove(&pts)
    }

    /// Drops the marked frames among the decoded buffers leaving `pad`.
    pub(crate) fn install(self: &Arc<Self>, pad: &gst::Pad) {
        let this = Arc::clone(self);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let drop = match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => {
                    b.pts().is_some_and(|pts| this.take(pts.nseconds()))
                }
                _ => false,
            };
            if drop {
                gst::PadProbeReturn::Drop
            } else {
                gst::PadProbeReturn::Ok
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_marked_frame_once() {
        let d = DecodeOnly::default();
        d.mark(2_040_000_000);
        assert!(!d.take(2_000_000_000));
        assert!(d.take(2_040_000_000));
        assert!(!d.take(2_040_000_000), "forgotten once dropped");
    }

    #[test]
    fn forgets_frames_the_decoder_dropped_itself() {
        let d = DecodeOnly::default();
        d.mark(100);
        d.mark(300);
        // The frame at 100 never came out; the one at 200 did.
        assert!(!d.take(200));
        assert!(!d.take(100), "100 was forgotten");
        assert!(d.take(300));
    }

    #[test]
    fn memory_is_bounded() {
        let d = DecodeOnly::default();
        for pts in 0..(MAX_PENDING as u64 + 10) {
            d.mark(pts);
        }
        assert_eq!(d.pending.lock().unwrap().len(), MAX_PENDING);
        assert!(!d.take(5), "the oldest were dropped from memory");
    }
}

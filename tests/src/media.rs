//! Test media: the tests make their clips with `gst-launch-1.0`
//! (`test_support::clips`).

use std::path::Path;

pub use test_support::clips::gst_launch;

/// Writes `out`: `buffers` × 20 ms of a 440 Hz stereo tone at 48 kHz, Opus
/// in Ogg.
pub fn opus_ogg(out: &Path, buffers: u32) {
    gst_launch(&format!(
        "audiotestsrc num-buffers={buffers} samplesperbuffer=960 ! \
         audio/x-raw,rate=48000,channels=2 ! opusenc ! oggmux ! filesink location={}",
        out.display()
    ));
}

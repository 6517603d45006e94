//! Test media: the tests make their clips with `gst-launch-1.0`.

use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `gst-launch-1.0 -q PIPELINE` (split on whitespace) and panics with
/// its error output when it fails.
pub fn gst_launch(pipeline: &str) {
    let output = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .stdin(Stdio::null())
        .output()
        .expect("run gst-launch-1.0 (is GStreamer installed? `cargo xtask setup`)");
    assert!(
        output.status.success(),
        "gst-launch-1.0 {pipeline}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes `out`: `buffers` × 20 ms of a 440 Hz stereo tone at 48 kHz, Opus
/// in Ogg.
pub fn opus_ogg(out: &Path, buffers: u32) {
    gst_launch(&format!(
        "audiotestsrc num-buffers={buffers} samplesperbuffer=960 ! \
         audio/x-raw,rate=48000,channels=2 ! opusenc ! oggmux ! filesink location={}",
        out.display()
    ));
}

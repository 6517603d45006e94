//! The baseline: what a Spice desktop does without redirection. The guest
//! decodes the clip and draws it into its framebuffer (BGRx); the host's
//! spice-server then re-encodes that screen region as a video stream:
//!
//! - MJPEG at quality 80, the top of spice-server's MJPEG quality ladder
//!   (`mjpeg_quality_samples[] = {20, ..., 70, 80}` in
//!   server/mjpeg-encoder.c; the rate control climbs to it when bandwidth
//!   allows, as on a LAN);
//! - VP8 with spice-server's GStreamer settings (server/gstreamer-encoder.c:
//!   `vp8enc end-usage=cbr min-quantizer=10 error-resilient=default
//!   lag-in-frames=0 deadline=1 cpu-used=4`), at 10 Mbit/s, the starting
//!   bit rate spice-server gives a high-bandwidth client;
//! - audio as the playback channel sends it: Opus, 48 kHz stereo, 10 ms
//!   (480-sample) frames, libopus's default bit rate for that (OPUS_AUTO:
//!   60 * 48000 / 480 + 48000 * 2 = 102 kbit/s; spice-common sets none).
//!
//! Each pipeline runs in a `gst-launch-1.0` child whose CPU time `wait4`
//! reports. Decode alone (the guest's part) is measured on its own, so the
//! re-encode alone is the difference. Bytes are the encoder's output
//! (written raw, no container) plus Spice's per-message header: 18 bytes per
//! video frame (6-byte mini header + `SpiceMsgDisplayStreamData` id,
//! mm_time, data_size) and 14 per audio packet (mini header + mm_time +
//! size). Quality: a second pipeline decodes once and tees into the
//! original, an MJPEG round trip and a VP8 round trip, each sampled at 3
//! frames per second (every 10th frame) to GRAY8 files that
//! [`quality`](super::quality) compares.

use std::path::Path;

use anyhow::{Context, Result};

use test_support::clips::gst_launch_command as gst;

use super::clips::{Clip, FPS};
use super::measure::{Usage, run_measured};
use super::quality::{self, Quality};

/// spice-server's top MJPEG quality.
pub(crate) const MJPEG: &str = "jpegenc quality=80";
/// spice-server's VP8 settings at its high-bandwidth starting rate.
pub(crate) const VP8: &str = "vp8enc end-usage=cbr min-quantizer=10 error-resilient=default \
     lag-in-frames=0 deadline=1 cpu-used=4 target-bitrate=10000000";
/// The playback channel's Opus.
pub(crate) const OPUS: &str = "opusenc bitrate=102000 frame-size=10";
/// Spice's header bytes per video stream frame.
pub(crate) const SPICE_VIDEO_HEADER: u64 = 18;
/// Spice's header bytes per 10 ms audio packet.
pub(crate) const SPICE_AUDIO_HEADER: u64 = 14;

/// One re-encoding of a clip.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Reencode {
    /// `mjpeg`, `vp8` or `opus`.
    pub(crate) codec: &'static str,
    /// CPU seconds of decode plus re-encode.
    pub(crate) cpu_s: f64,
    /// Bytes on the wire: encoded output plus Spice headers.
    pub(crate) bytes: u64,
    /// Quality against the original decode (video only).
    pub(crate) quality: Option<Quality>,
}

/// The baseline of one clip.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Baseline {
    /// The clip's name.
    pub(crate) clip: &'static str,
    /// Media seconds.
    pub(crate) seconds: f64,
    /// CPU seconds of the guest's decode (and conversion to its framebuffer).
    pub(crate) decode_cpu_s: f64,
    /// The re-encodings.
    pub(crate) reencodes: Vec<Reencode>,
}

/// The gst-launch fragment that decodes the clip into what the guest's
/// screen holds.
fn guest_decode(clip: &Clip, file: &Path) -> String {
    let tail = if clip.is_video() {
        "videoconvert ! video/x-raw,format=BGRx"
    } else {
        "audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2"
    };
    format!(
        "filesrc location=\"{}\" ! {} ! {tail}",
        file.display(),
        clip.decode()
    )
}

/// The encoders that apply to a clip: (name, encoder fragment, header
/// bytes per unit, units per second).
fn encoders(clip: &Clip) -> Vec<(&'static str, String, u64, u64)> {
    if clip.is_video() {
        vec![
            (
                "mjpeg",
                MJPEG.to_owned(),
                SPICE_VIDEO_HEADER,
                u64::from(FPS),
            ),
            (
                "vp8",
                format!("videoconvert ! {VP8}"),
                SPICE_VIDEO_HEADER,
                u64::from(FPS),
            ),
        ]
    } else {
        vec![("opus", OPUS.to_owned(), SPICE_AUDIO_HEADER, 100)]
    }
}

/// Measures the baseline of `clip` (its file `file`), with scratch files in
/// `scratch` (deleted before returning).
pub(crate) fn measure(clip: &Clip, file: &Path, scratch: &Path) -> Result<Baseline> {
    let decode = guest_decode(clip, file);
    let Usage {
        cpu_s: decode_cpu_s,
        ..
    } = run_measured(&mut gst(&format!("{decode} ! fakesink")))
        .with_context(|| format!("decoding {}", clip.name))?;
    let mut out = Baseline {
        clip: clip.name,
        seconds: f64::from(clip.seconds),
        decode_cpu_s,
        reencodes: Vec::new(),
    };
    for (codec, encoder, header, units) in encoders(clip) {
        let raw = scratch.join(format!("{}.{codec}", clip.name));
        let usage = run_measured(&mut gst(&format!(
            "{decode} ! {encoder} ! filesink location=\"{}\"",
            raw.display()
        )))
        .with_context(|| format!("re-encoding {} as {codec}", clip.name))?;
        let encoded = std::fs::metadata(&raw)
            .with_context(|| format!("{}", raw.display()))?
            .len();
        let _ = std::fs::remove_file(&raw);
        out.reencodes.push(Reencode {
            codec,
            cpu_s: usage.cpu_s,
            bytes: encoded + header * units * u64::from(clip.seconds),
            quality: None,
        });
    }
    if clip.is_video() {
        let qualities = measure_quality(clip, &decode, scratch)?;
        for (re, q) in out.reencodes.iter_mut().zip(qualities) {
            re.quality = Some(q);
        }
    }
    Ok(out)
}

/// Decodes once, round-trips through each encoder, samples every 10th
/// frame of each to GRAY8 and compares in Rust.
fn measure_quality(clip: &Clip, decode: &str, scratch: &Path) -> Result<Vec<Quality>> {
    let sample = "videorate drop-only=true max-rate=3 ! videoconvert ! video/x-raw,format=GRAY8";
    let reference = scratch.join(format!("{}-ref.y", clip.name));
    let mut pipeline = format!(
        "{decode} ! tee name=t t. ! queue ! {sample} ! filesink location=\"{}\"",
        reference.display()
    );
    let mut outputs = Vec::new();
    for (codec, encoder, _, _) in encoders(clip) {
        let path = scratch.join(format!("{}-{codec}.y", clip.name));
        let dec = if codec == "mjpeg" {
            "jpegdec"
        } else {
            "vp8dec"
        };
        pipeline.push_str(&format!(
            " t. ! queue ! {encoder} ! {dec} ! {sample} ! filesink location=\"{}\"",
            path.display()
        ));
        outputs.push(path);
    }
    let result = run_measured(&mut gst(&pipeline))
        .with_context(|| format!("quality pipeline of {}", clip.name))
        .and_then(|_| {
            outputs
                .iter()
                .map(|o| {
                    quality::compare_files(&reference, o, clip.width as usize, clip.height as usize)
                })
                .collect::<Result<Vec<_>>>()
        });
    let _ = std::fs::remove_file(&reference);
    for o in &outputs {
        let _ = std::fs::remove_file(o);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::clips::clips;
    use test_support::clips::shell_words;

    #[test]
    fn pipelines_use_spice_settings() {
        let c = clips(2, true);
        let enc = encoders(&c[0]);
        assert_eq!(enc[0].0, "mjpeg");
        assert!(enc[0].1.contains("quality=80"));
        assert!(enc[1].1.contains("end-usage=cbr") && enc[1].1.contains("deadline=1"));
        assert!(encoders(&c[2])[0].1.contains("frame-size=10"));
        let d = guest_decode(&c[0], Path::new("/x y/a.mp4"));
        assert!(d.starts_with("filesrc location=\"/x y/a.mp4\" ! qtdemux"));
        assert_eq!(shell_words(&d)[1], "location=/x y/a.mp4");
    }
}

//! The bench's clips, generated with GStreamer encoders at bench time and
//! cached by pipeline.
//!
//! Content: a moving zone plate (`videotestsrc pattern=zone-plate`, rings
//! whose phase turns every frame, `kt=1`) scrolled sideways
//! (`horizontal-speed=4`) under a running clock (`timeoverlay`). Every pixel
//! changes every frame and there is detail at every spatial frequency, so
//! neither the original encoder nor the re-encoders can coast on static
//! regions as they would on a test pattern with a ball: it is harder to
//! compress than most film, which makes the baseline's figures
//! conservative for it (a re-encode of easier content is cheaper), and the
//! redirected stream's bitrate is fixed by the original encoder anyway.
//! The audio is pink noise (a full spectrum, unlike a sine).
//!
//! Clips are cached in `$XDG_CACHE_HOME/vhost-device-media/bench-clips`
//! (default `~/.cache/...`), named by a hash of the pipeline, so a rerun
//! skips the encoding; a changed pipeline makes a new file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::process;

/// What kind of media a clip holds, and so which baselines apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Video in MP4 (H.264).
    H264Mp4,
    /// Video in WebM (VP9).
    Vp9Webm,
    /// Audio in Ogg (Opus).
    OpusOgg,
}

/// One clip of the bench.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Clip {
    /// Short name in reports (`h264-1080p30`).
    pub(crate) name: &'static str,
    /// Container and codec.
    pub(crate) kind: Kind,
    /// Frame size (0 for audio).
    pub(crate) width: u32,
    /// Frame height (0 for audio).
    pub(crate) height: u32,
    /// Media seconds.
    pub(crate) seconds: u32,
    /// The gst-launch-1.0 pipeline, `{out}` for the file.
    pub(crate) pipeline: String,
}

/// Frames per second of the video clips.
pub(crate) const FPS: u32 = 30;

fn video_source(width: u32, height: u32, seconds: u32, font: u32) -> String {
    format!(
        "videotestsrc num-buffers={} pattern=zone-plate kx2=6 ky2=6 kt=1 horizontal-speed=4 \
         ! video/x-raw,format=I420,width={width},height={height},framerate={FPS}/1 \
         ! timeoverlay font-desc=\"Sans {font}\"",
        seconds * FPS
    )
}

/// The clips: 1080p30 H.264 at about 5 Mbit/s with B-frames, 720p30 VP9,
/// 48 kHz stereo Opus; `seconds` long (30 in the full run; smoke runs use 2
/// s and 320x240).
pub(crate) fn clips(seconds: u32, smoke: bool) -> Vec<Clip> {
    let (hw, hh, vw, vh) = if smoke {
        (320, 240, 320, 240)
    } else {
        (1920, 1080, 1280, 720)
    };
    let h264 = format!(
        "{} ! x264enc bitrate=5000 bframes=2 speed-preset=veryfast key-int-max=60 \
         ! video/x-h264,profile=high ! h264parse ! mp4mux ! filesink location={{out}}",
        video_source(hw, hh, seconds, 8 + hh / 24)
    );
    let vp9 = format!(
        "{} ! vp9enc deadline=1 cpu-used=8 end-usage=vbr target-bitrate=2500000 \
         ! webmmux ! filesink location={{out}}",
        video_source(vw, vh, seconds, 8 + vh / 24)
    );
    let opus = format!(
        "audiotestsrc num-buffers={} samplesperbuffer=960 wave=pink-noise volume=0.3 \
         ! audio/x-raw,rate=48000,channels=2 ! opusenc bitrate=128000 ! oggmux \
         ! filesink location={{out}}",
        seconds * 50
    );
    vec![
        Clip {
            name: if smoke { "h264-240p30" } else { "h264-1080p30" },
            kind: Kind::H264Mp4,
            width: hw,
            height: hh,
            seconds,
            pipeline: h264,
        },
        Clip {
            name: if smoke { "vp9-240p30" } else { "vp9-720p30" },
            kind: Kind::Vp9Webm,
            width: vw,
            height: vh,
            seconds,
            pipeline: vp9,
        },
        Clip {
            name: "opus-48k-stereo",
            kind: Kind::OpusOgg,
            width: 0,
            height: 0,
            seconds,
            pipeline: opus,
        },
    ]
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust versions (the
/// cache key must).
pub(crate) fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Clip {
    /// The file extension of the container.
    pub(crate) fn extension(&self) -> &'static str {
        match self.kind {
            Kind::H264Mp4 => "mp4",
            Kind::Vp9Webm => "webm",
            Kind::OpusOgg => "ogg",
        }
    }

    /// The cached file's name: the clip name and the pipeline's hash.
    pub(crate) fn file_name(&self) -> String {
        format!(
            "{}-{:016x}.{}",
            self.name,
            fnv1a(&self.pipeline),
            self.extension()
        )
    }

    /// Whether it is a video clip.
    pub(crate) fn is_video(&self) -> bool {
        self.kind != Kind::OpusOgg
    }

    /// The demuxer and decoder that turn the file into raw media, as a
    /// gst-launch fragment after `filesrc`.
    pub(crate) fn decode(&self) -> &'static str {
        match self.kind {
            Kind::H264Mp4 => "qtdemux ! h264parse ! avdec_h264",
            Kind::Vp9Webm => "matroskademux ! vp9dec",
            Kind::OpusOgg => "oggdemux ! opusparse ! opusdec",
        }
    }
}

/// The cache directory of the clips.
pub(crate) fn cache_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache"),
    };
    Ok(base.join("vhost-device-media").join("bench-clips"))
}

/// The clip's file, generated unless it is in the cache already.
pub(crate) fn ensure(clip: &Clip, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(clip.file_name());
    if path.is_file() {
        println!("bench: clip {} cached: {}", clip.name, path.display());
        return Ok(path);
    }
    let partial = dir.join(format!("{}.partial", clip.file_name()));
    let pipeline = clip
        .pipeline
        .replace("{out}", &partial.display().to_string());
    println!("bench: generating clip {} ({} s)", clip.name, clip.seconds);
    process::run(&mut test_support::clips::gst_launch_command(&pipeline))
        .with_context(|| format!("generating clip {}", clip.name))?;
    std::fs::rename(&partial, &path).with_context(|| format!("renaming {}", partial.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_are_what_the_issue_asks_and_keyed_by_pipeline() {
        let full = clips(30, false);
        assert_eq!(full.len(), 3);
        assert!(full[0].pipeline.contains("width=1920,height=1080"));
        assert!(full[0].pipeline.contains("bitrate=5000 bframes=2"));
        assert!(full[1].pipeline.contains("width=1280,height=720"));
        assert!(full[1].pipeline.contains("vp9enc"));
        assert!(full[2].pipeline.contains("rate=48000,channels=2 ! opusenc"));
        assert!(full.iter().all(|c| c.seconds == 30));
        assert!(full[0].pipeline.contains("num-buffers=900"));
        let smoke = clips(2, true);
        assert!(smoke[0].pipeline.contains("width=320,height=240"));
        assert_ne!(full[0].file_name(), smoke[0].file_name());
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert!(full[0].file_name().ends_with(".mp4"));
    }
}

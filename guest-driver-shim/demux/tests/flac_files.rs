//! Native FLAC and FLAC in Ogg as the flac tool, ffmpeg and GStreamer
//! write them: frames as ffprobe sees them, every sample of the input
//! once, the codec data, and truncation and corruption of every file.

mod common;

use std::path::Path;

use common::audio::{assert_same_frames, demux, from_sine_wav};
use common::tools::{ffmpeg, fuzz_copy, gst};
use redir_demux::Codec;

/// A FLAC file: frames as ffprobe's, every sample of the input once.
fn flac(path: &Path, rate: u32, channels: u32, input_samples: u64) {
    let (track, samples) = demux(path, Codec::Flac, rate, channels);
    assert_eq!(&track.codec_data[..8], b"fLaC\x80\x00\x00\x22");
    assert_same_frames(path, &samples, 0);
    let total: u128 = samples
        .iter()
        .map(|s| u128::from(s.duration.expect("d")))
        .sum();
    let expected = u128::from(input_samples) * 1_000_000_000 / u128::from(rate);
    assert!(
        total.abs_diff(expected) <= samples.len() as u128,
        "{total} ns"
    );
    fuzz_copy(path);
}

#[test]
fn flac_tool_with_tags_seektable_and_padding() {
    let path = from_sine_wav(
        "flac",
        &[
            "--silent",
            "--force",
            "-T",
            "TITLE=Sine",
            "-o",
            "{out}",
            "{wav}",
        ],
        "tool.flac",
    );
    flac(&path, 44_100, 2, 44_100);
}

#[test]
fn flac_ffmpeg_24_bit() {
    let path = ffmpeg(
        48_000,
        2,
        &[
            "-c:a",
            "flac",
            "-sample_fmt",
            "s32",
            "-bits_per_raw_sample",
            "24",
        ],
        "ffmpeg24.flac",
    );
    flac(&path, 48_000, 2, 48_000);
}

#[test]
fn flac_gstreamer() {
    let path = gst(
        "audiotestsrc num-buffers=20 samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=2 \
         ! flacenc",
        "gst.flac",
    );
    flac(&path, 44_100, 2, 20 * 1024);
}

#[test]
fn flac_gstreamer_short_last_block() {
    // 50 000 samples: the last of flacenc's 4608-sample blocks is short;
    // its frame header says so, and flacdec plays exactly 50 000.
    let path = gst(
        "audiotestsrc num-buffers=1 samplesperbuffer=50000 \
         ! audio/x-raw,rate=44100,channels=2,format=S16LE ! flacenc",
        "gst-50000.flac",
    );
    flac(&path, 44_100, 2, 50_000);
}

/// FLAC in Ogg: codec data as from a native file, every frame once, no
/// empty buffer, and no clips: FLAC frames carry their own block size, so
/// the last page's granule position (the input's length) cuts nothing
/// (oggdemux + flacdec play every sample of the frames).
fn ogg_flac(path: &Path, input_samples: u64) {
    let (track, samples) = demux(path, Codec::Flac, 44_100, 2);
    assert_eq!(track.codec_data.len(), 4 + 4 + 34, "fLaC + STREAMINFO only");
    assert_eq!(&track.codec_data[..8], b"fLaC\x80\x00\x00\x22");
    assert!(samples.iter().all(|s| s.clip.is_none()));
    let total: u64 = samples.iter().map(|s| s.duration.expect("d")).sum();
    let expected = input_samples * 1_000_000_000 / 44_100;
    assert!(
        total.abs_diff(expected) <= samples.len() as u64,
        "{total} ns"
    );
    fuzz_copy(path);
}

#[test]
fn flac_in_ogg_from_ffmpeg_ends_with_an_empty_packet() {
    let path = ffmpeg(44_100, 2, &["-c:a", "flac", "-f", "ogg"], "ffmpeg-flac.ogg");
    ogg_flac(&path, 44_100);
}

#[test]
fn flac_in_ogg_from_the_flac_tool_with_padding() {
    let path = from_sine_wav(
        "flac",
        &[
            "--silent",
            "--force",
            "--ogg",
            "-T",
            "TITLE=Sine",
            "-o",
            "{out}",
            "{wav}",
        ],
        "tool-flac.ogg",
    );
    ogg_flac(&path, 44_100);
}

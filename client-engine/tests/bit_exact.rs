//! Decoding through the engine is bit-exact with decoding the original
//! file locally: H.264 with B-frames (mp4), VP8, VP9, Opus (webm), and
//! H.264 + Opus in one presentation (one pipeline, one clock).

mod common;

use common::*;

#[test]
fn h264_with_bframes_is_bit_exact() {
    check_bit_exact("h264", "clip.mp4", H264_BFRAMES);
}

#[test]
fn vp8_is_bit_exact() {
    check_bit_exact("vp8", "clip.webm", VP8);
}

#[test]
fn vp9_is_bit_exact() {
    check_bit_exact("vp9", "clip.webm", VP9);
}

#[test]
fn opus_is_bit_exact() {
    check_bit_exact("opus", "clip.webm", OPUS);
}

#[test]
fn audio_and_video_together_are_bit_exact() {
    check_bit_exact("av", "clip.mkv", AV);
}

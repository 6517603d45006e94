//! The codec matrix: H.265 (hvcC), AV1, Vorbis (Xiph-laced headers), AAC
//! (AudioSpecificConfig), FLAC (`fLaC` + STREAMINFO) and MP3 decoded
//! through the engine bit-exact with a local decode of the file.
//!
//! A codec whose encoder (or muxer) is missing on this machine cannot be
//! tested; its test then asserts that the engine does not offer the codec
//! either, so a machine that decodes a codec it cannot test fails loudly
//! instead of passing silently.

mod common;

use client_engine::gst;
use client_engine::{Engine, EngineConfig, OutputMode};
use common::*;
use mediaredir_proto::codec::Codec;

/// Runs the bit-exact check of `desc`, or, when one of `elements` is
/// missing, checks that the engine does not claim `codec`.
fn matrix(codec: Codec, elements: &[&str], tag: &str, name: &str, desc: &str) {
    gst::init().unwrap();
    let missing: Vec<&str> = elements
        .iter()
        .copied()
        .filter(|e| gst::ElementFactory::find(e).is_none())
        .collect();
    if missing.is_empty() {
        check_bit_exact(tag, name, desc);
        return;
    }
    let engine = Engine::new(EngineConfig::with_output(OutputMode::Verify)).unwrap();
    let offered = engine
        .capabilities()
        .codecs
        .iter()
        .any(|c| c.codec == codec);
    assert!(
        !offered,
        "{tag}: {missing:?} missing, so {} cannot be tested here, yet the engine offers it",
        codec.name()
    );
    eprintln!(
        "{tag}: {missing:?} missing; {} not offered (checked)",
        codec.name()
    );
}

#[test]
fn h265_is_bit_exact() {
    matrix(
        Codec::H265,
        &["x265enc", "h265parse", "mp4mux"],
        "h265",
        "clip.mp4",
        "videotestsrc num-buffers=30 pattern=ball ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! x265enc speed-preset=ultrafast key-int-max=10 option-string=\"bframes=2\" ! h265parse ! video/x-h265,stream-format=hvc1 ! mp4mux ! filesink location={out}",
    );
}

#[test]
fn av1_is_bit_exact() {
    matrix(
        Codec::Av1,
        &["av1enc", "av1parse", "matroskamux"],
        "av1",
        "clip.mkv",
        "videotestsrc num-buffers=10 pattern=ball ! video/x-raw,format=I420,width=64,height=64,framerate=30/1 ! av1enc cpu-used=8 usage-profile=realtime keyframe-max-dist=5 ! av1parse ! matroskamux ! filesink location={out}",
    );
}

#[test]
fn vorbis_is_bit_exact() {
    matrix(
        Codec::Vorbis,
        &["vorbisenc", "webmmux"],
        "vorbis",
        "clip.webm",
        "audiotestsrc num-buffers=43 samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=2 ! vorbisenc ! webmmux ! filesink location={out}",
    );
}

/// In Matroska: this harness demuxes with GStreamer, and qtdemux turns an
/// MP4 edit list (the encoder's priming and padding) into a segment, which a
/// wire sample cannot carry (only matroskademux's and oggdemux's clipping
/// meta maps onto `Sample.clip_*`). MP4 edit lists are checked through
/// redir-demux, which marks them, in the demo matrix (aac-mp4,
/// aac-m4a-ffmpeg, h264-aac-mp4-ffmpeg).
#[test]
fn aac_is_bit_exact() {
    matrix(
        Codec::Aac,
        &["avenc_aac", "aacparse", "matroskamux"],
        "aac",
        "clip.mkv",
        "audiotestsrc num-buffers=47 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! matroskamux ! filesink location={out}",
    );
}

#[test]
fn flac_is_bit_exact() {
    matrix(
        Codec::Flac,
        &["flacenc", "matroskamux"],
        "flac",
        "clip.mkv",
        "audiotestsrc num-buffers=43 samplesperbuffer=1024 ! audio/x-raw,format=S16LE,rate=44100,channels=2 ! flacenc ! matroskamux ! filesink location={out}",
    );
}

#[test]
fn mp3_is_bit_exact() {
    matrix(
        Codec::Mp3,
        &["lamemp3enc", "mpegaudioparse", "matroskamux"],
        "mp3",
        "clip.mkv",
        "audiotestsrc num-buffers=39 samplesperbuffer=1152 ! audio/x-raw,rate=44100,channels=2 ! lamemp3enc ! mpegaudioparse ! matroskamux ! filesink location={out}",
    );
}

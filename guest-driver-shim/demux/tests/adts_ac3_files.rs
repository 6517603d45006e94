//! ADTS AAC and raw AC-3/E-AC-3 files as ffmpeg and GStreamer write them:
//! frames, sizes and times as ffprobe sees them, the AAC codec data, and
//! truncation and corruption of every file.

mod common;

use common::audio::{assert_same_frames, demux};
use common::tools::{ffmpeg, fuzz_copy, gst};
use redir_demux::Codec;

#[test]
fn adts_ffmpeg_with_id3v2() {
    let path = ffmpeg(
        44_100,
        2,
        &["-c:a", "aac", "-f", "adts", "-write_id3v2", "1"],
        "ffmpeg.aac",
    );
    assert!(std::fs::read(&path).expect("read").starts_with(b"ID3"));
    let (track, samples) = demux(&path, Codec::Aac, 44_100, 2);
    assert_eq!(track.codec_data, [0x12, 0x10], "AAC-LC, 44.1 kHz, stereo");
    assert_same_frames(&path, &samples, 7);
    assert_eq!(samples[1].pts, Some(1024 * 1_000_000_000 / 44_100));
    // ADTS declares no priming: aacparse + avdec_aac play all 1024 samples
    // of it. Nothing is clipped.
    assert!(samples.iter().all(|s| s.clip.is_none()));
    assert_eq!((track.start_trim, track.end_trim), (0, 0));
    fuzz_copy(&path);
}

#[test]
fn adts_ffmpeg_5_1() {
    let path = ffmpeg(48_000, 6, &["-c:a", "aac"], "ffmpeg-51.aac");
    let (track, samples) = demux(&path, Codec::Aac, 48_000, 6);
    assert_eq!(track.codec_data, [0x11, 0xB0], "AAC-LC, 48 kHz, 5.1");
    assert_same_frames(&path, &samples, 7);
}

#[test]
fn adts_gstreamer() {
    let path = gst(
        "audiotestsrc num-buffers=20 samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=2 \
         ! voaacenc ! aacparse ! audio/mpeg,stream-format=adts",
        "gst.aac",
    );
    let (_, samples) = demux(&path, Codec::Aac, 44_100, 2);
    assert_same_frames(&path, &samples, 7);
    fuzz_copy(&path);
}

#[test]
fn raw_ac3_and_eac3() {
    for (format, codec, channels) in [("ac3", Codec::Ac3, 6), ("eac3", Codec::Eac3, 2)] {
        let name = format!("ffmpeg.{format}");
        let path = ffmpeg(48_000, channels, &["-c:a", format, "-f", format], &name);
        let (_, samples) = demux(&path, codec, 48_000, channels);
        assert_same_frames(&path, &samples, 0);
        assert_eq!(
            samples[1].pts,
            Some(32_000_000),
            "{name}: 1536 samples a frame"
        );
        fuzz_copy(&path);
    }
}

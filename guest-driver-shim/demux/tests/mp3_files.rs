//! MP3 (and MP2) files as lame, ffmpeg and GStreamer write them: frames
//! as ffprobe sees them, the gapless counts of LAME headers and the clips
//! GStreamer's mpegaudioparse marks, clear refusals of what the device
//! cannot decode, and truncation and corruption of every file.

mod common;

use std::path::Path;

use common::audio::{assert_same_frames, demux, from_sine_wav, open_err};
use common::tools::{ffmpeg, fuzz_copy, gst};
use redir_demux::Codec;

/// Who wrote an MP3's LAME header, which decides whether GStreamer uses it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LameTag {
    /// Signed "LAME": mpegaudioparse clips delay + 529 samples of decoder
    /// delay at the start and padding - 529 at the end.
    Lame,
    /// Signed "Lavc" (ffmpeg): mpegaudioparse 1.22 ignores it and plays
    /// every decoded sample, where ffmpeg's own player trims the delay and
    /// padding. The guest follows GStreamer: no clips.
    Lavc,
}

/// An MP3 from an encoder that writes a LAME header: every frame found,
/// frames minus priming minus padding is exactly the input's length, and
/// the per-frame clips are what GStreamer's mpegaudioparse marks.
fn mp3_gapless(path: &Path, rate: u32, channels: u32, input_samples: u64, tag: LameTag) {
    let (track, samples) = demux(path, Codec::Mp3, rate, channels);
    assert_same_frames(path, &samples, 0);
    let per_frame = if rate >= 32_000 { 1152 } else { 576 };
    let decoded = samples.len() as u64 * per_frame;
    assert!(track.start_trim > 0, "LAME header read");
    assert_eq!(
        decoded - track.start_trim - track.end_trim,
        input_samples,
        "{}: delay {} padding {}",
        path.display(),
        track.start_trim,
        track.end_trim
    );
    let (head, tail): (u64, u64) = samples.iter().fold((0, 0), |(h, t), s| {
        (h + u64::from(s.clip.start), t + u64::from(s.clip.end))
    });
    match tag {
        LameTag::Lame => {
            assert_eq!(head, track.start_trim + 529, "{}", path.display());
            assert_eq!(tail, track.end_trim - 529, "{}", path.display());
            assert_eq!(decoded - head - tail, input_samples);
            assert!(!samples[0].clip.is_none() && !samples.last().unwrap().clip.is_none());
        }
        LameTag::Lavc => assert_eq!((head, tail), (0, 0), "{}", path.display()),
    }
    fuzz_copy(path);
}

#[test]
fn mp3_lame_cbr_with_id3v2_and_id3v1() {
    let path = from_sine_wav(
        "lame",
        &[
            "--quiet",
            "-b",
            "128",
            "--tt",
            "Title",
            "--ta",
            "Artist",
            "--add-id3v2",
            "{wav}",
            "{out}",
        ],
        "lame-cbr.mp3",
    );
    let data = std::fs::read(&path).expect("read");
    assert!(data.starts_with(b"ID3") && data[data.len() - 128..].starts_with(b"TAG"));
    mp3_gapless(&path, 44_100, 2, 44_100, LameTag::Lame);
}

#[test]
fn mp3_lame_vbr() {
    let path = from_sine_wav(
        "lame",
        &["--quiet", "-V", "2", "{wav}", "{out}"],
        "lame-vbr.mp3",
    );
    mp3_gapless(&path, 44_100, 2, 44_100, LameTag::Lame);
}

#[test]
fn mp3_lame_crc_protected() {
    // With -p every frame has a CRC, yet LAME writes the Info tag right
    // after the side information as if it had none, where mpegaudioparse
    // (and ffmpeg) look for it.
    let path = from_sine_wav("lame", &["--quiet", "-p", "{wav}", "{out}"], "lame-crc.mp3");
    let data = std::fs::read(&path).expect("read");
    assert_eq!(data[1] & 1, 0, "CRC-protected");
    mp3_gapless(&path, 44_100, 2, 44_100, LameTag::Lame);
}

#[test]
fn mp3_ffmpeg() {
    let path = ffmpeg(
        44_100,
        2,
        &["-c:a", "libmp3lame", "-b:a", "128k"],
        "ffmpeg.mp3",
    );
    mp3_gapless(&path, 44_100, 2, 44_100, LameTag::Lavc);
}

#[test]
fn mp3_ffmpeg_mpeg2_mono() {
    let path = ffmpeg(
        22_050,
        1,
        &["-c:a", "libmp3lame", "-b:a", "32k"],
        "ffmpeg-22k.mp3",
    );
    mp3_gapless(&path, 22_050, 1, 22_050, LameTag::Lavc);
    let (_, samples) = demux(&path, Codec::Mp3, 22_050, 1);
    assert_eq!(samples[1].pts, Some(576 * 1_000_000_000 / 22_050));
}

#[test]
fn mp3_gstreamer_with_xing_and_id3v2() {
    let path = gst(
        "audiotestsrc num-buffers=20 samplesperbuffer=1152 ! audio/x-raw,rate=48000,channels=2 \
         ! lamemp3enc ! xingmux ! id3v2mux",
        "gst.mp3",
    );
    let (_, samples) = demux(&path, Codec::Mp3, 48_000, 2);
    assert_same_frames(&path, &samples, 0);
    fuzz_copy(&path);
}

#[test]
fn mp2_plays_as_mp2() {
    let path = ffmpeg(48_000, 2, &["-c:a", "mp2"], "ffmpeg.mp2");
    let (track, samples) = demux(&path, Codec::Mp2, 48_000, 2);
    assert_same_frames(&path, &samples, 0);
    assert_eq!(samples[1].pts, Some(24_000_000), "1152 samples a frame");
    assert_eq!((track.start_trim, track.end_trim), (0, 0));
    fuzz_copy(&path);
}

#[test]
fn free_format_is_refused_by_name() {
    // Free format: Layer III headers with bitrate index 0.
    let scratch = common::scratch("free-format");
    let dir = scratch.path();
    let free = dir.join("free.mp3");
    let mut data = Vec::new();
    for _ in 0..8 {
        data.extend_from_slice(&[0xFF, 0xFB, 0x00, 0x00]);
        data.resize(data.len() + 400, 0x55);
    }
    std::fs::write(&free, &data).expect("write");
    let err = open_err(&free);
    assert!(err.contains("free-format"), "{err}");
}

#[test]
fn mp3_with_garbage_in_the_middle_names_the_offset() {
    let path = ffmpeg(
        44_100,
        2,
        &["-c:a", "libmp3lame", "-b:a", "128k"],
        "ffmpeg.mp3",
    );
    let mut data = std::fs::read(&path).expect("read");
    let at = data.len() / 2;
    let (_, samples) = demux(&path, Codec::Mp3, 44_100, 2);
    // Overwrite the header of the frame that starts nearest the middle.
    let mut pos = data.len() - samples.iter().map(|s| s.data.len()).sum::<usize>();
    let mut hit = 0;
    for s in &samples {
        if pos >= at {
            hit = pos;
            break;
        }
        pos += s.data.len();
    }
    data[hit..hit + 4].copy_from_slice(b"junk");
    let scratch = common::scratch("mp3-junk");
    let bad = scratch.path().join("junk.mp3");
    std::fs::write(&bad, &data).expect("write");
    let mut d = redir_demux::open(&bad).expect("opens");
    let err = loop {
        match d.next_sample() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("damage not reported"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(err.contains(&format!("at byte {hit}")), "{err}");
}

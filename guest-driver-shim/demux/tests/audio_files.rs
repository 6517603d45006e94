//! MP3, ADTS AAC, native FLAC and WAV files as ffmpeg, lame, the flac tool
//! and GStreamer write them: frames, sizes and times as ffprobe's demuxers
//! see them, the gapless counts of LAME headers, clear refusals of what the
//! device cannot decode, and truncation and corruption of every file.

mod common;

use std::path::Path;

use common::tools::{ffmpeg, ffprobe_packet_sizes, fuzz_copy, gst, made_by, sine_wav};
use redir_demux::{Codec, Sample, Track};

/// Demuxes `path` (one audio track) and checks what every file must pass.
fn demux(path: &Path, codec: Codec, rate: u32, channels: u32) -> (Track, Vec<Sample>) {
    let mut d = common::open_checked(path);
    assert_eq!(d.tracks().len(), 1);
    let track = d.tracks()[0].clone();
    assert_eq!(
        (track.codec, track.sample_rate, track.channels),
        (codec, rate, channels),
        "{}",
        path.display()
    );
    let mut samples = Vec::new();
    while let Some(s) = d.next_sample().expect("sample") {
        samples.push(s);
    }
    assert!(!samples.is_empty());
    // Times count samples; durations are rounded to 1 ns each.
    let mut end = 0u64;
    for (i, s) in samples.iter().enumerate() {
        assert!(s.keyframe && !s.data.is_empty());
        let pts = s.pts.expect("pts");
        assert!(
            pts.abs_diff(end) <= i as u64,
            "{}: time {pts} after durations summing to {end}",
            path.display()
        );
        end += s.duration.expect("duration");
    }
    (track, samples)
}

/// Our frames are ffprobe's packets, `header` bytes shorter each.
fn assert_same_frames(path: &Path, samples: &[Sample], header: usize) {
    let ours: Vec<usize> = samples.iter().map(|s| s.data.len() + header).collect();
    assert_eq!(
        ours,
        ffprobe_packet_sizes(path, "a:0"),
        "{}: frames",
        path.display()
    );
}

fn open_err(path: &Path) -> String {
    redir_demux::open(path).err().expect("refused").to_string()
}

/// `program` run on one second of stereo 44.1 kHz sine as WAV (`{wav}` in
/// `args`), writing `{out}`: the lame and flac tool files.
fn from_sine_wav(program: &str, args: &[&str], name: &str) -> std::path::PathBuf {
    let wav = sine_wav();
    let wav = wav.to_str().expect("utf-8");
    let args: Vec<&str> = args
        .iter()
        .map(|&a| if a == "{wav}" { wav } else { a })
        .collect();
    made_by(program, &args, name)
}

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

/// A 16-bit PCM WAV: every byte of the data chunk, in about 20 ms buffers.
fn wav_pcm(path: &Path, rate: u32, channels: u32, frames: u64) {
    wav_pcm_as(path, Codec::PcmS16le, rate, channels, frames);
}

/// A PCM WAV of `codec`: every byte of the data chunk, in about 20 ms
/// buffers; returns the codec data (the channel mask, if any).
fn wav_pcm_as(path: &Path, codec: Codec, rate: u32, channels: u32, frames: u64) -> Vec<u8> {
    let (track, samples) = demux(path, codec, rate, channels);
    let bytes: usize = samples.iter().map(|s| s.data.len()).sum();
    let sample_bytes = codec.pcm_sample_bytes().expect("a PCM codec");
    assert_eq!(
        bytes as u64,
        frames * u64::from(sample_bytes) * u64::from(channels)
    );
    assert_eq!(samples[1].pts, Some(20_000_000));
    fuzz_copy(path);
    track.codec_data
}

/// The channel mask a WAV's codec data gives.
fn mask(codec_data: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(codec_data).ok().map(u32::from_le_bytes)
}

#[test]
fn wav_ffmpeg_pcm() {
    wav_pcm(&sine_wav(), 44_100, 2, 44_100);
}

#[test]
fn wav_ffmpeg_extensible_5_1() {
    let path = ffmpeg(48_000, 6, &["-c:a", "pcm_s16le"], "ffmpeg-51.wav");
    let data = std::fs::read(&path).expect("read");
    assert_eq!(&data[20..22], &[0xFE, 0xFF], "WAVE_FORMAT_EXTENSIBLE");
    let file_mask = u32::from_le_bytes([data[40], data[41], data[42], data[43]]);
    let codec_data = wav_pcm_as(&path, Codec::PcmS16le, 48_000, 6, 48_000);
    assert_eq!(
        mask(&codec_data),
        Some(file_mask),
        "the file's channel mask"
    );
}

#[test]
fn wav_pcm_8_24_32_bit_and_float_play_as_their_codecs() {
    for (name, codec) in [
        ("pcm_u8", Codec::PcmU8),
        ("pcm_s24le", Codec::PcmS24le),
        ("pcm_s32le", Codec::PcmS32le),
        ("pcm_f32le", Codec::PcmF32le),
    ] {
        let path = ffmpeg(44_100, 2, &["-c:a", name], &format!("{name}.wav"));
        wav_pcm_as(&path, codec, 44_100, 2, 44_100);
    }
}

#[test]
fn wav_5_1_masks_back_and_side_are_carried() {
    // ffmpeg's "5.1" is FL FR FC LFE BL BR (0x3F), "5.1(side)" has side
    // surrounds (0x60F): wavparse gives those positions, and so must the
    // client's caps.
    for (layout, want, codec, pcm) in [
        ("5.1", 0x3F, "pcm_s24le", Codec::PcmS24le),
        ("5.1(side)", 0x60F, "pcm_f32le", Codec::PcmF32le),
    ] {
        let name = format!("{codec}-{want:x}.wav");
        let path = ffmpeg(
            48_000,
            6,
            &["-c:a", codec, "-channel_layout", layout],
            &name,
        );
        let codec_data = wav_pcm_as(&path, pcm, 48_000, 6, 48_000);
        assert_eq!(mask(&codec_data), Some(want), "{layout}");
    }
}

#[test]
fn wav_gstreamer() {
    let path = gst(
        "audiotestsrc num-buffers=10 samplesperbuffer=4800 ! audio/x-raw,format=S16LE,rate=48000,channels=2 \
         ! wavenc",
        "gst.wav",
    );
    wav_pcm(&path, 48_000, 2, 48_000);
}

/// GStreamer and ffmpeg disagree here: ffmpeg writes nBlockAlign 1152 for
/// MP3 in WAV, and GStreamer's wavparse passes on whole blocks only, so a
/// local player never decodes the frames in the last partial block, where
/// ffprobe lists them. The demuxer follows GStreamer.
#[test]
fn wav_with_mp3_inside() {
    let path = ffmpeg(
        44_100,
        2,
        &["-c:a", "libmp3lame", "-f", "wav"],
        "mp3-in.wav",
    );
    let (_, samples) = demux(&path, Codec::Mp3, 44_100, 2);
    assert_frames_in_whole_blocks(&path, &samples, 1152);
    fuzz_copy(&path);
}

/// Our frames are ffprobe's up to the last whole `align`-byte block of the
/// data chunk (what wavparse passes on).
fn assert_frames_in_whole_blocks(path: &Path, samples: &[Sample], align: u32) {
    let data = std::fs::read(path).expect("read");
    let at = data
        .windows(4)
        .position(|w| w == b"data")
        .expect("data chunk");
    let len = u32::from_le_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]);
    let whole = usize::try_from(len - len % align).expect("size");
    let mut end = 0;
    let in_whole_blocks: Vec<usize> = ffprobe_packet_sizes(path, "a:0")
        .into_iter()
        .take_while(|&n| {
            end += n;
            end <= whole
        })
        .collect();
    let ours: Vec<usize> = samples.iter().map(|s| s.data.len()).collect();
    assert_eq!(ours, in_whole_blocks, "{}", path.display());
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

#[test]
fn wav_mp2_and_ac3() {
    for (codec, tag, name, ours, channels) in [
        ("mp2", 0x50u16, "ffmpeg-mp2.wav", Codec::Mp2, 2),
        ("ac3", 0x2000, "ffmpeg-ac3.wav", Codec::Ac3, 6),
    ] {
        let path = ffmpeg(48_000, channels, &["-c:a", codec], name);
        let data = std::fs::read(&path).expect("read");
        let le16 = |at: usize| u16::from_le_bytes([data[at], data[at + 1]]);
        // Above two channels ffmpeg writes WAVE_FORMAT_EXTENSIBLE, the tag
        // starting the SubFormat GUID.
        let written = if le16(20) == 0xFFFE {
            le16(44)
        } else {
            le16(20)
        };
        assert_eq!(written, tag, "{name}");
        let (_, samples) = demux(&path, ours, 48_000, channels);
        // As for MP3 in WAV, GStreamer decodes whole nBlockAlign blocks
        // only (ffmpeg writes 3840 for AC-3; MP2's frames fill them).
        let align = u32::from(le16(32));
        assert_frames_in_whole_blocks(&path, &samples, align);
        fuzz_copy(&path);
    }
}

#[test]
fn wav_other_pcm_is_refused_by_name() {
    for (codec, name) in [
        ("pcm_f64le", "PCM 64-bit float"),
        ("pcm_alaw", "G.711 A-law"),
    ] {
        let path = ffmpeg(44_100, 2, &["-c:a", codec], &format!("{codec}.wav"));
        let err = open_err(&path);
        assert!(
            err.contains(&format!("codec not supported by the device: {name}")),
            "{err}"
        );
    }
}

#[test]
fn formats_are_found_by_content_not_name() {
    let scratch = common::scratch("renamed");
    let dir = scratch.path();
    for (file, codec) in [
        (
            ffmpeg(44_100, 2, &["-c:a", "libmp3lame"], "ffmpeg.mp3"),
            Codec::Mp3,
        ),
        (
            ffmpeg(44_100, 2, &["-c:a", "aac", "-f", "adts"], "plain.aac"),
            Codec::Aac,
        ),
        (
            ffmpeg(44_100, 2, &["-c:a", "flac"], "ffmpeg.flac"),
            Codec::Flac,
        ),
        (sine_wav(), Codec::PcmS16le),
    ] {
        let renamed = dir.join(format!("{codec}.bin"));
        std::fs::copy(&file, &renamed).expect("copy");
        let d = redir_demux::open(&renamed).unwrap_or_else(|e| panic!("{codec}: {e}"));
        assert_eq!(d.tracks()[0].codec, codec);
    }
}

//! WAV files as ffmpeg and GStreamer write them: PCM of every sample
//! format the device plays and its channel masks, compressed audio inside
//! (MP3, MP2, AC-3) in the whole blocks GStreamer's wavparse passes on,
//! clear refusals of other PCM, and truncation and corruption of every
//! file.

mod common;

use std::path::Path;

use common::audio::{demux, open_err};
use common::tools::{ffmpeg, ffprobe_packet_sizes, fuzz_copy, gst, sine_wav};
use redir_demux::{Codec, Sample};

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

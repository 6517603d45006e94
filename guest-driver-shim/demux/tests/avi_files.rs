//! AVI files as users have them: ffmpeg's (MPEG-4 Part 2 tagged XVID,
//! libxvid, B-frames; H.264; MP3, MP2, AC-3 and PCM audio) and GStreamer's
//! `avimux`. Video chunks, their sizes and keyframe flags must be
//! ffprobe's; times are frame numbers at the stream's rate, as GStreamer's
//! `avidemux` gives them (a PTS on keyframes only: AVI stores none, the
//! decoder orders B-frames); audio frames are ffprobe's; cut and flipped
//! files never panic.

mod common;

use std::path::{Path, PathBuf};

use common::tools::{VIDEO_AND_SINE, ffmpeg_with, ffprobe_key_packets, fuzz_copy, gst};
use redir_demux::{Codec, Sample};

/// `ffmpeg` of 2 s of 320x240 test video at 25 fps and a 48 kHz sine.
fn ffmpeg_avi(video: &[&str], audio: &[&str], name: &str) -> PathBuf {
    let mut args = video.to_vec();
    args.extend_from_slice(audio);
    args.extend(["-ac", "2", "-f", "avi"]);
    ffmpeg_with(&VIDEO_AND_SINE, &args, name)
}

/// Demuxes `path`: the codecs must be `codecs` (video first), the video
/// as ffprobe sees it at `fps` frames a second; returns the audio.
fn check(path: &Path, codecs: [Codec; 2], fps: u64) -> Vec<Sample> {
    let mut d = common::open_checked(path);
    let tracks = d.tracks().to_vec();
    let got: Vec<Codec> = tracks.iter().map(|t| t.codec).collect();
    assert_eq!(got, codecs, "{}", path.display());
    assert_eq!((tracks[0].width, tracks[0].height), (320, 240));
    assert_eq!((tracks[1].sample_rate, tracks[1].channels), (48_000, 2));
    let mut samples = Vec::new();
    while let Some(s) = d.next_sample().expect("sample") {
        samples.push(s);
    }
    // In time order even where the file is not interleaved (gst-launch's
    // avimux without queues writes all the audio first), as avidemux reads.
    let times: Vec<u64> = samples.iter().map(|s| s.dts.expect("dts")).collect();
    for w in times.windows(2) {
        assert!(w[1] + 50_000_000 >= w[0], "out of time order: {w:?}");
    }
    let (video, audio): (Vec<Sample>, Vec<Sample>) =
        samples.into_iter().partition(|s| s.track == tracks[0].id);
    let ours: Vec<(usize, bool)> = video.iter().map(|s| (s.data.len(), s.keyframe)).collect();
    assert_eq!(
        ours,
        ffprobe_key_packets(path, "v:0"),
        "video chunks and keyframes"
    );
    for s in &video {
        let dts = s.dts.expect("dts");
        let frame = (dts * fps).div_ceil(1_000_000_000);
        assert_eq!(dts, frame * 1_000_000_000 / fps, "frame times at {fps} fps");
        assert_eq!(s.pts, s.keyframe.then_some(dts), "PTS only on keyframes");
    }
    fuzz_copy(path);
    audio
}

/// Compressed audio: frames as ffprobe's, times counting samples.
fn check_frames(path: &Path, audio: &[Sample], samples_per_frame: u64) {
    let ours: Vec<usize> = audio.iter().map(|s| s.data.len()).collect();
    let theirs: Vec<usize> = ffprobe_key_packets(path, "a:0")
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(ours, theirs, "audio frames");
    for (i, s) in audio.iter().enumerate() {
        assert_eq!(s.pts, Some(i as u64 * samples_per_frame * 1_000_000 / 48));
    }
}

#[test]
fn ffmpeg_mpeg4_tagged_xvid_with_mp3() {
    let path = ffmpeg_avi(
        &["-c:v", "mpeg4", "-vtag", "xvid"],
        &["-c:a", "libmp3lame"],
        "ffmpeg-xvid-mp3.avi",
    );
    let audio = check(&path, [Codec::Mpeg4Part2, Codec::Mp3], 25);
    check_frames(&path, &audio, 1152);
}

#[test]
fn ffmpeg_mpeg4_with_b_frames_and_mp2() {
    let path = ffmpeg_avi(
        &["-c:v", "mpeg4", "-vtag", "xvid", "-bf", "2"],
        &["-c:a", "mp2"],
        "ffmpeg-xvid-bf-mp2.avi",
    );
    let audio = check(&path, [Codec::Mpeg4Part2, Codec::Mp2], 25);
    check_frames(&path, &audio, 1152);
}

#[test]
fn ffmpeg_libxvid_with_ac3() {
    let path = ffmpeg_avi(
        &["-c:v", "libxvid"],
        &["-c:a", "ac3"],
        "ffmpeg-libxvid-ac3.avi",
    );
    let audio = check(&path, [Codec::Mpeg4Part2, Codec::Ac3], 25);
    check_frames(&path, &audio, 1536);
}

#[test]
fn ffmpeg_h264_with_b_frames_and_pcm() {
    let path = ffmpeg_avi(
        &["-c:v", "libx264", "-preset", "ultrafast", "-bf", "2"],
        &["-c:a", "pcm_s16le"],
        "ffmpeg-x264-pcm.avi",
    );
    let audio = check(&path, [Codec::H264, Codec::PcmS16le], 25);
    let bytes: usize = audio.iter().map(|s| s.data.len()).sum();
    assert_eq!(bytes, 2 * 48_000 * 4, "two seconds of stereo s16");
}

#[test]
fn gstreamer_avimux_mpeg4_with_mp3() {
    let path = gst(
        &format!(
            "{} ! avenc_mpeg4 ! avimux name=m {} ! audioconvert ! lamemp3enc ! m. m.",
            common::VIDEO,
            common::AUDIO48
        ),
        "gst-mpeg4-mp3.avi",
    );
    let audio = check(&path, [Codec::Mpeg4Part2, Codec::Mp3], 30);
    assert!(!audio.is_empty());
}

#[test]
fn gstreamer_avimux_h264_with_pcm() {
    let path = gst(
        &format!(
            "{} ! x264enc speed-preset=ultrafast ! avimux name=m {},format=S16LE ! m. m.",
            common::VIDEO,
            common::AUDIO48
        ),
        "gst-h264-pcm.avi",
    );
    let audio = check(&path, [Codec::H264, Codec::PcmS16le], 30);
    let bytes: usize = audio.iter().map(|s| s.data.len()).sum();
    assert_eq!(bytes, 50 * 960 * 4, "one second of stereo s16");
}

#[test]
fn unsupported_video_is_refused_by_name() {
    let path = ffmpeg_avi(&["-c:v", "msmpeg4"], &["-c:a", "mp2"], "ffmpeg-msmpeg4.avi");
    let err = redir_demux::open(&path).err().expect("refused").to_string();
    assert!(err.contains("Microsoft MPEG-4"), "{err}");
}

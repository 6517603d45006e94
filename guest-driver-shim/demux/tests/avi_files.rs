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

/// The RIFF chunks of `b` (id, whole chunk with header and padding).
fn chunks(mut b: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let len = u32::from_le_bytes(b[4..8].try_into().expect("4 bytes")) as usize;
        let whole = (8 + len + (len & 1)).min(b.len());
        out.push((b[..4].try_into().expect("4 bytes"), &b[..whole]));
        b = &b[whole..];
    }
    out
}

fn list(kind: &[u8; 4], id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = kind.to_vec();
    out.extend_from_slice(&u32::try_from(body.len() + 4).expect("len").to_le_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(body);
    out
}

#[test]
fn opendml_avix_rec_lists_and_junk_read_as_the_plain_file() {
    // An OpenDML file over 1 GiB goes on in `RIFF AVIX` chunks; made
    // small here from ffmpeg's file: its movi chunks split between the
    // first RIFF and an AVIX, the second half in `LIST rec ` lists with
    // JUNK between.
    let plain = ffmpeg_avi(
        &["-c:v", "mpeg4", "-vtag", "xvid"],
        &["-c:a", "libmp3lame"],
        "ffmpeg-xvid-mp3.avi",
    );
    let data = std::fs::read(&plain).expect("file");
    let top = chunks(&data[12..]);
    let movi = top
        .iter()
        .find(|(id, c)| id == b"LIST" && &c[8..12] == b"movi")
        .expect("movi")
        .1;
    let inner = chunks(&movi[12..]);
    let (first, second) = inner.split_at(inner.len() / 2);
    let mut riff = data[..12].to_vec();
    for (id, c) in &top {
        if id == b"LIST" && &c[8..12] == b"movi" {
            riff.extend(list(b"LIST", b"movi", &first.concat_chunks()));
        } else {
            riff.extend_from_slice(c);
        }
    }
    let mut rest = Vec::new();
    for pair in second.chunks(2) {
        rest.extend(list(b"LIST", b"rec ", &pair.concat_chunks()));
        rest.extend_from_slice(b"JUNK\x03\x00\x00\x00abc\x00");
    }
    riff.extend(list(b"RIFF", b"AVIX", &list(b"LIST", b"movi", &rest)));
    let dir = common::scratch("avix");
    let avix = dir.path().join("split.avi");
    std::fs::write(&avix, &riff).expect("write");
    let all = |path: &Path| {
        let mut d = common::open_checked(path);
        let mut out = Vec::new();
        while let Some(s) = d.next_sample().expect("sample") {
            out.push(s);
        }
        (d.tracks().to_vec(), out)
    };
    let (tracks, samples) = all(&avix);
    let (plain_tracks, plain_samples) = all(&plain);
    assert_eq!(tracks, plain_tracks);
    assert_eq!(samples.len(), plain_samples.len());
    assert_eq!(samples, plain_samples);
    fuzz_copy(&avix);
}

trait ConcatChunks {
    fn concat_chunks(&self) -> Vec<u8>;
}

impl ConcatChunks for [([u8; 4], &[u8])] {
    fn concat_chunks(&self) -> Vec<u8> {
        self.iter().flat_map(|c| c.1.iter().copied()).collect()
    }
}

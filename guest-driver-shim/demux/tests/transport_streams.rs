//! MPEG-TS files as ffmpeg and GStreamer's mpegtsmux write them: the
//! streams a local player picks, frames as ffprobe sees them, 33-bit time
//! stamp wrap, M2TS packets, lost packets flagged as discontinuities,
//! codecs the device lacks refused by name, and cut and flipped files.

mod common;

use std::path::Path;

use common::tools::{ffmpeg_with, ffprobe_packet_sizes, ffprobe_packets, fuzz_copy, gst};
use redir_demux::{Clip, Codec, Sample, Track};

const VIDEO_IN: [&str; 4] = [
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=320x240:rate=25:duration=1",
];
const AUDIO_IN: [&str; 4] = [
    "-f",
    "lavfi",
    "-i",
    "sine=frequency=440:sample_rate=48000:duration=1",
];

fn inputs() -> Vec<&'static str> {
    VIDEO_IN.iter().chain(AUDIO_IN.iter()).copied().collect()
}

/// All tracks and samples of `path`.
fn demux_all(path: &Path) -> (Vec<Track>, Vec<Sample>) {
    let mut d = common::open_checked(path);
    let tracks = d.tracks().to_vec();
    let mut samples = Vec::new();
    while let Some(s) = d.next_sample().expect("sample") {
        samples.push(s);
    }
    (tracks, samples)
}

fn of(samples: &[Sample], track: &Track) -> Vec<Sample> {
    samples
        .iter()
        .filter(|s| s.track == track.id)
        .cloned()
        .collect()
}

/// A video + audio TS: codecs, picture size, frames as ffprobe's, decode
/// times that only go forward, a keyframe first.
fn check_av(path: &Path, video: Codec, audio: Codec, audio_header: usize) -> Vec<Sample> {
    let (tracks, samples) = demux_all(path);
    let codecs: Vec<Codec> = tracks.iter().map(|t| t.codec).collect();
    assert_eq!(codecs, [video, audio], "{}", path.display());
    assert_eq!((tracks[0].width, tracks[0].height), (320, 240));
    assert_eq!((tracks[1].sample_rate, tracks[1].channels), (48_000, 2));
    let v = of(&samples, &tracks[0]);
    let a = of(&samples, &tracks[1]);
    assert!(v[0].keyframe, "video starts at a keyframe");
    let sizes =
        |s: &[Sample], extra: usize| s.iter().map(|x| x.data.len() + extra).collect::<Vec<_>>();
    // ffmpeg's HEVC parser moves the leading zero of each 4-byte start code
    // to the access unit before; the PES packets are the muxer's own split.
    let ffprobe_video = ffprobe_packet_sizes(path, "v:0");
    assert_eq!(v.len(), ffprobe_video.len(), "video frames");
    assert_eq!(
        sizes(&v, 0).iter().sum::<usize>(),
        ffprobe_video.iter().sum::<usize>()
    );
    assert_eq!(
        sizes(&a, audio_header),
        ffprobe_packet_sizes(path, "a:0"),
        "audio frames"
    );
    // Presentation times as ffprobe reads them (in decode order, relative
    // to the first picture; ffprobe prints microseconds).
    let probe_pts: Vec<f64> = ffprobe_packets(path, "v:0")
        .iter()
        .map(|p| p.0.expect("pts"))
        .collect();
    let ours_pts: Vec<u64> = v.iter().map(|s| s.pts.expect("pts")).collect();
    for (o, p) in ours_pts.iter().zip(&probe_pts) {
        let ours = (*o as f64 - ours_pts[0] as f64) / 1e9;
        let theirs = p - probe_pts[0];
        assert!(
            (ours - theirs).abs() < 2e-6,
            "pts {ours} s, ffprobe {theirs} s"
        );
    }
    for track in [&v, &a] {
        let times: Vec<u64> = track.iter().map(|s| s.dts.expect("dts")).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "decode times go forward"
        );
        assert!(times[0] < 1_000_000_000, "times start near 0: {}", times[0]);
        assert!(
            track.iter().all(|s| !s.discont),
            "an undamaged file has no discontinuity"
        );
    }
    samples
}

#[test]
fn ts_ffmpeg_h264_aac() {
    let path = ffmpeg_with(
        &inputs(),
        &[
            "-c:v", "libx264", "-bf", "2", "-c:a", "aac", "-ac", "2", "-f", "mpegts",
        ],
        "ffmpeg-h264-aac.ts",
    );
    let samples = check_av(&path, Codec::H264, Codec::Aac, 7);
    // ffmpeg times the AAC priming frame one frame before the first
    // picture; GStreamer decodes it and clips its 1024 samples to the
    // segment tsdemux starts at the picture: the track's start trim.
    let d = redir_demux::open(&path).expect("open");
    assert_eq!(d.tracks()[1].start_trim, 1024);
    // The frame is sent first (the client's segment starts at it), marked
    // to drop its 1024 decoded samples; nothing else is cut.
    assert_eq!(samples[0].track, d.tracks()[1].id);
    assert_eq!(
        samples[0].clip,
        Clip {
            start: 1024,
            end: 0
        }
    );
    assert!(samples[1..].iter().all(|s| s.clip.is_none()));
    // B-frames: presentation order differs from decode order.
    assert!(samples.iter().any(|s| s.pts != s.dts));
    fuzz_copy(&path);
}

#[test]
fn ts_ffmpeg_h265_mp3() {
    let path = ffmpeg_with(
        &inputs(),
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error",
            "-c:a",
            "libmp3lame",
            "-ac",
            "2",
            "-f",
            "mpegts",
        ],
        "ffmpeg-h265-mp3.ts",
    );
    check_av(&path, Codec::H265, Codec::Mp3, 0);
    fuzz_copy(&path);
}

/// One second of H.264 and AAC through GStreamer's mpegtsmux with `options`.
fn gst_ts(options: &str, name: &str) -> std::path::PathBuf {
    gst(
        &format!(
            "videotestsrc num-buffers=25 ! video/x-raw,width=320,height=240,framerate=25/1 \
             ! x264enc ! h264parse ! m. audiotestsrc num-buffers=47 samplesperbuffer=1024 \
             ! audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! m. mpegtsmux {options} name=m"
        ),
        name,
    )
}

#[test]
fn ts_gstreamer_h264_aac() {
    let path = gst_ts("", "gst-h264-aac.ts");
    check_av(&path, Codec::H264, Codec::Aac, 7);
    let d = redir_demux::open(&path).expect("open");
    assert_eq!(
        d.tracks()[1].start_trim,
        0,
        "mpegtsmux starts both together"
    );
    fuzz_copy(&path);
}

/// ffmpeg's M2TS mode marks AAC as private data (Blu-ray has no AAC), which
/// players identify by probing; GStreamer's keeps the ADTS stream type.
#[test]
fn m2ts_192_byte_packets() {
    let path = gst_ts("m2ts-mode=true", "gst.m2ts");
    let data = std::fs::read(&path).expect("read");
    assert_eq!((data[4], data[196]), (0x47, 0x47), "M2TS layout");
    check_av(&path, Codec::H264, Codec::Aac, 7);
}

#[test]
fn ts_time_stamps_wrap_at_33_bits() {
    // 2^33 / 90 kHz = 95443.717 s: the clock wraps half a second in.
    let path = ffmpeg_with(
        &inputs(),
        &[
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            "-ac",
            "2",
            "-output_ts_offset",
            "95443.2",
            "-f",
            "mpegts",
        ],
        "ffmpeg-wrap.ts",
    );
    let samples = check_av(&path, Codec::H264, Codec::Aac, 7);
    let last = samples.iter().filter_map(|s| s.dts).max().expect("times");
    assert!(last < 2_000_000_000, "no jump at the wrap: last {last} ns");
}

#[test]
fn ts_lost_packet_is_a_discontinuity() {
    let path = ffmpeg_with(
        &inputs(),
        &["-c:v", "libx264", "-c:a", "aac", "-ac", "2", "-f", "mpegts"],
        "ffmpeg-h264-aac-plain.ts",
    );
    let (tracks, clean) = demux_all(&path);
    let audio_pid = u16::try_from(tracks[1].id).expect("pid");
    let data = std::fs::read(&path).expect("read");
    // Drop the 10th packet of the audio PID that does not start a PES.
    let mut seen = 0;
    let mut cut = None;
    for (i, p) in data.chunks_exact(188).enumerate() {
        let pid = u16::from_be_bytes([p[1] & 0x1F, p[2]]);
        if pid == audio_pid && p[1] & 0x40 == 0 {
            seen += 1;
            if seen == 10 {
                cut = Some(i * 188);
                break;
            }
        }
    }
    let cut = cut.expect("an audio continuation packet");
    let mut damaged = data[..cut].to_vec();
    damaged.extend_from_slice(&data[cut + 188..]);
    let scratch = common::scratch("ts-lost");
    let bad = scratch.path().join("lost.ts");
    std::fs::write(&bad, &damaged).expect("write");
    let (_, samples) = demux_all(&bad);
    let audio = of(&samples, &tracks[1]);
    assert_eq!(
        audio.iter().filter(|s| s.discont).count(),
        1,
        "one flagged sample"
    );
    assert!(
        audio.len() < of(&clean, &tracks[1]).len(),
        "the damaged PES is dropped"
    );
    assert_eq!(
        of(&samples, &tracks[0]).len(),
        of(&clean, &tracks[0]).len(),
        "video untouched"
    );
}

/// DVB's codecs: MPEG-2 video with MPEG-1 Layer II, AC-3 or E-AC-3.
#[test]
fn ts_mpeg2_video_with_mp2_ac3_eac3() {
    for (audio, name, codec) in [
        ("mp2", "ffmpeg-mpeg2-mp2.ts", Codec::Mp2),
        ("ac3", "ffmpeg-mpeg2-ac3.ts", Codec::Ac3),
        ("eac3", "ffmpeg-mpeg2-eac3.ts", Codec::Eac3),
    ] {
        let path = ffmpeg_with(
            &inputs(),
            &[
                "-c:v",
                "mpeg2video",
                "-c:a",
                audio,
                "-ac",
                "2",
                "-f",
                "mpegts",
            ],
            name,
        );
        let samples = check_av(&path, Codec::Mpeg2Video, codec, 0);
        let keys = samples.iter().filter(|s| s.keyframe).count();
        assert!(keys >= 2, "{name}: a keyframe each GOP ({keys})");
        fuzz_copy(&path);
    }
}

/// MPEG-4 Part 2 (as Xvid/DivX encode it): its VOL header is the codec
/// data, every intra VOP after one a keyframe.
#[test]
fn ts_mpeg4_part2_with_mp3() {
    let args: Vec<&str> = "-c:v mpeg4 -c:a libmp3lame -ac 2 -f mpegts"
        .split(' ')
        .collect();
    let path = ffmpeg_with(&inputs(), &args, "ffmpeg-mpeg4-mp3.ts");
    check_av(&path, Codec::Mpeg4Part2, Codec::Mp3, 0);
    let d = redir_demux::open(&path).expect("open");
    assert_eq!(
        &d.tracks()[0].codec_data[..4],
        &[0, 0, 1, 0xB0],
        "VOS first"
    );
    fuzz_copy(&path);
}

#[test]
fn ts_codecs_the_device_lacks_are_refused_by_name() {
    for (audio, name, expected) in [
        (
            ["-c:a", "aac", "-mpegts_flags", "+latm"],
            "latm.ts",
            "AAC in LATM",
        ),
        (["-c:a", "dca", "-strict", "-2"], "dts.ts", "DTS"),
    ] {
        let mut args = vec!["-c:v", "libx264", "-ac", "2"];
        args.extend(audio);
        args.extend(["-f", "mpegts"]);
        let path = ffmpeg_with(&inputs(), &args, name);
        let err = redir_demux::open(&path).err().expect("refused").to_string();
        assert!(
            err.contains(&format!("codec not supported by the device: {expected}")),
            "{name}: {err}"
        );
    }
}

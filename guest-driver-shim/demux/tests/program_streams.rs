//! MPEG-2 program streams (DVD VOB) as ffmpeg's `vob` muxer writes them,
//! and MPEG-1 system streams as its `mpeg` muxer writes them:
//! MPEG-2 video cut into pictures from 2 KiB packs, MP2 audio and AC-3 in
//! private stream 1, frames as ffprobe sees them, the audio before the
//! first picture counted as a start trim, and cut and flipped files.

mod common;

use std::path::Path;

use common::tools::{
    VIDEO_AND_SINE, ffmpeg_with, ffprobe_packet_sizes, ffprobe_packets, fuzz_copy,
};
use redir_demux::{Codec, Sample};

fn vob(audio: &str) -> std::path::PathBuf {
    ffmpeg_with(
        &VIDEO_AND_SINE,
        &["-c:v", "mpeg2video", "-c:a", audio, "-ac", "2", "-f", "vob"],
        &format!("ffmpeg-mpeg2-{audio}.vob"),
    )
}

fn check(path: &Path, audio: Codec) {
    let mut d = common::open_checked(path);
    let tracks = d.tracks().to_vec();
    let codecs: Vec<Codec> = tracks.iter().map(|t| t.codec).collect();
    assert_eq!(codecs, [Codec::Mpeg2Video, audio]);
    assert_eq!((tracks[0].width, tracks[0].height), (320, 240));
    assert_eq!((tracks[1].sample_rate, tracks[1].channels), (48_000, 2));
    let mut samples: Vec<Sample> = Vec::new();
    while let Some(s) = d.next_sample().expect("sample") {
        samples.push(s);
    }
    let of = |id: u32| -> Vec<&Sample> { samples.iter().filter(|s| s.track == id).collect() };
    let (v, a) = (of(tracks[0].id), of(tracks[1].id));
    let probe_v = ffprobe_packet_sizes(path, "v:0");
    assert_eq!(v.len(), probe_v.len(), "pictures");
    assert_eq!(
        v.iter().map(|s| s.data.len()).sum::<usize>(),
        probe_v.iter().sum::<usize>(),
        "video bytes"
    );
    assert!(v[0].keyframe, "starts at a keyframe");
    // A PES time stamp belongs to the first picture that starts in it;
    // a second picture in the same 2 KiB pack has none in the file (as
    // GStreamer's demuxer gives it; ffprobe and mpegvideoparse
    // interpolate). Where there is one, it is ffprobe's.
    let probe_pts: Vec<Option<f64>> = ffprobe_packets(path, "v:0").iter().map(|p| p.0).collect();
    let timed = v.iter().filter(|s| s.pts.is_some()).count();
    assert!(
        timed * 3 >= v.len(),
        "{timed} of {} pictures timed",
        v.len()
    );
    let origin = v[0].pts.expect("first picture timed") as f64 / 1e9 - probe_pts[0].expect("pts");
    for (s, p) in v.iter().zip(&probe_pts) {
        if let (Some(ours), Some(theirs)) = (s.pts, p) {
            let ours = ours as f64 / 1e9 - origin;
            assert!(
                (ours - theirs).abs() < 2e-6,
                "pts {ours} s, ffprobe {theirs} s"
            );
        }
    }
    let ours: Vec<usize> = a.iter().map(|s| s.data.len()).collect();
    assert_eq!(ours, ffprobe_packet_sizes(path, "a:0"), "audio frames");
    // ffmpeg starts the audio a little before the first picture; a local
    // player clips it to the segment that starts there.
    let first = |select| ffprobe_packets(path, select)[0].0.expect("pts");
    let lead = first("v:0") - first("a:0");
    assert!(lead > 0.0, "audio leads by {lead} s");
    let trim = tracks[1].start_trim as f64;
    assert!(
        (trim - lead * 48_000.0).abs() <= 0.5,
        "start trim {trim}, lead {lead} s"
    );
    // Sent as clips of the first frames (GStreamer cuts by time, rounding
    // down), the first of them ahead of the first picture.
    let clipped: u64 = a.iter().map(|s| u64::from(s.clip.start)).sum();
    assert!(
        (clipped as f64 - trim).abs() <= 1.0,
        "clips {clipped}, start trim {trim}"
    );
    assert!(a.iter().all(|s| s.clip.end == 0));
    fuzz_copy(path);
}

#[test]
fn vob_mpeg2_with_mp2() {
    check(&vob("mp2"), Codec::Mp2);
}

#[test]
fn vob_mpeg2_with_ac3_in_private_stream() {
    check(&vob("ac3"), Codec::Ac3);
}

#[test]
fn mpeg1_system_stream_with_mp2() {
    // ffmpeg's `mpeg` muxer: ISO 11172-1 packs and packet headers
    // (stuffing, STD buffer size), MPEG-1 video with B-frames.
    let path = ffmpeg_with(
        &VIDEO_AND_SINE,
        &[
            "-c:v",
            "mpeg1video",
            "-bf",
            "2",
            "-c:a",
            "mp2",
            "-ac",
            "2",
            "-f",
            "mpeg",
        ],
        "ffmpeg-mpeg1-mp2.mpg",
    );
    let head = std::fs::read(&path).expect("file");
    assert_eq!(head[4] >> 4, 2, "an MPEG-1 pack header");
    check(&path, Codec::Mp2);
}

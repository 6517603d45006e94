//! Raw MPEG-1/2 video elementary streams (`.m2v`, `.m1v`) as ffmpeg's
//! `mpeg2video`/`mpeg1video` muxers write them (GStreamer 1.22's MPEG-2
//! encoders, avenc_mpeg2video and mpeg2enc, refuse every frame rate here,
//! so there is no GStreamer-made stream): found by content (a sequence header, not an H.264 start
//! code), pictures and keyframes as ffprobe's parser cuts them, timed from
//! the sequence header's frame rate; cut and flipped files never panic.

mod common;

use std::path::{Path, PathBuf};

use common::tools::{ffmpeg_with, ffprobe_key_packets, fuzz_copy};
use redir_demux::Codec;

fn ffmpeg_es(codec: &str, muxer: &str, name: &str) -> PathBuf {
    ffmpeg_with(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=2",
        ],
        &["-c:v", codec, "-bf", "2", "-f", muxer],
        name,
    )
}

fn check(path: &Path, frames: usize, fps: u64) {
    let (track, samples) = common::check(path, &common::Expect::video(Codec::Mpeg2Video, frames));
    assert_eq!(track.fps, Some((u32::try_from(fps).expect("fps"), 1)));
    let ours: Vec<(usize, bool)> = samples.iter().map(|s| (s.data.len(), s.keyframe)).collect();
    assert_eq!(
        ours,
        ffprobe_key_packets(path, "v:0"),
        "pictures and keyframes"
    );
    for (n, s) in samples.iter().enumerate() {
        assert_eq!(s.dts, Some(n as u64 * 1_000_000_000 / fps), "frame {n}");
        assert_eq!(s.pts, s.keyframe.then_some(s.dts.expect("dts")));
    }
    fuzz_copy(path);
}

#[test]
fn ffmpeg_mpeg2_video_with_b_frames() {
    check(
        &ffmpeg_es("mpeg2video", "mpeg2video", "ffmpeg-bf.m2v"),
        50,
        25,
    );
}

#[test]
fn ffmpeg_mpeg1_video_with_b_frames() {
    check(
        &ffmpeg_es("mpeg1video", "mpeg1video", "ffmpeg-bf.m1v"),
        50,
        25,
    );
}

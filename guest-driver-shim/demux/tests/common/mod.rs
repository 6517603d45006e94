//! Shared helpers of the demuxer tests: clips made with GStreamer at test
//! time (so no binary media is checked in) and the checks every clip gets.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use redir_demux::{Codec, Sample, Track};

pub mod audio;
pub mod containers;
pub mod tools;

/// 30 frames of 320x240 I420 video at 30/1.
pub const VIDEO: &str =
    "videotestsrc num-buffers=30 ! video/x-raw,format=I420,width=320,height=240,framerate=30/1";
/// 50 buffers of 20 ms stereo audio at 48 kHz.
pub const AUDIO48: &str =
    "audiotestsrc num-buffers=50 samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=2";
/// 20 buffers of 1024 samples of stereo audio at 44.1 kHz.
pub const AUDIO44: &str =
    "audiotestsrc num-buffers=20 samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=2";

/// A fresh scratch directory for one test, removed when dropped.
pub use test_support::scratch;

/// Runs `source ! middle ! filesink` and returns the file, cached with the
/// other test files (see [`tools::made_by`]).
pub fn clip(name: &str, pipeline: &str) -> PathBuf {
    let mut args = vec!["-q"];
    args.extend(pipeline.split_whitespace());
    args.extend(["!", "filesink", "location={out}"]);
    tools::made_by("gst-launch-1.0", &args, name)
}

/// What a clip's single track must look like.
pub struct Expect {
    pub codec: Codec,
    pub width: u32,
    pub height: u32,
    pub sample_rate: u32,
    pub channels: u32,
    /// Exact sample count, when the encoder makes it predictable.
    pub count: Option<usize>,
}

impl Expect {
    pub fn video(codec: Codec, count: usize) -> Self {
        Expect {
            codec,
            width: 320,
            height: 240,
            sample_rate: 0,
            channels: 0,
            count: Some(count),
        }
    }

    pub fn audio(codec: Codec, sample_rate: u32, count: Option<usize>) -> Self {
        Expect {
            codec,
            width: 0,
            height: 0,
            sample_rate,
            channels: 2,
            count,
        }
    }
}

/// Opens `path` and checks every track's codec data against the device's rule.
pub fn open_checked(path: &Path) -> Box<dyn redir_demux::Demuxer> {
    let d = redir_demux::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for t in d.tracks() {
        t.codec
            .check_codec_data(&t.codec_data, t.channels)
            .expect("codec data passes the device's check");
    }
    d
}

/// Demuxes `path` and checks track, codec data, count, keyframe and times.
pub fn check(path: &Path, e: &Expect) -> (Track, Vec<Sample>) {
    let mut d = open_checked(path);
    assert_eq!(
        d.tracks().len(),
        1,
        "{}: tracks {:?}",
        path.display(),
        d.tracks()
    );
    let track = d.tracks()[0].clone();
    assert_eq!(track.codec, e.codec);
    assert_eq!((track.width, track.height), (e.width, e.height));
    assert_eq!(
        (track.sample_rate, track.channels),
        (e.sample_rate, e.channels)
    );
    let mut samples = Vec::new();
    while let Some(s) = d.next_sample().expect("sample") {
        assert_eq!(s.track, track.id);
        assert!(!s.data.is_empty());
        samples.push(s);
    }
    if let Some(n) = e.count {
        assert_eq!(samples.len(), n, "{}: sample count", path.display());
    }
    assert!(samples[0].keyframe, "first sample is a keyframe");
    // Without decode times (Matroska), presentation times may reorder
    // (B-frames) but must be distinct for video.
    let mut times: Vec<u64> = samples
        .iter()
        .map(|s| s.dts.or(s.pts).expect("a time"))
        .collect();
    if samples[0].dts.is_none() {
        times.sort_unstable();
    }
    for w in times.windows(2) {
        let (a, b) = (w[0], w[1]);
        if e.codec.is_video() {
            assert!(
                a < b,
                "{}: decode times increase: {a} then {b}",
                path.display()
            );
        } else {
            assert!(
                a <= b,
                "{}: decode times do not go back: {a} then {b}",
                path.display()
            );
        }
    }
    (track, samples)
}

/// Checks a 30/1 video clip's times are in ns: frame n near n * 33.3 ms.
pub fn assert_video_ns(samples: &[Sample]) {
    let t1 = samples[1].dts.or(samples[1].pts).expect("time");
    let t0 = samples[0].dts.or(samples[0].pts).expect("time");
    let step = t1 - t0;
    assert!(
        (33_000_000..=33_400_000).contains(&step) || samples[0].dts.is_none(),
        "frame step {step} ns"
    );
    let last = samples.last().expect("samples");
    let end = last.pts.or(last.dts).expect("time");
    assert!(
        end < 1_100_000_000 && end > 800_000_000,
        "last time {end} ns"
    );
}

/// Sum of audio durations in ns.
pub fn total_duration(samples: &[Sample]) -> u64 {
    samples.iter().map(|s| s.duration.unwrap_or(0)).sum()
}

/// Truncates and corrupts `path` many ways: opening and reading must never
/// panic; an empty or header-only file must be an error.
pub fn fuzz(path: &Path) {
    let data = std::fs::read(path).expect("clip");
    let dir = path.parent().expect("dir");
    let cut = dir.join(format!(
        "cut-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    let mut cases: Vec<Vec<u8>> = Vec::new();
    let steps = 48usize;
    for i in 0..steps {
        let len = data.len() * i / steps;
        cases.push(data[..len].to_vec());
    }
    for len in [1usize, 3, 4, 7, 11, 13, 27, 33, 45, 64, 100, 200, 500] {
        cases.push(data[..len.min(data.len())].to_vec());
    }
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..48 {
        let mut bad = data.clone();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Mostly in the headers, where the parsers are.
            let limit = if seed & 1 == 0 {
                data.len().min(4096)
            } else {
                data.len()
            };
            let at = usize::try_from(seed >> 20).unwrap_or(0) % limit;
            bad[at] = bad[at].wrapping_add(u8::try_from(seed & 0x7F).unwrap_or(1) | 1);
        }
        cases.push(bad);
    }
    for (i, case) in cases.iter().enumerate() {
        std::fs::write(&cut, case).expect("write");
        let Ok(mut d) = redir_demux::open(&cut) else {
            continue;
        };
        assert!(case.len() > 12, "case {i}: {} bytes opened", case.len());
        let mut n = 0;
        while let Ok(Some(_)) = d.next_sample() {
            n += 1;
            assert!(n < 1_000_000, "runaway demuxer");
        }
    }
}

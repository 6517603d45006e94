//! What the tests of audio files share: demuxing a one-track audio file
//! with the checks every file must pass, comparing its frames with
//! ffprobe's packets, the text of a refusal, and files made from the sine
//! WAV by an encoder (lame, the flac tool).

use std::path::{Path, PathBuf};

use redir_demux::{Codec, Sample, Track};

use super::tools::{ffprobe_packet_sizes, made_by, sine_wav};

/// Demuxes `path` (one audio track) and checks what every file must pass.
pub fn demux(path: &Path, codec: Codec, rate: u32, channels: u32) -> (Track, Vec<Sample>) {
    let mut d = super::open_checked(path);
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
pub fn assert_same_frames(path: &Path, samples: &[Sample], header: usize) {
    let ours: Vec<usize> = samples.iter().map(|s| s.data.len() + header).collect();
    assert_eq!(
        ours,
        ffprobe_packet_sizes(path, "a:0"),
        "{}: frames",
        path.display()
    );
}

pub fn open_err(path: &Path) -> String {
    redir_demux::open(path).err().expect("refused").to_string()
}

/// `program` run on one second of stereo 44.1 kHz sine as WAV (`{wav}` in
/// `args`), writing `{out}`: the lame and flac tool files.
pub fn from_sine_wav(program: &str, args: &[&str], name: &str) -> PathBuf {
    let wav = sine_wav();
    let wav = wav.to_str().expect("utf-8");
    let args: Vec<&str> = args
        .iter()
        .map(|&a| if a == "{wav}" { wav } else { a })
        .collect();
    made_by(program, &args, name)
}

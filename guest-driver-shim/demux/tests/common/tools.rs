//! Test files made by the tools users' files come from (ffmpeg, lame, the
//! flac tool, GStreamer), cached between runs in
//! `$XDG_CACHE_HOME/vhost-device-media/clips-demux` (default `~/.cache`),
//! named by a hash of the command so a changed command makes a new file;
//! and what ffprobe says about them, the reference the tests compare with.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cache directory.
pub fn cache_dir() -> PathBuf {
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"),
    };
    base.join("vhost-device-media").join("clips-demux")
}

/// Runs `program args`, `{out}` in `args` standing for the output file,
/// unless the file is cached; returns the file, named `name`.
pub fn made_by(program: &str, args: &[&str], name: &str) -> PathBuf {
    let mut h = DefaultHasher::new();
    (program, args).hash(&mut h);
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).expect("cache dir");
    let path = dir.join(format!("{:016x}-{name}", h.finish()));
    if path.is_file() {
        return path;
    }
    // Unique per test thread; the extension stays so tools pick the format.
    let partial = dir.join(format!(
        "partial-{}-{:?}-{name}",
        std::process::id(),
        std::thread::current().id()
    ));
    let partial_str = partial.display().to_string();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{out}", &partial_str))
        .collect();
    let out = Command::new(program)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (Debian package): {e}"));
    assert!(
        out.status.success() && partial.is_file(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, &path).expect("rename");
    path
}

/// `ffmpeg <inputs> <args> {out}`.
pub fn ffmpeg_with(inputs: &[&str], args: &[&str], name: &str) -> PathBuf {
    let mut all = vec!["-hide_banner", "-loglevel", "error", "-y"];
    all.extend_from_slice(inputs);
    all.extend_from_slice(args);
    all.push("{out}");
    made_by("ffmpeg", &all, name)
}

/// ffmpeg inputs: 2 s of 320x240 test video at 25 fps and of a 440 Hz
/// sine at 48 kHz.
pub const VIDEO_AND_SINE: [&str; 8] = [
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=320x240:rate=25:duration=2",
    "-f",
    "lavfi",
    "-i",
    "sine=frequency=440:sample_rate=48000:duration=2",
];

/// `ffmpeg -i <lavfi source> <args> {out}`: one second of a 440 Hz sine at
/// `rate` Hz in `channels` channels, encoded as `args` say.
pub fn ffmpeg(rate: u32, channels: u32, args: &[&str], name: &str) -> PathBuf {
    let src = format!("sine=frequency=440:sample_rate={rate}:duration=1");
    let ch = channels.to_string();
    let mut all = vec![
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        &src,
        "-ac",
        &ch,
    ];
    all.extend_from_slice(args);
    all.push("{out}");
    made_by("ffmpeg", &all, name)
}

/// One second of stereo 16-bit 44.1 kHz sine as WAV, input of lame and flac.
pub fn sine_wav() -> PathBuf {
    ffmpeg(44_100, 2, &["-c:a", "pcm_s16le"], "sine44.wav")
}

/// `gst-launch-1.0 -q <pipeline> ! filesink location={out}`.
pub fn gst(pipeline: &str, name: &str) -> PathBuf {
    let mut words: Vec<&str> = vec!["-q"];
    words.extend(pipeline.split_whitespace());
    words.extend(["!", "filesink", "location={out}"]);
    made_by("gst-launch-1.0", &words, name)
}

/// ffprobe's packet sizes of the stream `select` (`a:0`, `v:0`): its
/// demuxer's and parser's frames.
pub fn ffprobe_packet_sizes(path: &Path, select: &str) -> Vec<usize> {
    ffprobe_packets(path, select)
        .into_iter()
        .map(|p| p.1)
        .collect()
}

/// ffprobe's packets of the stream `select`: (presentation time in
/// seconds when known, size).
pub fn ffprobe_packets(path: &Path, select: &str) -> Vec<(Option<f64>, usize)> {
    ffprobe_packet_fields(path, select, "pts_time,size")
        .into_iter()
        .map(|f| {
            let pts = f[0].parse().ok();
            let size = f[1].parse().expect("packet size");
            (pts, size)
        })
        .collect()
}

/// The packet `fields` (ffprobe's names, comma-separated, in ffprobe's
/// order) of the stream `select`, one list of values per packet.
pub fn ffprobe_packet_fields(path: &Path, select: &str, fields: &str) -> Vec<Vec<String>> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", select, "-show_entries"])
        .arg(format!("packet={fields}"))
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe must be installed (Debian package ffmpeg)");
    assert!(out.status.success(), "ffprobe {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().split(',').map(str::to_owned).collect())
        .collect()
}

/// ffprobe's packets of the stream `select` that carry data: (size,
/// keyframe). Empty ones (an AVI's dropped frames) are left out.
pub fn ffprobe_key_packets(path: &Path, select: &str) -> Vec<(usize, bool)> {
    ffprobe_packet_fields(path, select, "size,flags")
        .iter()
        .map(|f| (f[0].parse().expect("packet size"), f[1].starts_with('K')))
        .filter(|p| p.0 > 0)
        .collect()
}

/// Copies a cached file to a scratch directory and cuts and flips it there.
pub fn fuzz_copy(path: &Path) {
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    let dir = super::scratch(name);
    let copy = dir.path().join(name);
    std::fs::copy(path, &copy).expect("copy");
    super::fuzz(&copy);
}

//! Fragmented MP4 and DASH as ffmpeg and GStreamer write them: every
//! sample's size, keyframe flag and decode time against ffprobe's packets,
//! DASH segments read as a list of files and concatenated alike, and
//! damaged copies never panic.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::tools::{self, ffmpeg_with, made_by};
use redir_demux::{Codec, Sample};

/// 2 s of 160x120 test video at 25 fps and a 440 Hz sine, as ffmpeg inputs.
const AV: &[&str] = &[
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=160x120:rate=25:d=2",
    "-f",
    "lavfi",
    "-i",
    "sine=f=440:d=2",
];
/// H.264 with a keyframe every 10 frames (so fragments are short) and AAC.
const AV_CODECS: &[&str] = &[
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-g",
    "10",
    "-c:a",
    "aac",
];

/// One ffprobe packet: decode time in seconds, size, keyframe.
#[derive(Debug)]
struct Packet {
    dts: f64,
    size: usize,
    keyframe: bool,
}

/// ffprobe's packets of stream `select` (`v:0`, `a:0`).
fn probe(path: &Path, select: &str) -> Vec<Packet> {
    tools::ffprobe_packet_fields(path, select, "dts_time,size,flags")
        .into_iter()
        .map(|f| Packet {
            dts: f[0].parse().expect("dts"),
            size: f[1].parse().expect("size"),
            keyframe: f[2].starts_with('K'),
        })
        .collect()
}

/// Every sample of the demuxer opened on `paths`, by track id.
fn demux(paths: &[PathBuf]) -> (Vec<redir_demux::Track>, Vec<Sample>) {
    let mut d = redir_demux::open_files(paths).unwrap_or_else(|e| panic!("{paths:?}: {e}"));
    let tracks = d.tracks().to_vec();
    for t in &tracks {
        t.codec
            .check_codec_data(&t.codec_data, t.channels)
            .expect("codec data passes the device's check");
    }
    let mut samples = Vec::new();
    while let Some(s) = d.next_sample().expect("sample") {
        samples.push(s);
    }
    (tracks, samples)
}

/// The samples of `track` match ffprobe's packets of `select` one for one:
/// size, keyframe and decode time (to a microsecond, ffprobe's precision).
/// Both apply an edit list; audio decode times before 0 (AAC priming) are
/// sent as 0, which is all the device carries.
fn assert_matches_ffprobe(path: &Path, samples: &[Sample], track: u32, select: &str) {
    let ours: Vec<&Sample> = samples.iter().filter(|s| s.track == track).collect();
    let theirs = probe(path, select);
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{}: {select} count",
        path.display()
    );
    for (i, (s, p)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(s.data.len(), p.size, "{select} sample {i} size");
        assert_eq!(s.keyframe, p.keyframe, "{select} sample {i} keyframe");
        if let Some(dts) = s.dts {
            #[allow(clippy::cast_precision_loss)]
            let ours = dts as f64 / 1e9;
            assert!(
                (ours - p.dts.max(0.0)).abs() < 2e-6,
                "{select} sample {i}: dts {ours} s, ffprobe {} s",
                p.dts
            );
        }
    }
}

/// Decoded AAC samples (1024 a frame) a track plays after its clips.
fn aac_played(samples: &[Sample], track: u32) -> u64 {
    samples
        .iter()
        .filter(|s| s.track == track)
        .map(|s| 1024 - u64::from(s.clip.start) - u64::from(s.clip.end))
        .sum()
}

/// The two tracks of an H.264 + AAC file, checked against ffprobe.
fn check_av(path: &Path) -> (Vec<redir_demux::Track>, Vec<Sample>) {
    let (tracks, samples) = demux(&[path.to_owned()]);
    assert_eq!(tracks.len(), 2, "{tracks:?}");
    assert_eq!(tracks[0].codec, Codec::H264);
    assert_eq!((tracks[0].width, tracks[0].height), (160, 120));
    assert_eq!(tracks[1].codec, Codec::Aac);
    assert_eq!(tracks[1].sample_rate, 44_100);
    assert_matches_ffprobe(path, &samples, tracks[0].id, "v:0");
    assert_matches_ffprobe(path, &samples, tracks[1].id, "a:0");
    let keys = samples
        .iter()
        .filter(|s| s.track == tracks[0].id && s.keyframe);
    assert_eq!(keys.count(), 5, "a keyframe every 10 of 50 frames");
    // Interleaved in file order, which is what keeps memory bounded.
    let first_audio = samples.iter().position(|s| s.track == tracks[1].id);
    assert!(first_audio.is_some_and(|i| i < 20), "interleaved");
    tools::fuzz_copy(path);
    (tracks, samples)
}

/// ffmpeg's fragmented MP4 for MSE players: an empty moov, a fragment per
/// keyframe, data offsets from the moof.
#[test]
fn ffmpeg_fragmented_h264_aac() {
    let mut args = AV_CODECS.to_vec();
    args.extend(["-movflags", "frag_keyframe+empty_moov+default_base_moof"]);
    let (tracks, samples) = check_av(&ffmpeg_with(AV, &args, "ffmpeg-frag.mp4"));
    // No edit list and no mehd: every decoded sample plays, priming too,
    // as in GStreamer's decode (88 frames).
    assert_eq!(aac_played(&samples, tracks[1].id), 90_112);
}

/// `-movflags cmaf` (trun version 1, signed composition offsets).
#[test]
fn ffmpeg_cmaf_h264_aac() {
    let mut args = AV_CODECS.to_vec();
    args.extend(["-movflags", "cmaf", "-bf", "2"]);
    let _ = check_av(&ffmpeg_with(AV, &args, "ffmpeg-cmaf.mp4"));
}

/// A fragment per frame (low-latency streaming): 87 one-sample fragments.
#[test]
fn ffmpeg_fragment_every_frame_aac() {
    let flags = "frag_keyframe+empty_moov+default_base_moof+frag_every_frame";
    let path = ffmpeg_with(
        &["-f", "lavfi", "-i", "sine=f=440:d=2"],
        &["-c:a", "aac", "-movflags", flags],
        "ffmpeg-frag-every.m4a",
    );
    let (tracks, samples) = demux(std::slice::from_ref(&path));
    assert_eq!(tracks.len(), 1);
    assert_matches_ffprobe(&path, &samples, tracks[0].id, "a:0");
    tools::fuzz_copy(&path);
}

/// `data` with 4 bytes after the entries of every `trun` (each `moof` of
/// one `traf` with one `trun`, as `frag_every_frame` writes), the sizes and
/// data offsets moved to match.
fn with_trun_padding(data: &[u8]) -> Vec<u8> {
    let be = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().expect("4"));
    let find = |b: &[u8], kind: &[u8]| b.windows(4).position(|w| w == kind).expect("box") - 4;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let size = be(data, pos) as usize;
        let mut b = data[pos..pos + size].to_vec();
        if &b[4..8] == b"moof" {
            let traf = find(&b, b"traf");
            let trun = find(&b, b"trun");
            let end = trun + be(&b, trun) as usize;
            b.splice(end..end, [0u8; 4]);
            for at in [0, traf, trun] {
                let grown = be(&b, at) + 4;
                b[at..at + 4].copy_from_slice(&grown.to_be_bytes());
            }
            assert_eq!(be(&b, trun + 8) & 1, 1, "data offset present");
            let off = be(&b, trun + 16) + 4;
            b[trun + 16..trun + 20].copy_from_slice(&off.to_be_bytes());
        }
        out.extend(b);
        pos += size;
    }
    out
}

/// A `trun` with bytes after its entries (room a muxer left) plays: qtdemux
/// reads the fields its flags name and ignores the rest, and so do ffprobe
/// and this demuxer (`cargo xtask demo` on such a file: bit-exact against
/// GStreamer's decode). The `mp4-atom` crate refuses every such fragment
/// ("under decode: trun"), one reason it is not used (README).
#[test]
fn trun_with_trailing_bytes_plays_as_in_gstreamer() {
    let flags = "frag_keyframe+empty_moov+default_base_moof+frag_every_frame";
    let path = ffmpeg_with(
        &["-f", "lavfi", "-i", "sine=f=440:d=2"],
        &["-c:a", "aac", "-movflags", flags],
        "ffmpeg-frag-every.m4a",
    );
    let dir = common::scratch("trun-padding");
    let padded = dir.path().join("padded.m4a");
    std::fs::write(
        &padded,
        with_trun_padding(&std::fs::read(&path).expect("clip")),
    )
    .expect("write");
    let (_, plain) = demux(std::slice::from_ref(&path));
    let (_, samples) = demux(std::slice::from_ref(&padded));
    assert_eq!(samples, plain);
    assert_eq!(samples.len(), probe(&padded, "a:0").len());
}

/// GStreamer's mp4mux in fragment mode: no base offset flags, one traf per
/// moof, tracks in separate fragments, an `mfra` at the end.
#[test]
fn gstreamer_fragmented_h264_aac() {
    let path = common::clip(
        "gst-frag.mp4",
        "videotestsrc num-buffers=50 ! video/x-raw,width=160,height=120,framerate=25/1 \
         ! x264enc bframes=2 key-int-max=10 speed-preset=ultrafast ! h264parse \
         ! mp4mux fragment-duration=400 name=m audiotestsrc num-buffers=100 \
         samplesperbuffer=882 ! audio/x-raw,rate=44100,channels=2 ! audioconvert \
         ! avenc_aac ! aacparse ! m. m.",
    );
    let (tracks, samples) = check_av(&path);
    // mehd says 5058/2500 s: qtdemux ends the segment there and GStreamer's
    // decode plays 89 223 of the 90 112 decoded samples, and 49 of the 50
    // frames: the one presented at 2.04 s is decoded (later B-frames refer
    // to it) and dropped. It goes to the device flagged decode-only.
    assert_eq!(aac_played(&samples, tracks[1].id), 89_223);
    let hidden: Vec<Option<u64>> = samples
        .iter()
        .filter(|s| s.decode_only)
        .map(|s| s.pts)
        .collect();
    assert_eq!(hidden, [Some(2_040_000_000)]);
}

/// A DASH representation as ffmpeg's dash muxer writes it with
/// `-single_file 0`: the files `init-stream0.m4s`, `chunk-stream0-*.m4s`.
fn dash_segments(dir: &Path) -> Vec<PathBuf> {
    let mpd = dir.join("a.mpd");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "sine=f=440:d=2", "-c:a", "aac", "-f", "dash"])
        .args(["-single_file", "0", "-seg_duration", "0.5"])
        .arg(&mpd)
        .output()
        .expect("ffmpeg must be installed (Debian package ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut chunks: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("chunk-stream0-"))
        .collect();
    chunks.sort();
    assert!(chunks.len() >= 4, "{chunks:?}");
    let mut files = vec![dir.join("init-stream0.m4s")];
    files.extend(chunks);
    files
}

/// A DASH segment list plays the same given as files or concatenated, and
/// its edit list (media time 1024, duration 0: to the end) trims AAC's
/// priming as in a progressive file.
#[test]
fn dash_segments_as_a_list_and_concatenated() {
    let dir = common::scratch("dash");
    let files = dash_segments(dir.path());
    let (tracks, listed) = demux(&files);
    let cat = dir.path().join("cat.mp4");
    let mut whole = Vec::new();
    for f in &files {
        whole.extend(std::fs::read(f).expect("segment"));
    }
    std::fs::write(&cat, &whole).expect("write");
    let (_, catted) = demux(std::slice::from_ref(&cat));
    assert_eq!(listed, catted);
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0].codec, Codec::Aac);
    assert_matches_ffprobe(&cat, &listed, tracks[0].id, "a:0");
    // The priming is clipped; qtdemux's segment in ns keeps one of the
    // 1024 samples at 44.1 kHz (see the progressive case in src/mp4/trim.rs).
    assert_eq!(listed[0].clip.start, 1023, "the priming is clipped");
    // The edit is open-ended (duration 0), so the short last frame plays
    // whole, as in GStreamer's decode (89 089 samples).
    assert_eq!(aac_played(&listed, tracks[0].id), 89_089);
    // A segment list must start with its init segment.
    assert!(redir_demux::open_files(&files[1..]).is_err());
}

/// The same as one file (`-single_file 1`: sidx before each moof).
#[test]
fn dash_single_file() {
    let path = made_by(
        "sh",
        &[
            "-c",
            "d=$(mktemp -d) && ffmpeg -hide_banner -loglevel error -f lavfi \
             -i sine=f=440:d=2 -c:a aac -f dash -single_file 1 -seg_duration 0.5 \
             $d/a.mpd && mv $d/a-stream0.mp4 '{out}' && rm -r $d",
        ],
        "ffmpeg-dash-single.mp4",
    );
    let (tracks, samples) = demux(std::slice::from_ref(&path));
    assert_matches_ffprobe(&path, &samples, tracks[0].id, "a:0");
    tools::fuzz_copy(&path);
}

//! Every container and codec the guest player needs, on clips GStreamer
//! encodes at test time; plus truncation and corruption of each clip.

mod common;

use common::{AUDIO44, AUDIO48, Expect, VIDEO, assert_video_ns, check, clip, fuzz, total_duration};
use redir_demux::Codec;

fn video(name: &str, enc: &str, codec: Codec) {
    let path = clip(name, &format!("{VIDEO} ! {enc}"));
    let (_, samples) = check(&path, &Expect::video(codec, 30));
    assert_video_ns(&samples);
    fuzz(&path);
}

#[test]
fn ivf_vp8() {
    video("vp8.ivf", "vp8enc ! avmux_ivf", Codec::Vp8);
}

#[test]
fn ivf_vp9() {
    video("vp9.ivf", "vp9enc ! avmux_ivf", Codec::Vp9);
}

#[test]
fn annexb_h264_with_b_frames() {
    let path = clip(
        "clip.h264",
        &format!("{VIDEO} ! x264enc bframes=2 ! video/x-h264,stream-format=byte-stream"),
    );
    let (_, samples) = check(&path, &Expect::video(Codec::H264, 30));
    assert_video_ns(&samples);
    assert_eq!(samples.iter().filter(|s| s.keyframe).count(), 1);
    fuzz(&path);
}

#[test]
fn annexb_h265() {
    let path = clip(
        "clip.h265",
        &format!("{VIDEO} ! x265enc ! h265parse ! video/x-h265,stream-format=byte-stream"),
    );
    let (_, samples) = check(&path, &Expect::video(Codec::H265, 30));
    assert_video_ns(&samples);
    fuzz(&path);
}

#[test]
fn mkv_h264() {
    video(
        "h264.mkv",
        "x264enc bframes=0 ! h264parse ! matroskamux",
        Codec::H264,
    );
}

#[test]
fn mkv_h265() {
    video("h265.mkv", "x265enc ! h265parse ! matroskamux", Codec::H265);
}

#[test]
fn webm_vp8() {
    video("vp8.webm", "vp8enc ! webmmux", Codec::Vp8);
}

#[test]
fn webm_vp9() {
    video("vp9.webm", "vp9enc ! webmmux", Codec::Vp9);
}

#[test]
fn mkv_av1() {
    video(
        "av1.mkv",
        "av1enc cpu-used=8 ! av1parse ! matroskamux",
        Codec::Av1,
    );
}

#[test]
fn webm_opus() {
    let path = clip(
        "opus.webm",
        &format!("{AUDIO48} ! opusenc frame-size=20 ! webmmux"),
    );
    let (_, samples) = check(&path, &Expect::audio(Codec::Opus, 48_000, Some(51)));
    assert_opus_trimmed_to_one_second(&samples);
    fuzz(&path);
}

/// GStreamer's opusenc: 312 samples of pre-skip; 51 packets of 960 hold
/// 48 960 samples, of which one second (48 000) plays: 648 samples of
/// padding end the last packet. GStreamer's demuxers mark the same.
fn assert_opus_trimmed_to_one_second(samples: &[redir_demux::Sample]) {
    use redir_demux::Clip;
    assert_eq!(samples[0].clip, Clip { start: 312, end: 0 });
    assert!(samples[1..50].iter().all(|s| s.clip.is_none()));
    assert_eq!(samples[50].clip, Clip { start: 0, end: 648 });
}

#[test]
fn webm_vorbis() {
    let path = clip("vorbis.webm", &format!("{AUDIO48} ! vorbisenc ! webmmux"));
    check(&path, &Expect::audio(Codec::Vorbis, 48_000, None));
    fuzz(&path);
}

#[test]
fn mkv_flac() {
    let path = clip(
        "flac.mkv",
        &format!("{AUDIO44} ! flacenc blocksize=1024 ! matroskamux"),
    );
    check(&path, &Expect::audio(Codec::Flac, 44_100, Some(20)));
    fuzz(&path);
}

#[test]
fn mkv_aac() {
    let path = clip(
        "aac.mkv",
        &format!("{AUDIO44} ! voaacenc ! aacparse ! matroskamux"),
    );
    check(&path, &Expect::audio(Codec::Aac, 44_100, None));
    fuzz(&path);
}

#[test]
fn mp4_h264_with_b_frames() {
    let path = clip(
        "h264.mp4",
        &format!("{VIDEO} ! x264enc bframes=2 ! h264parse ! mp4mux"),
    );
    let (_, samples) = check(&path, &Expect::video(Codec::H264, 30));
    assert_video_ns(&samples);
    // B-frames: presentation order differs from decode order.
    assert!(samples.windows(2).any(|w| w[1].pts < w[0].pts));
    assert!(samples.iter().all(|s| s.pts >= s.dts));
    fuzz(&path);
}

#[test]
fn mp4_h265() {
    video("h265.mp4", "x265enc ! h265parse ! mp4mux", Codec::H265);
}

#[test]
fn mp4_aac() {
    let path = clip("aac.mp4", &format!("{AUDIO44} ! voaacenc ! mp4mux"));
    let (track, samples) = check(&path, &Expect::audio(Codec::Aac, 44_100, None));
    assert_eq!(track.codec_data.len(), 2, "AAC-LC AudioSpecificConfig");
    let total = total_duration(&samples);
    assert!(
        (400_000_000..=600_000_000).contains(&total),
        "total {total} ns"
    );
    fuzz(&path);
}

#[test]
fn mp4_opus() {
    let path = clip(
        "opus.mp4",
        &format!("{AUDIO48} ! opusenc frame-size=20 ! mp4mux"),
    );
    let (track, _) = check(&path, &Expect::audio(Codec::Opus, 48_000, Some(51)));
    assert_eq!(&track.codec_data[..8], b"OpusHead");
    fuzz(&path);
}

#[test]
fn ogg_opus() {
    let path = clip(
        "opus.ogg",
        &format!("{AUDIO48} ! opusenc frame-size=20 ! oggmux"),
    );
    let (_, samples) = check(&path, &Expect::audio(Codec::Opus, 48_000, Some(51)));
    assert_eq!(samples[1].pts, Some(20_000_000));
    // 50 buffers plus the encoder's look-ahead make 51 packets of 20 ms.
    assert_eq!(total_duration(&samples), 1_020_000_000);
    assert_opus_trimmed_to_one_second(&samples);
    fuzz(&path);
}

#[test]
fn ogg_vorbis() {
    let path = clip("vorbis.ogg", &format!("{AUDIO48} ! vorbisenc ! oggmux"));
    let (_, samples) = check(&path, &Expect::audio(Codec::Vorbis, 48_000, None));
    // One second of audio; the encoder pads the last block.
    let total = total_duration(&samples);
    assert!(
        (950_000_000..=1_100_000_000).contains(&total),
        "total {total} ns"
    );
    fuzz(&path);
}

#[test]
fn ogg_flac() {
    let path = clip(
        "flac.ogg",
        &format!("{AUDIO44} ! flacenc blocksize=1024 ! oggmux"),
    );
    let (_, samples) = check(&path, &Expect::audio(Codec::Flac, 44_100, Some(20)));
    let expected = 1_000_000_000 * 20 * 1024 / 44_100;
    assert!(
        total_duration(&samples).abs_diff(expected) <= 20,
        "per-packet rounding only"
    );
    fuzz(&path);
}

#[test]
fn unknown_and_missing_files_are_errors() {
    let scratch = common::scratch("unknown");
    let dir = scratch.path();
    let junk = dir.join("junk.bin");
    std::fs::write(&junk, b"this is not a media file at all").expect("write");
    let err = redir_demux::open(&junk).err().expect("unknown format");
    assert!(
        err.to_string().contains("unknown container format"),
        "{err}"
    );
    let err = redir_demux::open(&dir.join("missing.webm"))
        .err()
        .expect("missing");
    assert!(err.to_string().contains("cannot read"), "{err}");
}

/// Demuxes a two-track clip; returns per-track sample counts, checking each
/// track's decode times never go back and both tracks interleave.
fn two_tracks(path: &std::path::Path, codecs: [Codec; 2]) -> [usize; 2] {
    let mut d = redir_demux::open(path).expect("open");
    let tracks = d.tracks().to_vec();
    assert_eq!(tracks.iter().map(|t| t.codec).collect::<Vec<_>>(), codecs);
    for t in &tracks {
        t.codec
            .check_codec_data(&t.codec_data, t.channels)
            .expect("codec data");
    }
    let mut counts = [0usize; 2];
    let mut last = [0u64; 2];
    let mut switches = 0;
    let mut prev_track = None;
    while let Some(s) = d.next_sample().expect("sample") {
        let i = tracks
            .iter()
            .position(|t| t.id == s.track)
            .expect("known track");
        if counts[i] == 0 {
            assert!(s.keyframe, "first sample of each track is a keyframe");
        }
        let t = s.dts.or(s.pts).expect("time");
        if s.dts.is_some() {
            assert!(t >= last[i], "decode times do not go back");
        }
        last[i] = t;
        counts[i] += 1;
        if prev_track.is_some_and(|p| p != i) {
            switches += 1;
        }
        prev_track = Some(i);
    }
    assert!(switches >= 2, "tracks interleave ({switches} switches)");
    counts
}

#[test]
fn webm_vp9_and_opus() {
    let path = clip(
        "av.webm",
        &format!("{VIDEO} ! vp9enc ! m. {AUDIO48} ! opusenc frame-size=20 ! m. webmmux name=m"),
    );
    assert_eq!(two_tracks(&path, [Codec::Vp9, Codec::Opus]), [30, 51]);
}

#[test]
fn mp4_h264_and_aac() {
    let path = clip(
        "av.mp4",
        &format!("{VIDEO} ! x264enc ! h264parse ! m. {AUDIO44} ! voaacenc ! m. mp4mux name=m"),
    );
    let counts = two_tracks(&path, [Codec::H264, Codec::Aac]);
    assert_eq!(counts[0], 30);
    assert!(counts[1] >= 20, "{counts:?}");
}

/// GStreamer has no AV1 IVF muxer that works here, so the test writes the
/// IVF itself from the AV1 temporal units of a Matroska clip.
#[test]
fn ivf_av1() {
    let mkv = clip(
        "av1src.mkv",
        &format!("{VIDEO} ! av1enc cpu-used=8 ! av1parse ! matroskamux"),
    );
    let mut d = redir_demux::open(&mkv).expect("open");
    let mut ivf = Vec::new();
    ivf.extend_from_slice(b"DKIF");
    ivf.extend_from_slice(&0u16.to_le_bytes());
    ivf.extend_from_slice(&32u16.to_le_bytes());
    ivf.extend_from_slice(b"AV01");
    ivf.extend_from_slice(&320u16.to_le_bytes());
    ivf.extend_from_slice(&240u16.to_le_bytes());
    ivf.extend_from_slice(&30u32.to_le_bytes());
    ivf.extend_from_slice(&1u32.to_le_bytes());
    ivf.extend_from_slice(&30u32.to_le_bytes());
    ivf.extend_from_slice(&0u32.to_le_bytes());
    let mut n = 0u64;
    while let Some(s) = d.next_sample().expect("sample") {
        ivf.extend_from_slice(&u32::try_from(s.data.len()).expect("size").to_le_bytes());
        ivf.extend_from_slice(&n.to_le_bytes());
        ivf.extend_from_slice(&s.data);
        n += 1;
    }
    let path = mkv.with_file_name("av1.ivf");
    std::fs::write(&path, ivf).expect("write");
    let (_, samples) = check(&path, &Expect::video(Codec::Av1, 30));
    assert_video_ns(&samples);
    fuzz(&path);
}

/// Sizes that are not whole macroblocks/CTBs need the SPS cropping window.
#[test]
fn annexb_cropped_sizes() {
    let src = "videotestsrc num-buffers=2 ! video/x-raw,format=I420,width=330,height=250";
    for (name, enc) in [
        (
            "crop.h264",
            "x264enc ! video/x-h264,stream-format=byte-stream",
        ),
        (
            "crop.h265",
            "x265enc ! h265parse ! video/x-h265,stream-format=byte-stream",
        ),
    ] {
        let path = clip(name, &format!("{src} ! {enc}"));
        let d = redir_demux::open(&path).expect("open");
        let t = &d.tracks()[0];
        assert_eq!((t.width, t.height), (330, 250), "{name}");
    }
}

/// A Common Encryption MP4 (as ffmpeg's `-encryption_scheme cenc-aes-ctr`
/// writes it: `encv`/`enca` entries with `sinf`) is refused by name, with
/// its scheme and original format, never played as noise.
#[test]
fn drm_protected_mp4_is_refused_by_name() {
    let file = common::tools::ffmpeg_with(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
        ],
        &[
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-encryption_scheme",
            "cenc-aes-ctr",
            "-encryption_key",
            "76a6c65c5ea762046bd749a2e632ccbb",
            "-encryption_kid",
            "a7e61c373e219033c21091fa607bf3b8",
        ],
        "cenc.mp4",
    );
    let err = redir_demux::open(&file)
        .err()
        .expect("a protected file must not open");
    let text = err.to_string();
    assert!(text.contains("DRM-protected"), "{text}");
    assert!(text.contains("cenc"), "{text}");
    assert!(text.contains("avc1") || text.contains("mp4a"), "{text}");
}

//! MP4 metadata a local player reads or ignores: which of several tracks
//! plays (the first of each kind, enabled or not), and the iTunes gapless
//! tag `iTunSMPB` (ignored).

mod common;

use common::containers::mp4_box;
use common::tools::{self, ffmpeg_with};

/// Two AAC tracks (`-map 0 -map 1`: a 440 Hz sine, then a 660 Hz one at
/// another bit rate, so their packets differ), with `extra` arguments.
fn two_audio_tracks(extra: &[&str], name: &str) -> std::path::PathBuf {
    let mut args = vec!["-map", "0", "-map", "1", "-c:a", "aac", "-b:a:1", "64k"];
    args.extend_from_slice(extra);
    let sine = |f| ["-f", "lavfi", "-i", f];
    let inputs = [sine("sine=f=440:d=1"), sine("sine=f=660:d=1")].concat();
    ffmpeg_with(&inputs, &args, name)
}

/// The one track played of `path` and its packet sizes, which must be
/// ffprobe's first audio stream's.
fn played(path: &std::path::Path) -> redir_demux::Track {
    let mut d = common::open_checked(path);
    let tracks = d.tracks().to_vec();
    assert_eq!(tracks.len(), 1, "{tracks:?}");
    let mut sizes = Vec::new();
    while let Some(s) = d.next_sample().expect("sample") {
        assert_eq!(s.track, tracks[0].id);
        sizes.push(s.data.len());
    }
    assert_eq!(sizes, tools::ffprobe_packet_sizes(path, "a:0"));
    assert_ne!(sizes, tools::ffprobe_packet_sizes(path, "a:1"));
    tracks[0].clone()
}

/// Two audio tracks: the first plays, as playbin's default audio stream;
/// the second is not sent.
#[test]
fn first_of_two_audio_tracks() {
    played(&two_audio_tracks(&[], "ffmpeg-two-audio.m4a"));
}

/// A first audio track whose `tkhd` enabled flag is clear (ffmpeg marks a
/// track without the default disposition so) still plays: GStreamer
/// 1.22's qtdemux ignores the flag (`gst-discoverer-1.0` lists both tracks,
/// no stream is flagged unselected), and playbin takes the first.
#[test]
fn a_disabled_first_track_still_plays_as_in_gstreamer() {
    let path = two_audio_tracks(
        &["-disposition:a:0", "0", "-disposition:a:1", "default"],
        "ffmpeg-disabled-first.m4a",
    );
    let bytes = std::fs::read(&path).expect("clip");
    let flags: Vec<u8> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"tkhd")
        .map(|(i, _)| bytes[i + 7])
        .collect();
    assert_eq!(
        flags,
        [2, 3],
        "the first track is disabled, the second enabled"
    );
    assert_eq!(played(&path).id, 1);
}

/// `moov` with `udta/meta/ilst/----` (mean `com.apple.iTunes`, name
/// `iTunSMPB`, data `value`) appended: the iTunes gapless tag.
fn with_itunsmpb(mp4: &[u8], value: &str) -> Vec<u8> {
    let full = |kind: &[u8; 4], rest: &[u8]| mp4_box(kind, &[&[0u8; 4][..], rest].concat());
    let mean = full(b"mean", b"com.apple.iTunes");
    let name = full(b"name", b"iTunSMPB");
    // data: type 1 (UTF-8), locale 0.
    let data = mp4_box(
        b"data",
        &[&[0, 0, 0, 1, 0, 0, 0, 0][..], value.as_bytes()].concat(),
    );
    let item = mp4_box(b"----", &[mean, name, data].concat());
    let hdlr = full(b"hdlr", &[&[0u8; 4][..], b"mdir", &[0u8; 13][..]].concat());
    let meta = full(b"meta", &[hdlr, mp4_box(b"ilst", &item)].concat());
    let udta = mp4_box(b"udta", &meta);
    // ffmpeg writes moov last (no faststart), so growing it moves no sample.
    let at = mp4.windows(4).rposition(|w| w == b"moov").expect("moov") - 4;
    let size = u32::from_be_bytes(mp4[at..at + 4].try_into().expect("4 bytes"));
    assert_eq!(at + size as usize, mp4.len(), "moov is the last box");
    let mut out = mp4[..at].to_vec();
    out.extend_from_slice(&(size + u32::try_from(udta.len()).expect("small")).to_be_bytes());
    out.extend_from_slice(&mp4[at + 4..]);
    out.extend_from_slice(&udta);
    out
}

/// An AAC file whose only gapless data is `iTunSMPB` (no edit list): the
/// tag says 2112 samples of encoder delay and 0x1A0 of padding. GStreamer
/// 1.22's qtdemux does not read iTunSMPB (its `----` items are only tags:
/// the library names no iTunSMPB), so a local player decodes and plays the
/// priming; it only ends the track at mdhd's duration, which ffmpeg makes
/// the sum of `stts` (the last frame counted short): 45 124 of the 46 080
/// decoded samples play, as `cargo xtask demo` measured against GStreamer's
/// decode. ffmpeg's mov demuxer would skip the 2112 samples of delay. The
/// guest follows GStreamer: the tag changes nothing.
#[test]
fn itunsmpb_without_edit_list_is_not_trimmed_as_in_gstreamer() {
    let plain = ffmpeg_with(
        &["-f", "lavfi", "-i", "sine=f=440:d=1"],
        &["-c:a", "aac", "-use_editlist", "0"],
        "ffmpeg-noedts.m4a",
    );
    let dir = common::scratch("itunsmpb");
    let path = dir.path().join("itunsmpb.m4a");
    let smpb = " 00000000 00000840 000001A0 000000000000AC44 00000000 00000000";
    let bytes = with_itunsmpb(&std::fs::read(&plain).expect("clip"), smpb);
    std::fs::write(&path, bytes).expect("write");
    let mut clips = Vec::new();
    for file in [&plain, &path] {
        let mut d = common::open_checked(file);
        let track = d.tracks()[0].clone();
        assert_eq!((track.start_trim, track.end_trim), (0, 0));
        let mut played = 0;
        let mut all = Vec::new();
        while let Some(s) = d.next_sample().expect("sample") {
            played += 1024 - u64::from(s.clip.start) - u64::from(s.clip.end);
            all.push(s.clip);
        }
        assert_eq!(played, 45_124, "{}", file.display());
        assert_eq!(all.len(), tools::ffprobe_packet_sizes(file, "a:0").len());
        clips.push(all);
    }
    assert_eq!(clips[0], clips[1], "iTunSMPB changes nothing");
}

/// ffmpeg writes an `sgpd`/`sbgp` `roll` group for AAC (roll distance -1)
/// and Opus (-4 packets, 80 ms): the packets to decode before a seek point
/// for the output to settle. GStreamer 1.22's qtdemux reads no sample
/// groups (its library, libgstisomp4, holds no `sgpd`, `sbgp` or `roll`
/// four-character code, where it holds `trun`, `tfdt`, `elst`), so a local
/// player marks every audio packet as a keyframe and plays from the start
/// as without the group; this demuxer does the same. (ffmpeg's mov demuxer
/// uses the distance to pre-roll after a seek.)
#[test]
fn roll_groups_change_nothing_as_in_gstreamer() {
    let src = ["-f", "lavfi", "-i", "sine=f=440:d=1:sample_rate=48000"];
    for (codec, name) in [("aac", "ffmpeg-roll.m4a"), ("libopus", "ffmpeg-opus.mp4")] {
        let path = ffmpeg_with(&src, &["-c:a", codec], name);
        let bytes = std::fs::read(&path).expect("clip");
        let sgpd = bytes.windows(4).position(|w| w == b"sgpd").expect("sgpd");
        assert_eq!(&bytes[sgpd + 8..sgpd + 12], b"roll", "{name}");
        let mut d = common::open_checked(&path);
        let mut n = 0;
        while let Some(s) = d.next_sample().expect("sample") {
            assert!(s.keyframe, "{name}: packet {n} is a keyframe");
            n += 1;
        }
        assert_eq!(n, tools::ffprobe_packet_sizes(&path, "a:0").len(), "{name}");
    }
}

/// ffmpeg's Opus in MP4: an edit from media time 312 (the pre-skip) for
/// 1 s, and a last packet whose `stts` duration (312) is shorter than the
/// 960 samples it decodes to. GStreamer's decode plays 47 688 samples: the
/// pre-skip is cut and, as for ffmpeg's AAC, qtdemux never sends that
/// short last packet (`cargo xtask demo` measured it; ffmpeg plays 48 000).
#[test]
fn ffmpeg_opus_edit_list_as_in_gstreamer() {
    let src = ["-f", "lavfi", "-i", "sine=f=440:d=1:sample_rate=48000"];
    let path = ffmpeg_with(&src, &["-c:a", "libopus"], "ffmpeg-opus.mp4");
    let mut d = common::open_checked(&path);
    let mut clips = Vec::new();
    while let Some(s) = d.next_sample().expect("sample") {
        clips.push(s.clip);
    }
    assert_eq!(clips.len(), 51);
    assert_eq!(clips[0].start, 312, "the pre-skip");
    assert_eq!(clips[50], redir_demux::Clip { start: 0, end: 960 });
    let cut: u64 = clips.iter().map(|c| u64::from(c.start + c.end)).sum();
    assert_eq!(51 * 960 - cut, 47_688);
}

/// An audio track the device cannot take (ALAC) is passed over when
/// another audio track plays, and refuses the file by name when it is the
/// only audio: never a silent play of the picture alone. (A local player
/// with an ALAC decoder, gst-libav's, would play the first track; no
/// client could, so the next playable one is the closest, as in MPEG-TS.)
#[test]
fn an_unplayable_track_is_passed_over_or_named() {
    let path = ffmpeg_with(
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=f=440:d=1",
            "-f",
            "lavfi",
            "-i",
            "sine=f=660:d=1",
        ],
        &["-map", "0", "-map", "1", "-c:a:0", "alac", "-c:a:1", "aac"],
        "ffmpeg-alac-then-aac.m4a",
    );
    let d = common::open_checked(&path);
    assert_eq!(d.tracks().len(), 1);
    assert_eq!(d.tracks()[0].codec, redir_demux::Codec::Aac);
    assert_eq!(d.tracks()[0].id, 2);
    let path = ffmpeg_with(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10:d=1",
            "-f",
            "lavfi",
            "-i",
            "sine=f=440:d=1",
        ],
        &["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "alac"],
        "ffmpeg-h264-alac.mp4",
    );
    let err = redir_demux::open(&path).err().expect("refused");
    assert!(err.to_string().contains("alac"), "{err}");
}

//! AVI files rewritten from ffmpeg's into forms ffmpeg does not write
//! small: an OpenDML file (`RIFF AVIX` after the first RIFF, as files over
//! 1 GiB have) and DivX 5's "packed bitstream" (a P- and a B-VOP in one
//! chunk, then an N-VOP placeholder). Both must read as GStreamer's
//! avidemux reads them.

mod common;

use std::path::Path;

use common::containers::riff_chunk;
use common::tools::{VIDEO_AND_SINE, ffmpeg_with, fuzz_copy};
use redir_demux::Sample;

/// Every track and sample of `path`.
fn read_all(path: &Path) -> (Vec<redir_demux::Track>, Vec<Sample>) {
    let mut d = common::open_checked(path);
    let mut out = Vec::new();
    while let Some(s) = d.next_sample().expect("sample") {
        out.push(s);
    }
    (d.tracks().to_vec(), out)
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
    let plain = ffmpeg_with(
        &VIDEO_AND_SINE,
        &[
            "-c:v",
            "mpeg4",
            "-vtag",
            "xvid",
            "-c:a",
            "libmp3lame",
            "-ac",
            "2",
            "-f",
            "avi",
        ],
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
    let (tracks, samples) = read_all(&avix);
    let (plain_tracks, plain_samples) = read_all(&plain);
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

/// The coding type of the first VOP in `frame` (0 I, 1 P, 2 B, 3 S).
fn vop_type(frame: &[u8]) -> Option<u8> {
    let at = frame.windows(4).position(|w| w == [0, 0, 1, 0xB6])?;
    Some(frame.get(at + 4)? >> 6)
}

#[test]
fn divx_packed_bitstream_is_passed_through_as_avidemux_passes_it() {
    // ffmpeg with one B-frame: I0 P2 B1 P4 B3 ... in decode order. DivX 5
    // packs each P with the B after it and leaves an N-VOP (not coded) in
    // the next chunk, and says so in user data ending in 'p'. avidemux
    // passes the chunks as they are, and avdec_mpeg4 (ffmpeg's decoder)
    // unpacks them: passed through unchanged, the client's decoder gives
    // the same 50 pictures (checked end to end with `cargo xtask demo`).
    let plain = ffmpeg_with(
        &VIDEO_AND_SINE[..4],
        &["-c:v", "mpeg4", "-vtag", "DX50", "-bf", "1", "-f", "avi"],
        "ffmpeg-dx50-bf1.avi",
    );
    let data = std::fs::read(&plain).expect("file");
    let top = chunks(&data[12..]);
    let is_movi = |id: &[u8; 4], c: &[u8]| id == b"LIST" && &c[8..12] == b"movi";
    let movi = top.iter().find(|(id, c)| is_movi(id, c)).expect("movi").1;
    let mut frames: Vec<Vec<u8>> = chunks(&movi[12..])
        .into_iter()
        .filter(|(id, _)| id == b"00dc")
        .map(|(_, c)| {
            let len = u32::from_le_bytes(c[4..8].try_into().expect("4 bytes")) as usize;
            c[8..8 + len].to_vec()
        })
        .collect();
    let vop = frames[0]
        .windows(4)
        .position(|w| w == [0, 0, 1, 0xB6])
        .expect("VOP");
    frames[0].splice(vop..vop, b"\x00\x00\x01\xB2DivX503b1393p".iter().copied());
    // P-VOP, time 0, vop_coded 0, stuffing.
    let n_vop = [0, 0, 1, 0xB6, 0b0101_0000, 0b0100_1111];
    let mut packed = vec![frames[0].clone()];
    let mut i = 1;
    while i < frames.len() {
        if frames.get(i + 1).and_then(|f| vop_type(f)) == Some(2) {
            packed.push([frames[i].as_slice(), &frames[i + 1]].concat());
            packed.push(n_vop.to_vec());
            i += 2;
        } else {
            packed.push(frames[i].clone());
            i += 1;
        }
    }
    let (mut body, mut idx1) = (Vec::new(), Vec::new());
    for f in &packed {
        idx1.extend_from_slice(b"00dc");
        let key = if vop_type(f) == Some(0) { 0x10u32 } else { 0 };
        for v in [key, u32::try_from(4 + body.len()).expect("offset")] {
            idx1.extend_from_slice(&v.to_le_bytes());
        }
        idx1.extend_from_slice(&u32::try_from(f.len()).expect("len").to_le_bytes());
        body.extend(riff_chunk(b"00dc", f));
    }
    let mut riff = Vec::new();
    for (id, c) in &top {
        if is_movi(id, c) {
            riff.extend(list(b"LIST", b"movi", &body));
            riff.extend(riff_chunk(b"idx1", &idx1));
        } else if id != b"idx1" {
            riff.extend_from_slice(c);
        }
    }
    let dir = common::scratch("packed");
    let path = dir.path().join("packed.avi");
    std::fs::write(&path, list(b"RIFF", b"AVI ", &riff)).expect("write");
    let (tracks, samples) = read_all(&path);
    assert_eq!(tracks.len(), 1);
    let sent: Vec<&[u8]> = samples.iter().map(|s| s.data.as_slice()).collect();
    let want: Vec<&[u8]> = packed.iter().map(Vec::as_slice).collect();
    assert_eq!(sent, want, "chunks passed through unchanged");
    assert!(
        sent.iter().filter(|s| **s == n_vop).count() >= 10,
        "N-VOP placeholders sent"
    );
    assert!(tracks[0].codec_data.ends_with(b"DivX503b1393p"));
    fuzz_copy(&path);
}

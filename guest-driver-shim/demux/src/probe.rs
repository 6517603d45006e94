//! Picks a container by the file's first bytes, as a local player does.
//!
//! Elementary audio streams have no magic number of their own, and an
//! ID3v2 tag may come first, so the bytes after such a tag are looked at
//! too: "fLaC", an ADTS header or an MPEG audio frame header. The file
//! name only helps where content alone cannot tell (an MP3 with junk
//! before its first frame).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::{ac3, adts, mpa, tags};

/// A container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Ivf,
    Matroska,
    Ogg,
    Mp4,
    AnnexB,
    Mp3,
    Adts,
    Flac,
    Ac3,
    Wav,
    Avi,
    Mpv,
    Ts,
    Ps,
    Unknown,
}

fn read_head(file: &mut File, at: u64, n: usize) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(at))?;
    let mut out = Vec::with_capacity(n);
    file.take(n as u64).read_to_end(&mut out)?;
    Ok(out)
}

/// The format of the file at `path`.
pub(crate) fn sniff(path: &Path) -> io::Result<Format> {
    let mut file = File::open(path)?;
    let first = read_head(&mut file, 0, 400)?;
    if crate::ts::packet_layout(&first).is_some() {
        return Ok(Format::Ts);
    }
    let head = &first[..first.len().min(16)];
    if head.starts_with(b"DKIF") {
        return Ok(Format::Ivf);
    }
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Ok(Format::Matroska);
    }
    if head.starts_with(b"OggS") {
        return Ok(Format::Ogg);
    }
    if head.len() >= 8 && matches!(&head[4..8], b"ftyp" | b"moov" | b"mdat" | b"free" | b"wide") {
        return Ok(Format::Mp4);
    }
    if head.len() >= 12 && matches!(&head[..4], b"RIFF" | b"RF64") && &head[8..12] == b"WAVE" {
        return Ok(Format::Wav);
    }
    if crate::avi::is_avi(head) {
        return Ok(Format::Avi);
    }
    if crate::ts::ps::is_program_stream(head) {
        return Ok(Format::Ps);
    }
    if crate::mpv_es::is_mpeg_video(head) {
        return Ok(Format::Mpv);
    }
    if head.starts_with(&[0, 0, 1]) || head.starts_with(&[0, 0, 0, 1]) {
        return Ok(Format::AnnexB);
    }
    let tag = match tags::id3v2_len(head, "ID3", 0) {
        Ok(Some(len)) => len,
        _ => 0,
    };
    let body = if tag > 0 {
        read_head(&mut file, tag, 16)?
    } else {
        head.to_vec()
    };
    if body.starts_with(b"fLaC") {
        return Ok(Format::Flac);
    }
    if adts::Header::parse(&body).is_some() {
        return Ok(Format::Adts);
    }
    if mpa::Header::parse(&body).is_some() {
        return Ok(Format::Mp3);
    }
    if ac3::Header::parse(&body).is_some() {
        return Ok(Format::Ac3);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    Ok(match ext.as_deref() {
        Some("mp3" | "mp2" | "mpga") => Format::Mp3,
        Some("aac" | "adts") => Format::Adts,
        Some("ac3" | "eac3" | "ec3") => Format::Ac3,
        Some("flac") => Format::Flac,
        Some("wav") => Format::Wav,
        Some("avi") => Format::Avi,
        Some("ts" | "m2ts" | "mts") => Format::Ts,
        _ if tag > 0 => Format::Mp3,
        _ => Format::Unknown,
    })
}

//! Several files read as one byte stream.
//!
//! A DASH representation is an initialisation segment (`ftyp`, `moov`)
//! followed by media segments (`styp`, `sidx`, `moof`, `mdat`), each in its
//! own file; concatenated they are one fragmented MP4, which is how a
//! player's source element hands them to its demuxer. This reader does the
//! concatenation without copying: it maps an offset of the whole to a file
//! and an offset in it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// A readable, seekable byte stream (a file or a [`ConcatReader`]).
pub(crate) trait Source: Read + Seek + Send {}

impl<T: Read + Seek + Send> Source for T {}

/// The files in order, read as one stream.
pub(crate) struct ConcatReader {
    /// Each file with the offset of its first byte in the whole.
    parts: Vec<(u64, File)>,
    len: u64,
    pos: u64,
}

impl ConcatReader {
    /// Opens every file of `paths`; the lengths are taken now.
    pub(crate) fn open(paths: &[impl AsRef<Path>]) -> io::Result<Self> {
        let mut parts = Vec::with_capacity(paths.len());
        let mut len = 0u64;
        for path in paths {
            let file = File::open(path.as_ref())?;
            let n = file.metadata()?.len();
            parts.push((len, file));
            len = len
                .checked_add(n)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "files too large"))?;
        }
        Ok(ConcatReader { parts, len, pos: 0 })
    }

    /// The length of the whole.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

impl Read for ConcatReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.len {
            return Ok(0);
        }
        // The last part starting at or before `pos` (parts may be empty).
        let i = self.parts.partition_point(|(start, _)| *start <= self.pos) - 1;
        let end = self.parts.get(i + 1).map_or(self.len, |p| p.0);
        let (start, file) = &mut self.parts[i];
        if self.pos >= end {
            return Ok(0);
        }
        let room = usize::try_from(end - self.pos).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        file.seek(SeekFrom::Start(self.pos - *start))?;
        let got = file.read(&mut buf[..want])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a segment file shrank while it was read",
            ));
        }
        self.pos += got as u64;
        Ok(got)
    }
}

impl Seek for ConcatReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_seeks_across_files_as_one_stream() {
        let dir = test_support::scratch("redir-demux-concat");
        let contents: [&[u8]; 4] = [b"init", b"", b"-seg1-", b"seg2"];
        let paths: Vec<_> = contents
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let p = dir.path().join(format!("{i}.m4s"));
                std::fs::write(&p, c).expect("write");
                p
            })
            .collect();
        let mut r = ConcatReader::open(&paths).expect("open");
        assert_eq!(r.len(), 14);
        let mut all = Vec::new();
        r.read_to_end(&mut all).expect("read");
        assert_eq!(all, b"init-seg1-seg2");
        // A read that straddles two files, after a seek.
        r.seek(SeekFrom::Start(2)).expect("seek");
        let mut buf = [0u8; 6];
        r.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"it-seg");
        assert_eq!(r.seek(SeekFrom::End(-3)).expect("seek"), 11);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).expect("read");
        assert_eq!(rest, b"eg2");
        assert!(r.seek(SeekFrom::Current(-20)).is_err());
        assert!(ConcatReader::open(&[dir.path().join("missing")]).is_err());
    }
}

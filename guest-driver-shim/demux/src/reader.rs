//! A forward file reader with absolute offsets and bounded look-ahead.
//!
//! The elementary-stream demuxers (MP3, ADTS AAC, FLAC, WAV) have no index:
//! they find each frame from the one before. This reader keeps only the
//! bytes a frame needs in memory, however large the file, and knows the
//! file offset of every byte so errors can say where a file is broken.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// Bytes read from the file at a time.
const CHUNK: usize = 64 << 10;

/// Buffered reader over `[start, end)` of a file.
pub(crate) struct Reader {
    file: File,
    buf: Vec<u8>,
    /// Index in `buf` of the current position.
    at: usize,
    /// File offset of `buf[0]`.
    base: u64,
    /// Reading stops here (a trailing tag, a chunk's end).
    end: u64,
}

impl Reader {
    /// A reader of `file` from offset 0 to its end.
    pub(crate) fn new(file: File) -> io::Result<Self> {
        let end = file.metadata()?.len();
        Ok(Reader {
            file,
            buf: Vec::new(),
            at: 0,
            base: 0,
            end,
        })
    }

    /// The file offset of the next byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.at as u64
    }

    /// Where reading stops.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Makes reading stop at `end` (never beyond the file's end).
    pub(crate) fn set_end(&mut self, end: u64) {
        self.end = self.end.min(end);
        let keep = usize::try_from(self.end.saturating_sub(self.base)).unwrap_or(usize::MAX);
        if keep < self.buf.len() {
            self.buf.truncate(keep);
            self.at = self.at.min(keep);
        }
    }

    /// Bytes left before the end.
    pub(crate) fn remaining(&self) -> u64 {
        self.end.saturating_sub(self.offset())
    }

    /// The next `n` bytes, or fewer where the end comes first; `n` must be
    /// bounded by the caller (it is the look-ahead kept in memory).
    pub(crate) fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        let want = usize::try_from(self.remaining())
            .unwrap_or(usize::MAX)
            .min(n);
        if self.buf.len() - self.at < want {
            if self.at > 0 {
                self.buf.drain(..self.at);
                self.base += self.at as u64;
                self.at = 0;
            }
            let file_pos = self.base + self.buf.len() as u64;
            self.file.seek(SeekFrom::Start(file_pos))?;
            while self.buf.len() < want {
                let room = usize::try_from(self.end - (self.base + self.buf.len() as u64))
                    .unwrap_or(usize::MAX)
                    .min(CHUNK.max(want - self.buf.len()));
                let old = self.buf.len();
                self.buf.resize(old + room, 0);
                let got = self.file.read(&mut self.buf[old..])?;
                self.buf.truncate(old + got);
                if got == 0 {
                    // The file shrank under us: its end is here.
                    self.end = self.base + self.buf.len() as u64;
                    break;
                }
            }
        }
        let have = (self.buf.len() - self.at).min(want);
        Ok(&self.buf[self.at..self.at + have])
    }

    /// Exactly `n` bytes, or `None` (nothing consumed) where the end comes first.
    pub(crate) fn take(&mut self, n: usize) -> io::Result<Option<Vec<u8>>> {
        let out = self.peek(n)?;
        if out.len() < n {
            return Ok(None);
        }
        let out = out.to_vec();
        self.at += n;
        Ok(Some(out))
    }

    /// Moves forward `n` bytes (clamped to the end).
    pub(crate) fn skip(&mut self, n: u64) {
        let target = self.offset().saturating_add(n).min(self.end);
        self.seek(target);
    }

    /// Moves to file offset `to` (clamped to the end).
    pub(crate) fn seek(&mut self, to: u64) {
        let to = to.min(self.end);
        if to >= self.base && to <= self.base + self.buf.len() as u64 {
            self.at = usize::try_from(to - self.base).unwrap_or(0);
        } else {
            self.buf.clear();
            self.base = to;
            self.at = 0;
        }
    }

    /// Reads `n` bytes at file offset `at` without moving (for trailing tags).
    pub(crate) fn read_at(&mut self, at: u64, n: usize) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; n];
        self.file.seek(SeekFrom::Start(at))?;
        self.file.read_exact(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeks_takes_and_stops_at_the_end() {
        let dir = test_support::scratch("redir-demux-reader");
        let path = dir.path().join("data");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let f = File::open(&path).expect("open");
        drop(dir);
        let mut r = Reader::new(f).expect("reader");
        r.set_end(150_000);
        assert_eq!(r.peek(3).expect("peek"), &data[..3]);
        r.skip(70_000);
        assert_eq!(r.take(100_000).expect("take").as_deref(), None);
        let got = r.take(80_000).expect("take").expect("enough");
        assert_eq!(got, &data[70_000..150_000]);
        assert_eq!(r.remaining(), 0);
        assert!(r.peek(10).expect("peek").is_empty());
        r.seek(5);
        assert_eq!(r.peek(2).expect("peek"), &data[5..7]);
    }
}

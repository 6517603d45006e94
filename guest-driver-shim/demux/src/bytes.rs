//! A bounds-checked big-endian byte cursor.
//!
//! Every hand-written parser reads untrusted files through this, so a
//! truncated or corrupt file becomes an error and never an index panic.

use crate::DemuxError;

/// Cursor over a byte slice; reads past the end fail.
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    container: &'static str,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `data`; errors name `container`.
    pub(crate) fn new(data: &'a [u8], container: &'static str) -> Self {
        Cursor {
            data,
            pos: 0,
            container,
        }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DemuxError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| DemuxError::corrupt(self.container, "structure runs past its end"))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// Skips `n` bytes.
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), DemuxError> {
        self.take(n).map(|_| ())
    }

    /// A byte.
    pub(crate) fn u8(&mut self) -> Result<u8, DemuxError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian u16.
    pub(crate) fn u16(&mut self) -> Result<u16, DemuxError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian u32.
    pub(crate) fn u32(&mut self) -> Result<u32, DemuxError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A big-endian u64.
    pub(crate) fn u64(&mut self) -> Result<u64, DemuxError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

/// `value * num / den` without overflow (saturating); `den == 0` gives 0.
pub(crate) fn scale(value: u64, num: u64, den: u64) -> u64 {
    if den == 0 {
        return 0;
    }
    let r = u128::from(value) * u128::from(num) / u128::from(den);
    u64::try_from(r).unwrap_or(u64::MAX)
}

/// Converts `ticks` of a `1/timescale` clock to nanoseconds.
pub(crate) fn ticks_to_ns(ticks: u64, timescale: u64) -> u64 {
    scale(ticks, 1_000_000_000, timescale)
}

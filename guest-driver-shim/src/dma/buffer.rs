//! [`DmaBuffer`]: a block of DMA memory handed out by the allocator,
//! addressed relative to its start (descriptor segments, bounded reads and
//! writes), which gives its block back when dropped.

use std::fmt;
use std::sync::Arc;

use super::{DmaError, DmaMemory};

/// A block of DMA memory, freed when dropped.
///
/// Never drop a buffer the device may still access: the driver keeps the
/// buffers of a chain until the device returns the chain or is reset.
pub struct DmaBuffer {
    pub(super) mem: Arc<DmaMemory>,
    pub(super) gpa: u64,
    pub(super) len: usize,
}

impl fmt::Debug for DmaBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaBuffer")
            .field("gpa", &format_args!("{:#x}", self.gpa))
            .field("len", &self.len)
            .finish()
    }
}

impl DmaBuffer {
    /// Guest-physical address of the first byte.
    pub fn gpa(&self) -> u64 {
        self.gpa
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memory the buffer lives in.
    pub fn memory(&self) -> &Arc<DmaMemory> {
        &self.mem
    }

    /// `(gpa, len)` of `len` bytes at `offset`, as a descriptor segment.
    pub fn segment(&self, offset: usize, len: usize) -> Result<(u64, u32), DmaError> {
        let out_of_range = DmaError::OutOfRange {
            gpa: self.gpa + offset as u64,
            len: len as u64,
        };
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(out_of_range);
        }
        let len = u32::try_from(len).map_err(|_| out_of_range)?;
        Ok((self.gpa + offset as u64, len))
    }

    /// The device segments of `len` bytes at `offset` (several when the
    /// range spans physically discontiguous hugepages; see
    /// [`DmaMemory::device_segments`]).
    pub fn segments(&self, offset: usize, len: usize) -> Result<Vec<(u64, u32)>, DmaError> {
        let (gpa, len) = self.segment(offset, len)?;
        self.mem.device_segments(gpa, len)
    }

    /// The whole buffer as a descriptor segment.
    pub fn whole(&self) -> Result<(u64, u32), DmaError> {
        self.segment(0, self.len)
    }

    fn range(&self, offset: usize, len: usize) -> Result<u64, DmaError> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(DmaError::OutOfRange {
                gpa: self.gpa.saturating_add(offset as u64),
                len: len as u64,
            });
        }
        Ok(self.gpa + offset as u64)
    }

    /// Copies `data` into the buffer at `offset`.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), DmaError> {
        let gpa = self.range(offset, data.len())?;
        self.mem.write(gpa, data)
    }

    /// Copies buffer bytes at `offset` into `buf`.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), DmaError> {
        let gpa = self.range(offset, buf.len())?;
        self.mem.read(gpa, buf)
    }

    /// Reads `len` bytes at `offset` into a new vector.
    pub fn read_vec(&self, offset: usize, len: usize) -> Result<Vec<u8>, DmaError> {
        let mut out = vec![0u8; len];
        self.read_at(offset, &mut out)?;
        Ok(out)
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        self.mem.release(self.gpa);
    }
}

//! Reading and writing DMA memory. The device may write it at any time,
//! so no Rust reference to it is ever made: every access is a bounds-checked
//! volatile copy, or an atomic load or store of a naturally aligned integer
//! (ring indices, flags), through vm-memory's `Bytes` interface.

use std::sync::atomic::Ordering;

use vm_memory::{AtomicAccess, Bytes, GuestAddress};

use super::{DmaError, DmaMemory};

impl DmaMemory {
    fn check(&self, gpa: u64, len: usize) -> Result<GuestAddress, DmaError> {
        if self.contains(gpa, len as u64) {
            Ok(GuestAddress(gpa))
        } else {
            Err(DmaError::OutOfRange {
                gpa,
                len: len as u64,
            })
        }
    }

    /// Copies `data` into the memory at `gpa` (volatile copy).
    pub fn write(&self, gpa: u64, data: &[u8]) -> Result<(), DmaError> {
        let addr = self.check(gpa, data.len())?;
        self.mem
            .write_slice(data, addr)
            .map_err(|_| DmaError::OutOfRange {
                gpa,
                len: data.len() as u64,
            })
    }

    /// Copies memory at `gpa` into `buf` (volatile copy).
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let addr = self.check(gpa, buf.len())?;
        self.mem
            .read_slice(buf, addr)
            .map_err(|_| DmaError::OutOfRange {
                gpa,
                len: buf.len() as u64,
            })
    }

    /// Reads `len` bytes at `gpa` into a new vector.
    pub fn read_vec(&self, gpa: u64, len: usize) -> Result<Vec<u8>, DmaError> {
        let mut out = vec![0u8; len];
        self.read(gpa, &mut out)?;
        Ok(out)
    }

    /// Fills `len` bytes at `gpa` with `byte`.
    pub fn fill(&self, gpa: u64, len: usize, byte: u8) -> Result<(), DmaError> {
        self.check(gpa, len)?;
        let chunk = [byte; 4096];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            self.write(gpa + done as u64, &chunk[..n])?;
            done += n;
        }
        Ok(())
    }

    /// Atomic store of a naturally aligned integer (ring indices, flags).
    pub fn store<T: AtomicAccess>(
        &self,
        gpa: u64,
        value: T,
        order: Ordering,
    ) -> Result<(), DmaError> {
        let addr = self.check(gpa, size_of::<T>())?;
        self.mem
            .store(value, addr, order)
            .map_err(|_| DmaError::OutOfRange {
                gpa,
                len: size_of::<T>() as u64,
            })
    }

    /// Atomic load of a naturally aligned integer (ring indices, flags).
    pub fn load<T: AtomicAccess>(&self, gpa: u64, order: Ordering) -> Result<T, DmaError> {
        let addr = self.check(gpa, size_of::<T>())?;
        self.mem
            .load(addr, order)
            .map_err(|_| DmaError::OutOfRange {
                gpa,
                len: size_of::<T>() as u64,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let mem = DmaMemory::new_memfd(4096, 0).unwrap();
        assert!(mem.write(4090, &[0; 7]).is_err());
        assert!(mem.write(u64::MAX, &[0; 1]).is_err());
        mem.write(4089, &[1; 7]).unwrap();
        let buf = mem.alloc(8, 8).unwrap();
        assert!(buf.write_at(4, &[0; 5]).is_err());
        assert!(buf.segment(8, 1).is_err());
        mem.store::<u16>(buf.gpa(), 0xbeef, Ordering::Release)
            .unwrap();
        assert_eq!(
            mem.load::<u16>(buf.gpa(), Ordering::Acquire).unwrap(),
            0xbeef
        );
        assert_eq!(
            mem.host_address(0),
            Some(mem.guest_region().as_ptr() as u64)
        );
        assert!(mem.raw_fd().is_some());
    }
}

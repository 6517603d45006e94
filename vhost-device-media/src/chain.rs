//! Strict walk of a descriptor chain in guest memory.
//!
//! virtio-queue's iterator ends a chain silently on a loop or a bad address,
//! which would make a malformed chain look like a short one. The guest is
//! untrusted, so this walker checks every rule of the virtio split ring
//! (VIRTIO 1.2, 2.7.5) and reports which one broke: addresses outside guest
//! memory, lengths that overflow, `next` out of range, loops, readable after
//! writable descriptors, nested or oversized indirect tables. It returns the
//! segments as guest addresses only; the bytes are never read here.

use virtio_queue::desc::split::Descriptor;
use vm_memory::{Address, ByteValued, GuestAddress};

use crate::memory::GuestRam;

/// One descriptor's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical address.
    pub addr: GuestAddress,
    /// Length in bytes.
    pub len: u32,
}

/// A validated chain: its head and its readable then writable segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Head descriptor index (what goes into the used ring).
    pub head: u16,
    /// Device-readable segments, in order.
    pub readable: Vec<Segment>,
    /// Device-writable segments, in order.
    pub writable: Vec<Segment>,
}

impl Chain {
    /// Total readable bytes.
    pub fn readable_len(&self) -> u64 {
        self.readable.iter().map(|s| u64::from(s.len)).sum()
    }

    /// Total writable bytes.
    pub fn writable_len(&self) -> u64 {
        self.writable.iter().map(|s| u64::from(s.len)).sum()
    }
}

/// Why a chain is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A descriptor could not be read (table outside guest memory).
    #[error("descriptor {index} of the table at {table:#x} is outside guest memory")]
    TableOutOfRange {
        /// Table address.
        table: u64,
        /// Descriptor index.
        index: u16,
    },
    /// A buffer lies (partly) outside guest memory or wraps the address space.
    #[error("buffer {addr:#x}+{len} is outside guest memory")]
    BufferOutOfRange {
        /// Address.
        addr: u64,
        /// Length.
        len: u32,
    },
    /// `next` points past the table.
    #[error("next index {next} is beyond the table of {size} descriptors")]
    NextOutOfRange {
        /// The index.
        next: u16,
        /// Table size.
        size: u16,
    },
    /// More descriptors than the table holds: a loop.
    #[error("chain longer than its table: a descriptor loop")]
    Loop,
    /// A readable descriptor after a writable one.
    #[error("readable descriptor after a writable one")]
    ReadAfterWrite,
    /// An indirect descriptor without the feature.
    #[error("indirect descriptor but VIRTIO_F_INDIRECT_DESC was not negotiated")]
    IndirectNotNegotiated,
    /// An indirect descriptor inside an indirect table, or with NEXT set.
    #[error("indirect descriptor nested or chained")]
    BadIndirect,
    /// An indirect table whose size is not a multiple of 16, empty, or too
    /// large.
    #[error("indirect table of {len} bytes is invalid (limit {max} descriptors)")]
    IndirectTableSize {
        /// Table length in bytes.
        len: u32,
        /// Most descriptors allowed.
        max: u16,
    },
    /// More than 4 GiB in total.
    #[error("chain longer than 4 GiB")]
    TooLong,
}

const DESC_SIZE: u64 = 16;

/// Walks the chain at `head` of the descriptor table at `table` of
/// `queue_size` entries. `indirect_ok` says whether VIRTIO_F_INDIRECT_DESC
/// was negotiated; an indirect table may hold at most `queue_size`
/// descriptors (VIRTIO 1.2, 2.7.5.3.1).
pub fn walk<M: GuestRam + ?Sized>(
    mem: &M,
    table: GuestAddress,
    queue_size: u16,
    head: u16,
    indirect_ok: bool,
) -> Result<Chain, ChainError> {
    let mut chain = Chain {
        head,
        readable: Vec::new(),
        writable: Vec::new(),
    };
    let mut table = table;
    let mut size = queue_size;
    let mut index = head;
    let mut in_indirect = false;
    let mut budget = u32::from(queue_size);
    let mut total: u64 = 0;
    loop {
        if index >= size {
            return Err(ChainError::NextOutOfRange { next: index, size });
        }
        if budget == 0 {
            return Err(ChainError::Loop);
        }
        budget -= 1;
        let at =
            table
                .checked_add(u64::from(index) * DESC_SIZE)
                .ok_or(ChainError::TableOutOfRange {
                    table: table.raw_value(),
                    index,
                })?;
        let mut desc = Descriptor::default();
        mem.read_at(at, desc.as_mut_slice())
            .map_err(|_| ChainError::TableOutOfRange {
                table: table.raw_value(),
                index,
            })?;
        if desc.refers_to_indirect_table() {
            if !indirect_ok {
                return Err(ChainError::IndirectNotNegotiated);
            }
            if in_indirect || desc.has_next() {
                return Err(ChainError::BadIndirect);
            }
            let len = desc.len();
            let count = u64::from(len) / DESC_SIZE;
            if len == 0 || u64::from(len) % DESC_SIZE != 0 || count > u64::from(queue_size) {
                return Err(ChainError::IndirectTableSize {
                    len,
                    max: queue_size,
                });
            }
            check_range(mem, desc.addr(), len)?;
            table = desc.addr();
            size = u16::try_from(count).map_err(|_| ChainError::IndirectTableSize {
                len,
                max: queue_size,
            })?;
            budget = u32::from(size);
            index = 0;
            in_indirect = true;
            continue;
        }
        check_range(mem, desc.addr(), desc.len())?;
        total += u64::from(desc.len());
        if total > u64::from(u32::MAX) {
            return Err(ChainError::TooLong);
        }
        let segment = Segment {
            addr: desc.addr(),
            len: desc.len(),
        };
        if desc.is_write_only() {
            chain.writable.push(segment);
        } else if chain.writable.is_empty() {
            chain.readable.push(segment);
        } else {
            return Err(ChainError::ReadAfterWrite);
        }
        if !desc.has_next() {
            return Ok(chain);
        }
        index = desc.next();
    }
}

/// Checks that `[addr, addr + len)` lies inside guest memory.
fn check_range<M: GuestRam + ?Sized>(
    mem: &M,
    addr: GuestAddress,
    len: u32,
) -> Result<(), ChainError> {
    if mem.contains(addr, len) {
        Ok(())
    } else {
        Err(ChainError::BufferOutOfRange {
            addr: addr.raw_value(),
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtio_queue::desc::split::Descriptor as D;
    use vm_memory::{Bytes, GuestMemoryMmap};

    const F_NEXT: u16 = 1;
    const F_WRITE: u16 = 2;
    const F_INDIRECT: u16 = 4;
    const TABLE: u64 = 0x1000;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
    }

    fn write(mem: &GuestMemoryMmap, table: u64, descs: &[D]) {
        for (i, d) in descs.iter().enumerate() {
            mem.write_obj(*d, GuestAddress(table + i as u64 * 16))
                .unwrap();
        }
    }

    fn walk8(mem: &GuestMemoryMmap, head: u16, indirect: bool) -> Result<Chain, ChainError> {
        walk(mem, GuestAddress(TABLE), 8, head, indirect)
    }

    #[test]
    fn readable_then_writable() {
        let m = mem();
        write(
            &m,
            TABLE,
            &[
                D::new(0x2000, 48, F_NEXT, 1),
                D::new(0x3000, 100, F_NEXT, 2),
                D::new(0x4000, 8, F_WRITE, 0),
            ],
        );
        let c = walk8(&m, 0, false).unwrap();
        assert_eq!(c.readable.len(), 2);
        assert_eq!(c.readable_len(), 148);
        assert_eq!(
            c.writable,
            vec![Segment {
                addr: GuestAddress(0x4000),
                len: 8
            }]
        );
    }

    #[test]
    fn malformed_chains() {
        let m = mem();
        write(
            &m,
            TABLE,
            &[D::new(0x2000, 48, F_NEXT, 1), D::new(0x3000, 8, F_NEXT, 0)],
        );
        assert_eq!(walk8(&m, 0, false), Err(ChainError::Loop));
        write(&m, TABLE, &[D::new(0x2000, 48, F_NEXT, 9)]);
        assert_eq!(
            walk8(&m, 0, false),
            Err(ChainError::NextOutOfRange { next: 9, size: 8 })
        );
        write(&m, TABLE, &[D::new(0xF_FFF0, 0x20, 0, 0)]);
        assert!(matches!(
            walk8(&m, 0, false),
            Err(ChainError::BufferOutOfRange { .. })
        ));
        write(&m, TABLE, &[D::new(u64::MAX - 4, 16, 0, 0)]);
        assert!(matches!(
            walk8(&m, 0, false),
            Err(ChainError::BufferOutOfRange { .. })
        ));
        write(
            &m,
            TABLE,
            &[
                D::new(0x2000, 8, F_WRITE | F_NEXT, 1),
                D::new(0x3000, 8, 0, 0),
            ],
        );
        assert_eq!(walk8(&m, 0, false), Err(ChainError::ReadAfterWrite));
        assert!(matches!(
            walk8(&m, 8, false),
            Err(ChainError::NextOutOfRange { .. })
        ));
        assert!(matches!(
            walk(&m, GuestAddress(0xFFFF_FFF0), 8, 0, false),
            Err(ChainError::TableOutOfRange { .. })
        ));
    }

    #[test]
    fn indirect_tables() {
        let m = mem();
        write(
            &m,
            0x8000,
            &[D::new(0x2000, 48, F_NEXT, 1), D::new(0x4000, 8, F_WRITE, 0)],
        );
        write(&m, TABLE, &[D::new(0x8000, 32, F_INDIRECT, 0)]);
        assert_eq!(walk8(&m, 0, false), Err(ChainError::IndirectNotNegotiated));
        let c = walk8(&m, 0, true).unwrap();
        assert_eq!((c.readable.len(), c.writable.len()), (1, 1));
        write(&m, TABLE, &[D::new(0x8000, 16 * 9, F_INDIRECT, 0)]);
        assert!(matches!(
            walk8(&m, 0, true),
            Err(ChainError::IndirectTableSize { .. })
        ));
        write(&m, TABLE, &[D::new(0x8000, 20, F_INDIRECT, 0)]);
        assert!(matches!(
            walk8(&m, 0, true),
            Err(ChainError::IndirectTableSize { .. })
        ));
        write(&m, TABLE, &[D::new(0x8000, 32, F_INDIRECT | F_NEXT, 1)]);
        assert_eq!(walk8(&m, 0, true), Err(ChainError::BadIndirect));
        write(&m, 0x8000, &[D::new(0x9000, 16, F_INDIRECT, 0)]);
        write(&m, TABLE, &[D::new(0x8000, 16, F_INDIRECT, 0)]);
        assert_eq!(walk8(&m, 0, true), Err(ChainError::BadIndirect));
        write(&m, 0x8000, &[D::new(0x2000, 8, F_NEXT, 0)]);
        write(&m, TABLE, &[D::new(0x8000, 16, F_INDIRECT, 0)]);
        assert_eq!(walk8(&m, 0, true), Err(ChainError::Loop));
    }
}

//! The split ring's layout in memory: descriptor flags, one descriptor
//! table entry byte for byte ([`RawDesc`]), and where the descriptor table,
//! the avail ring and the used ring (with `used_event`/`avail_event`) put
//! each field ([`QueueLayout`]). Pure arithmetic, shared by the driver, the
//! transports that hand the addresses to the device, and test devices.

/// Descriptor flag: the chain continues at `next`.
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the buffer is device-writable.
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer holds an indirect descriptor table.
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;
/// Avail ring flag: the driver asks not to be interrupted.
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used ring flag: the device asks not to be notified.
pub const VIRTQ_USED_F_NO_NOTIFY: u16 = 1;
/// Largest split queue size.
pub const MAX_QUEUE_SIZE: u16 = 32768;
/// Size of one descriptor.
pub const DESC_SIZE: usize = 16;

/// One descriptor table entry, exactly as it lies in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawDesc {
    /// Guest-physical address of the buffer.
    pub addr: u64,
    /// Length of the buffer.
    pub len: u32,
    /// `VIRTQ_DESC_F_*` bits (any value is accepted by the raw interface).
    pub flags: u16,
    /// Index of the next descriptor when `flags` has `VIRTQ_DESC_F_NEXT`.
    pub next: u16,
}

impl RawDesc {
    /// The 16 little-endian bytes of the entry.
    pub fn to_bytes(&self) -> [u8; DESC_SIZE] {
        let mut out = [0u8; DESC_SIZE];
        out[0..8].copy_from_slice(&self.addr.to_le_bytes());
        out[8..12].copy_from_slice(&self.len.to_le_bytes());
        out[12..14].copy_from_slice(&self.flags.to_le_bytes());
        out[14..16].copy_from_slice(&self.next.to_le_bytes());
        out
    }

    /// Parses 16 little-endian bytes.
    pub fn from_bytes(bytes: &[u8; DESC_SIZE]) -> RawDesc {
        let [
            a0,
            a1,
            a2,
            a3,
            a4,
            a5,
            a6,
            a7,
            l0,
            l1,
            l2,
            l3,
            f0,
            f1,
            n0,
            n1,
        ] = *bytes;
        RawDesc {
            addr: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            flags: u16::from_le_bytes([f0, f1]),
            next: u16::from_le_bytes([n0, n1]),
        }
    }
}

/// Where a queue lives, as the transport tells the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLayout {
    /// Number of descriptors (power of two).
    pub size: u16,
    /// Guest-physical address of the descriptor table.
    pub desc: u64,
    /// Guest-physical address of the available ring.
    pub avail: u64,
    /// Guest-physical address of the used ring.
    pub used: u64,
}

impl QueueLayout {
    /// Bytes of the descriptor table of a queue of `size`.
    pub fn desc_bytes(size: u16) -> usize {
        DESC_SIZE * usize::from(size)
    }

    /// Bytes of the available ring (with `used_event`).
    pub fn avail_bytes(size: u16) -> usize {
        6 + 2 * usize::from(size)
    }

    /// Bytes of the used ring (with `avail_event`).
    pub fn used_bytes(size: u16) -> usize {
        6 + 8 * usize::from(size)
    }

    /// Address of the used ring entry `slot`.
    pub fn used_elem(&self, slot: u16) -> u64 {
        self.used + 4 + 8 * u64::from(slot)
    }

    /// Address of the avail ring entry `slot`.
    pub fn avail_elem(&self, slot: u16) -> u64 {
        self.avail + 4 + 2 * u64::from(slot)
    }

    /// Address of `used_event` (end of the avail ring).
    pub fn used_event(&self) -> u64 {
        self.avail + 4 + 2 * u64::from(self.size)
    }

    /// Address of `avail_event` (end of the used ring).
    pub fn avail_event(&self) -> u64 {
        self.used + 4 + 8 * u64::from(self.size)
    }

    /// Address of descriptor `index`.
    pub fn desc_entry(&self, index: u16) -> u64 {
        self.desc + DESC_SIZE as u64 * u64::from(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtqueue::fake_device::setup;
    use crate::virtqueue::{QueueFeatures, Virtqueue};

    #[test]
    fn layout_alignment_and_sizes() {
        let (mem, vq, _) = setup(256, QueueFeatures::default());
        let l = vq.layout();
        assert_eq!(l.size, 256);
        assert_eq!(l.desc % 16, 0);
        assert_eq!(l.avail % 2, 0);
        assert_eq!(l.used % 4, 0);
        assert_eq!(QueueLayout::desc_bytes(256), 4096);
        assert_eq!(QueueLayout::avail_bytes(256), 518);
        assert_eq!(QueueLayout::used_bytes(256), 2054);
        assert_eq!(l.used_event(), l.avail + 516);
        assert_eq!(l.avail_event(), l.used + 2052);
        for gpa in [l.desc, l.avail, l.used] {
            assert!(mem.contains(gpa, 1));
        }
        assert!(Virtqueue::new(&mem, 0, 100, QueueFeatures::default()).is_err());
        assert!(Virtqueue::new(&mem, 0, 0, QueueFeatures::default()).is_err());
    }
}

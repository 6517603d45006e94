//! Split virtqueue, driver side (virtio 1.x, "Split Virtqueues").
//!
//! The descriptor table, available ring and used ring live in DMA memory at
//! their virtio 1.x alignments (16, 2 and 4 bytes). Everything the device can
//! write (used ring, avail_event) is read with atomic loads and treated as
//! untrusted: the free-descriptor list and the record of which heads are in
//! flight stay in private memory, and a used entry for a head the driver does
//! not hold is logged and skipped, never trusted.
//!
//! Memory ordering follows the spec: descriptors and the avail ring entry are
//! written before a Release store of `avail.idx`; `used.idx` is loaded with
//! Acquire before its entries are read; a full fence separates publishing
//! from reading `avail_event`/`used.flags` (notification suppression) and
//! writing `used_event` from re-reading `used.idx`.
//!
//! Segments and ring addresses are driver addresses of the DMA memory; the
//! queue writes the device's view of them ([`DmaMemory::device_segments`]:
//! the same addresses for memfd memory, physical ones for hugepages, where a
//! segment crossing discontiguous pages becomes several descriptors). Rings
//! and indirect tables are allocated physically contiguous.
//!
//! The queue is split by job: `layout` is where the rings lie in memory and
//! how a descriptor is laid out; `chain` builds well-formed chains (direct
//! or through an indirect table); `notify` decides notifications
//! (notification suppression, EVENT_IDX); `used` reads and validates the
//! used ring the device writes; `raw` writes arbitrary descriptor entries
//! and publishes arbitrary heads, so conformance tests can feed a device
//! malformed chains. This file holds the queue's own state: its rings, the
//! free list, the chains in flight, and publishing to the avail ring.

use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

use crate::dma::{DmaBuffer, DmaError, DmaMemory};

mod chain;
#[cfg(test)]
pub(crate) mod fake_device;
mod layout;
mod notify;
mod raw;
mod used;

pub use layout::{
    DESC_SIZE, MAX_QUEUE_SIZE, QueueLayout, RawDesc, VIRTQ_AVAIL_F_NO_INTERRUPT,
    VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_USED_F_NO_NOTIFY,
};
pub use notify::need_event;

/// Why a virtqueue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue size is not a power of two in `1..=32768`.
    #[error("queue size {0} is not a power of two in 1..=32768")]
    BadSize(u16),
    /// Ring or table memory could not be allocated or accessed.
    #[error("DMA memory: {0}")]
    Dma(#[from] DmaError),
    /// Not enough free descriptors.
    #[error("queue full: {needed} descriptors needed, {free} free")]
    Full {
        /// Descriptors the chain needs.
        needed: usize,
        /// Descriptors free.
        free: usize,
    },
    /// A chain without any buffer.
    #[error("a chain needs at least one buffer")]
    EmptyChain,
    /// A chain longer than the queue size.
    #[error("a chain of {len} buffers exceeds the queue size {size}")]
    ChainTooLong {
        /// Buffers in the chain.
        len: usize,
        /// Queue size.
        size: u16,
    },
    /// `VIRTIO_F_INDIRECT_DESC` was not negotiated.
    #[error("indirect descriptors were not negotiated")]
    IndirectNotNegotiated,
    /// A segment lies outside the DMA memory.
    #[error("segment {addr:#x}+{len} is outside the DMA memory")]
    BadSegment {
        /// Guest-physical address.
        addr: u64,
        /// Length.
        len: u32,
    },
    /// A raw descriptor slot is out of range or held by a chain in flight.
    #[error("descriptor slot {0} is out of range or in use")]
    SlotBusy(u32),
}

/// Feature-dependent behaviour of a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueFeatures {
    /// `VIRTIO_F_RING_EVENT_IDX` was negotiated.
    pub event_idx: bool,
    /// `VIRTIO_F_INDIRECT_DESC` was negotiated.
    pub indirect: bool,
}

/// A used ring entry for a chain the driver held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsedElem {
    /// Head descriptor index of the chain.
    pub head: u16,
    /// Bytes the device wrote (clamped to the chain's writable length).
    pub len: u32,
}

/// A chain the device holds.
#[derive(Debug)]
struct Inflight {
    /// Descriptor slots of the chain (returned to the free list).
    descs: Vec<u16>,
    /// The indirect table, kept until the chain comes back.
    _indirect: Option<DmaBuffer>,
    /// Total writable bytes, to clamp the used length (None for raw chains).
    writable: Option<u64>,
}

/// A split virtqueue, driver side.
#[derive(Debug)]
pub struct Virtqueue {
    index: u16,
    size: u16,
    features: QueueFeatures,
    mem: Arc<DmaMemory>,
    layout: QueueLayout,
    _desc: DmaBuffer,
    _avail: DmaBuffer,
    _used: DmaBuffer,
    /// Free descriptor slots (a stack: the last freed is reused first).
    free: Vec<u16>,
    is_free: Vec<bool>,
    inflight: Vec<Option<Inflight>>,
    /// Raw slots published under a head the queue cannot track.
    raw_orphans: Vec<u16>,
    /// Shadow of `avail.idx`.
    avail_idx: u16,
    /// `avail.idx` when the last notification decision was made.
    kicked_avail: u16,
    /// Next used ring index to read.
    last_used: u16,
    warned_overrun: bool,
    /// Memory besides `mem` that buffers may lie in (buffer pools).
    extra: Option<ExtraMemory>,
}

/// Memories the device reaches besides the queue's own DMA memory (a
/// broker's buffer pools), shared between the driver and its queues. Each
/// segment is translated by the memory that owns it: driver addresses of
/// hugepage memory become physical addresses page by page.
pub type ExtraMemory = Arc<std::sync::RwLock<Vec<Arc<DmaMemory>>>>;

impl Virtqueue {
    /// Allocates and zeroes the rings of queue `index` with `size`
    /// descriptors in `mem`.
    pub fn new(
        mem: &Arc<DmaMemory>,
        index: u16,
        size: u16,
        features: QueueFeatures,
    ) -> Result<Virtqueue, QueueError> {
        if !size.is_power_of_two() || size > MAX_QUEUE_SIZE {
            return Err(QueueError::BadSize(size));
        }
        let desc = mem.alloc_contiguous(QueueLayout::desc_bytes(size), 16)?;
        let avail = mem.alloc_contiguous(QueueLayout::avail_bytes(size), 2)?;
        let used = mem.alloc_contiguous(QueueLayout::used_bytes(size), 4)?;
        let layout = QueueLayout {
            size,
            desc: desc.gpa(),
            avail: avail.gpa(),
            used: used.gpa(),
        };
        log::debug!("queue {index}: {layout:x?}");
        Ok(Virtqueue {
            index,
            size,
            features,
            mem: Arc::clone(mem),
            layout,
            _desc: desc,
            _avail: avail,
            _used: used,
            free: (0..size).rev().collect(),
            is_free: vec![true; usize::from(size)],
            inflight: (0..size).map(|_| None).collect(),
            extra: None,
            raw_orphans: Vec::new(),
            avail_idx: 0,
            kicked_avail: 0,
            last_used: 0,
            warned_overrun: false,
        })
    }

    /// Queue index.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Number of descriptors.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Where the rings are.
    pub fn layout(&self) -> QueueLayout {
        self.layout
    }

    /// Negotiated behaviour.
    pub fn features(&self) -> QueueFeatures {
        self.features
    }

    /// Free descriptors.
    pub fn num_free(&self) -> usize {
        self.free.len()
    }

    /// Chains the device holds.
    pub fn in_flight(&self) -> usize {
        self.inflight.iter().filter(|c| c.is_some()).count()
    }

    /// Whether the chain with `head` is held by the device.
    pub fn is_in_flight(&self, head: u16) -> bool {
        self.inflight
            .get(usize::from(head))
            .is_some_and(Option::is_some)
    }

    /// The shadow `avail.idx` (chains published so far, modulo 2^16).
    pub fn avail_idx(&self) -> u16 {
        self.avail_idx
    }

    /// The next used ring index the driver will read.
    pub fn last_used_idx(&self) -> u16 {
        self.last_used
    }

    fn take_free(&mut self, n: usize) -> Result<Vec<u16>, QueueError> {
        if n > self.free.len() {
            return Err(QueueError::Full {
                needed: n,
                free: self.free.len(),
            });
        }
        let slots = self.free.split_off(self.free.len() - n);
        let slots: Vec<u16> = slots.into_iter().rev().collect();
        for &slot in &slots {
            self.is_free[usize::from(slot)] = false;
        }
        Ok(slots)
    }

    fn give_back(&mut self, slots: &[u16]) {
        for &slot in slots.iter().rev() {
            if let Some(free) = self.is_free.get_mut(usize::from(slot))
                && !*free
            {
                *free = true;
                self.free.push(slot);
            }
        }
    }

    fn write_desc(&self, gpa: u64, desc: &RawDesc) -> Result<(), QueueError> {
        self.mem.write(gpa, &desc.to_bytes())?;
        Ok(())
    }

    /// Puts `head` on the avail ring and publishes it (Release store of
    /// `avail.idx`).
    fn publish(&mut self, head: u16) -> Result<(), QueueError> {
        let slot = self.avail_idx & (self.size - 1);
        self.mem
            .store(self.layout.avail_elem(slot), head, Ordering::Relaxed)?;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        // Descriptors and the ring entry must be visible before the index.
        fence(Ordering::Release);
        self.mem
            .store(self.layout.avail + 2, self.avail_idx, Ordering::Release)?;
        Ok(())
    }
}

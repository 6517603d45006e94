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
//! Besides well-formed chains (direct or through an indirect table), a raw
//! interface writes arbitrary descriptor entries and publishes arbitrary
//! heads, so conformance tests can feed a device malformed chains.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

use crate::dma::{DmaBuffer, DmaError, DmaMemory};

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

/// `vring_need_event` of the virtio spec: whether moving an index from `old`
/// to `new` passes `event`.
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
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

    fn check_chain(
        &self,
        readable: &[(u64, u32)],
        writable: &[(u64, u32)],
    ) -> Result<usize, QueueError> {
        let total = readable.len() + writable.len();
        if total == 0 {
            return Err(QueueError::EmptyChain);
        }
        if total > usize::from(self.size) {
            return Err(QueueError::ChainTooLong {
                len: total,
                size: self.size,
            });
        }
        for &(addr, len) in readable.iter().chain(writable) {
            if !self.reaches(addr, u64::from(len)) {
                return Err(QueueError::BadSegment { addr, len });
            }
        }
        Ok(total)
    }

    /// The device's view of driver segments (borrowed when no memory is
    /// translated), checked against the queue size again since a segment
    /// may have become several. Each segment is translated by the memory
    /// that holds it (the queue's own or an extra one).
    fn device_view<'a>(
        &self,
        segments: &'a [(u64, u32)],
    ) -> Result<Cow<'a, [(u64, u32)]>, QueueError> {
        let extra = self.extra.as_ref().map(|e| {
            e.read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        });
        let extra = extra.unwrap_or_default();
        if !self.mem.is_translated() && extra.iter().all(|m| !m.is_translated()) {
            return Ok(Cow::Borrowed(segments));
        }
        let mut out = Vec::with_capacity(segments.len());
        for &(addr, len) in segments {
            let owner = if self.mem.contains(addr, u64::from(len)) {
                &self.mem
            } else {
                extra
                    .iter()
                    .find(|m| m.contains(addr, u64::from(len)))
                    .ok_or(QueueError::BadSegment { addr, len })?
            };
            out.extend(owner.device_segments(addr, len)?);
        }
        Ok(Cow::Owned(out))
    }

    fn check_device_len(&self, total: usize) -> Result<usize, QueueError> {
        if total > usize::from(self.size) {
            return Err(QueueError::ChainTooLong {
                len: total,
                size: self.size,
            });
        }
        Ok(total)
    }

    fn writable_len(writable: &[(u64, u32)]) -> u64 {
        writable.iter().map(|&(_, len)| u64::from(len)).sum()
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

    /// Chained descriptors for `readable` then `writable` segments, where
    /// `index(i)` is the slot (or table position) of segment `i`.
    fn chain_descs(
        readable: &[(u64, u32)],
        writable: &[(u64, u32)],
        index: impl Fn(usize) -> u16,
    ) -> Vec<RawDesc> {
        let total = readable.len() + writable.len();
        readable
            .iter()
            .map(|&seg| (seg, 0))
            .chain(writable.iter().map(|&seg| (seg, VIRTQ_DESC_F_WRITE)))
            .enumerate()
            .map(|(i, ((addr, len), write))| {
                let last = i + 1 == total;
                RawDesc {
                    addr,
                    len,
                    flags: write | if last { 0 } else { VIRTQ_DESC_F_NEXT },
                    next: if last { 0 } else { index(i + 1) },
                }
            })
            .collect()
    }

    /// Lets buffers lie in `extra` memory too.
    pub fn set_extra_memory(&mut self, extra: ExtraMemory) {
        self.extra = Some(extra);
    }

    /// Whether `addr..addr + len` lies in memory the device reaches.
    fn reaches(&self, addr: u64, len: u64) -> bool {
        if self.mem.contains(addr, len) {
            return true;
        }
        self.extra.as_ref().is_some_and(|extra| {
            extra
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .any(|m| m.contains(addr, len))
        })
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

    /// Adds a chain of direct descriptors: device-readable segments first,
    /// then device-writable ones (`(guest-physical address, length)`), and
    /// publishes it. Returns the head index, the chain's token until the
    /// device returns it. Does not notify: see [`Virtqueue::needs_notify`].
    pub fn add_chain(
        &mut self,
        readable: &[(u64, u32)],
        writable: &[(u64, u32)],
    ) -> Result<u16, QueueError> {
        self.check_chain(readable, writable)?;
        let readable = self.device_view(readable)?;
        let writable = self.device_view(writable)?;
        let total = self.check_device_len(readable.len() + writable.len())?;
        let (readable, writable) = (&*readable, &*writable);
        let slots = self.take_free(total)?;
        let descs = Self::chain_descs(readable, writable, |i| slots[i]);
        let result = descs
            .iter()
            .zip(&slots)
            .try_for_each(|(desc, &slot)| self.write_desc(self.layout.desc_entry(slot), desc));
        if let Err(e) = result {
            self.give_back(&slots);
            return Err(e);
        }
        let head = slots[0];
        self.inflight[usize::from(head)] = Some(Inflight {
            descs: slots,
            _indirect: None,
            writable: Some(Self::writable_len(writable)),
        });
        self.publish(head)?;
        Ok(head)
    }

    /// Adds a chain through an indirect descriptor table allocated in DMA
    /// memory (one slot of the queue), and publishes it. Needs
    /// `VIRTIO_F_INDIRECT_DESC`.
    pub fn add_indirect_chain(
        &mut self,
        readable: &[(u64, u32)],
        writable: &[(u64, u32)],
    ) -> Result<u16, QueueError> {
        if !self.features.indirect {
            return Err(QueueError::IndirectNotNegotiated);
        }
        self.check_chain(readable, writable)?;
        let readable = self.device_view(readable)?;
        let writable = self.device_view(writable)?;
        let total = self.check_device_len(readable.len() + writable.len())?;
        let (readable, writable) = (&*readable, &*writable);
        let table = self.mem.alloc_contiguous(total * DESC_SIZE, 16)?;
        let descs = Self::chain_descs(readable, writable, |i| {
            // `total <= size <= 32768`, so every position fits.
            u16::try_from(i).unwrap_or(u16::MAX)
        });
        for (i, desc) in descs.iter().enumerate() {
            self.write_desc(table.gpa() + (i * DESC_SIZE) as u64, desc)?;
        }
        let slots = self.take_free(1)?;
        let head = slots[0];
        let main = RawDesc {
            addr: self
                .mem
                .device_address(table.gpa(), (total * DESC_SIZE) as u64)?,
            len: u32::try_from(total * DESC_SIZE).unwrap_or(u32::MAX),
            flags: VIRTQ_DESC_F_INDIRECT,
            next: 0,
        };
        if let Err(e) = self.write_desc(self.layout.desc_entry(head), &main) {
            self.give_back(&slots);
            return Err(e);
        }
        self.inflight[usize::from(head)] = Some(Inflight {
            descs: slots,
            _indirect: Some(table),
            writable: Some(Self::writable_len(writable)),
        });
        self.publish(head)?;
        Ok(head)
    }

    /// Whether the device wants a notification for the chains published
    /// since the last call (honours `avail_event` with EVENT_IDX, else
    /// `VIRTQ_USED_F_NO_NOTIFY`).
    pub fn needs_notify(&mut self) -> bool {
        // The avail.idx store must be visible before avail_event/flags are
        // read, or both sides could skip the notification.
        fence(Ordering::SeqCst);
        let old = self.kicked_avail;
        let new = self.avail_idx;
        self.kicked_avail = new;
        if old == new {
            return false;
        }
        if self.features.event_idx {
            match self
                .mem
                .load::<u16>(self.layout.avail_event(), Ordering::Acquire)
            {
                Ok(event) => need_event(event, new, old),
                Err(e) => {
                    log::error!("queue {}: avail_event unreadable: {e}", self.index);
                    true
                }
            }
        } else {
            match self.mem.load::<u16>(self.layout.used, Ordering::Acquire) {
                Ok(flags) => flags & VIRTQ_USED_F_NO_NOTIFY == 0,
                Err(e) => {
                    log::error!("queue {}: used flags unreadable: {e}", self.index);
                    true
                }
            }
        }
    }

    fn used_idx(&self) -> u16 {
        self.mem
            .load::<u16>(self.layout.used + 2, Ordering::Acquire)
            .unwrap_or_else(|e| {
                log::error!("queue {}: used.idx unreadable: {e}", self.index);
                self.last_used
            })
    }

    /// Whether the device has returned entries not yet read. Call it after
    /// [`Virtqueue::poll_used`] found nothing and before sleeping on the
    /// transport: it orders the `used_event` update before the re-check.
    pub fn has_used(&self) -> bool {
        fence(Ordering::SeqCst);
        self.used_idx() != self.last_used
    }

    /// Asks the device not to interrupt (`VIRTQ_AVAIL_F_NO_INTERRUPT`; a
    /// hint that devices with EVENT_IDX ignore) or to interrupt again.
    pub fn set_interrupt_suppression(&mut self, suppress: bool) {
        let flags = if suppress {
            VIRTQ_AVAIL_F_NO_INTERRUPT
        } else {
            0
        };
        if let Err(e) = self.mem.store(self.layout.avail, flags, Ordering::Release) {
            log::error!("queue {}: avail flags unwritable: {e}", self.index);
        }
    }

    /// Reads the next used entry for a chain the driver holds, frees its
    /// descriptors and returns it. Entries for heads the driver does not
    /// hold (out of range, not in flight, already returned) are logged and
    /// skipped. With EVENT_IDX, `used_event` asks for a notification at the
    /// next entry.
    pub fn poll_used(&mut self) -> Option<UsedElem> {
        loop {
            let used_idx = self.used_idx();
            if used_idx == self.last_used {
                return None;
            }
            let pending = used_idx.wrapping_sub(self.last_used);
            if pending > self.size && !self.warned_overrun {
                self.warned_overrun = true;
                log::warn!(
                    "queue {}: device claims {pending} used entries in a queue of {}",
                    self.index,
                    self.size
                );
            }
            let slot = self.last_used & (self.size - 1);
            let mut entry = [0u8; 8];
            let read = self.mem.read(self.layout.used_elem(slot), &mut entry);
            self.last_used = self.last_used.wrapping_add(1);
            if self.features.event_idx
                && let Err(e) =
                    self.mem
                        .store(self.layout.used_event(), self.last_used, Ordering::Release)
            {
                log::error!("queue {}: used_event unwritable: {e}", self.index);
            }
            if let Err(e) = read {
                log::error!("queue {}: used entry unreadable: {e}", self.index);
                continue;
            }
            let [i0, i1, i2, i3, l0, l1, l2, l3] = entry;
            let id = u32::from_le_bytes([i0, i1, i2, i3]);
            let len = u32::from_le_bytes([l0, l1, l2, l3]);
            let held = u16::try_from(id)
                .ok()
                .filter(|&head| self.is_in_flight(head));
            let Some(head) = held else {
                log::warn!(
                    "queue {}: used entry for head {id} that the driver does not hold; ignored",
                    self.index
                );
                continue;
            };
            let Some(chain) = self.inflight[usize::from(head)].take() else {
                continue;
            };
            self.give_back(&chain.descs);
            let len = match chain.writable {
                Some(max) if u64::from(len) > max => {
                    log::warn!(
                        "queue {}: head {head} used length {len} exceeds its {max} writable bytes",
                        self.index
                    );
                    u32::try_from(max).unwrap_or(u32::MAX)
                }
                _ => len,
            };
            return Some(UsedElem { head, len });
        }
    }

    // ----- raw interface for conformance tests -----

    /// First slot of `n` consecutive free descriptor slots.
    pub fn find_free_run(&self, n: u16) -> Option<u16> {
        let n = usize::from(n);
        if n == 0 {
            return Some(0);
        }
        let mut run = 0;
        for (slot, &free) in self.is_free.iter().enumerate() {
            run = if free { run + 1 } else { 0 };
            if run == n {
                return u16::try_from(slot + 1 - n).ok();
            }
        }
        None
    }

    /// Writes `descs[i]` verbatim into descriptor slot `first + i` (any
    /// address, length, flags and `next`: loops, out-of-range indices,
    /// wrong directions, indirect tables of any length) and publishes
    /// `head`, which may be any value, even outside the queue.
    ///
    /// The slots must be free. They stay reserved until the device returns
    /// `head` (when `head` is one of them) or, otherwise, until
    /// [`Virtqueue::reclaim_raw_orphans`] or the queue is dropped.
    pub fn add_raw_descriptors(
        &mut self,
        first: u16,
        descs: &[RawDesc],
        head: u16,
    ) -> Result<u16, QueueError> {
        let slots: Vec<u16> = (0..descs.len())
            .map(|i| {
                let slot = u32::from(first) + u32::try_from(i).unwrap_or(u32::MAX);
                u16::try_from(slot)
                    .ok()
                    .filter(|&s| self.is_free.get(usize::from(s)).copied().unwrap_or(false))
                    .ok_or(QueueError::SlotBusy(slot))
            })
            .collect::<Result<_, _>>()?;
        for &slot in &slots {
            self.is_free[usize::from(slot)] = false;
        }
        self.free.retain(|s| !slots.contains(s));
        for (desc, &slot) in descs.iter().zip(&slots) {
            self.write_desc(self.layout.desc_entry(slot), desc)?;
        }
        let tracked = slots.contains(&head) && !self.is_in_flight(head);
        if tracked {
            self.inflight[usize::from(head)] = Some(Inflight {
                descs: slots,
                _indirect: None,
                writable: None,
            });
        } else {
            self.raw_orphans.extend(slots);
        }
        self.publish(head)?;
        Ok(head)
    }

    /// Writes `descs` as a table in new DMA memory (for raw indirect
    /// descriptors); keep the buffer alive while the device may read it.
    pub fn write_raw_table(&self, descs: &[RawDesc]) -> Result<DmaBuffer, QueueError> {
        let table = self
            .mem
            .alloc((descs.len() * DESC_SIZE).max(DESC_SIZE), 16)?;
        for (i, desc) in descs.iter().enumerate() {
            self.write_desc(table.gpa() + (i * DESC_SIZE) as u64, desc)?;
        }
        Ok(table)
    }

    /// Stores `idx` as `avail.idx` without adding entries (e.g. to jump it
    /// by more than the queue size). The queue's own bookkeeping follows it.
    pub fn publish_raw_avail_idx(&mut self, idx: u16) -> Result<(), QueueError> {
        self.avail_idx = idx;
        fence(Ordering::Release);
        self.mem
            .store(self.layout.avail + 2, idx, Ordering::Release)?;
        Ok(())
    }

    /// Returns raw slots published under untracked heads to the free list.
    /// Only sound once the device can no longer read them (after a reset).
    pub fn reclaim_raw_orphans(&mut self) {
        let orphans = std::mem::take(&mut self.raw_orphans);
        self.give_back(&orphans);
    }

    /// Reads descriptor slot `index` as it is in memory.
    pub fn read_descriptor(&self, index: u16) -> Result<RawDesc, QueueError> {
        let mut bytes = [0u8; DESC_SIZE];
        self.mem
            .read(self.layout.desc_entry(index % self.size), &mut bytes)?;
        Ok(RawDesc::from_bytes(&bytes))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A device-side view of a split queue, working on DMA memory like a
    /// real device would (for tests only).
    pub(crate) struct FakeDevice {
        pub(crate) mem: Arc<DmaMemory>,
        pub(crate) layout: QueueLayout,
        pub(crate) next_avail: u16,
        pub(crate) used_idx: u16,
        pub(crate) event_idx: bool,
    }

    /// A chain as the device sees it: `(addr, len, writable)` segments.
    pub(crate) type Chain = Vec<(u64, u32, bool)>;

    impl FakeDevice {
        pub(crate) fn new(mem: &Arc<DmaMemory>, layout: QueueLayout, event_idx: bool) -> Self {
            FakeDevice {
                mem: Arc::clone(mem),
                layout,
                next_avail: 0,
                used_idx: 0,
                event_idx,
            }
        }

        fn desc_at(&self, gpa: u64) -> RawDesc {
            let mut bytes = [0u8; DESC_SIZE];
            self.mem.read(gpa, &mut bytes).unwrap();
            RawDesc::from_bytes(&bytes)
        }

        /// Pops the next available head and walks its chain.
        pub(crate) fn pop(&mut self) -> Option<(u16, Chain)> {
            let avail_idx: u16 = self
                .mem
                .load(self.layout.avail + 2, Ordering::Acquire)
                .unwrap();
            if avail_idx == self.next_avail {
                return None;
            }
            let slot = self.next_avail % self.layout.size;
            let head: u16 = self
                .mem
                .load(self.layout.avail_elem(slot), Ordering::Relaxed)
                .unwrap();
            self.next_avail = self.next_avail.wrapping_add(1);
            if self.event_idx {
                self.mem
                    .store(
                        self.layout.avail_event(),
                        self.next_avail,
                        Ordering::Release,
                    )
                    .unwrap();
            }
            let mut chain = Vec::new();
            let mut desc = self.desc_at(self.layout.desc_entry(head));
            if desc.flags & VIRTQ_DESC_F_INDIRECT != 0 {
                let table = desc.addr;
                let mut i = 0u16;
                loop {
                    let d = self.desc_at(table + u64::from(i) * DESC_SIZE as u64);
                    chain.push((d.addr, d.len, d.flags & VIRTQ_DESC_F_WRITE != 0));
                    if d.flags & VIRTQ_DESC_F_NEXT == 0 {
                        break;
                    }
                    i = d.next;
                }
                return Some((head, chain));
            }
            loop {
                chain.push((desc.addr, desc.len, desc.flags & VIRTQ_DESC_F_WRITE != 0));
                if desc.flags & VIRTQ_DESC_F_NEXT == 0 {
                    break;
                }
                desc = self.desc_at(self.layout.desc_entry(desc.next));
            }
            Some((head, chain))
        }

        /// Appends a used entry with an arbitrary id.
        pub(crate) fn push_used(&mut self, id: u32, len: u32) {
            let slot = self.used_idx % self.layout.size;
            let mut entry = [0u8; 8];
            entry[..4].copy_from_slice(&id.to_le_bytes());
            entry[4..].copy_from_slice(&len.to_le_bytes());
            self.mem.write(self.layout.used_elem(slot), &entry).unwrap();
            self.used_idx = self.used_idx.wrapping_add(1);
            self.mem
                .store(self.layout.used + 2, self.used_idx, Ordering::Release)
                .unwrap();
        }

        pub(crate) fn used_event(&self) -> u16 {
            self.mem
                .load(self.layout.used_event(), Ordering::Acquire)
                .unwrap()
        }
    }

    fn setup(size: u16, features: QueueFeatures) -> (Arc<DmaMemory>, Virtqueue, FakeDevice) {
        let mem = DmaMemory::new_memfd(1 << 20, 0x4000_0000).unwrap();
        let vq = Virtqueue::new(&mem, 0, size, features).unwrap();
        let dev = FakeDevice::new(&mem, vq.layout(), features.event_idx);
        (mem, vq, dev)
    }

    /// 4 KiB of memfd memory at `driver_base` whose pages the device sees
    /// at `pages` (a stand-in for hugepage memory).
    fn translated(driver_base: u64, pages: Vec<u64>) -> Arc<DmaMemory> {
        use vm_memory::{FileOffset, MmapRegion};
        let size = pages.len() * 4096;
        let backing = DmaMemory::new_memfd(size, 0).unwrap();
        let file = backing.file().unwrap().try_clone().unwrap();
        let region = MmapRegion::from_file(FileOffset::new(file, 0), size).unwrap();
        let phys = crate::dma::PhysPages {
            page_size: 4096,
            pages,
        };
        DmaMemory::from_mmap_region_translated(region, driver_base, phys).unwrap()
    }

    #[test]
    fn extra_memory_segments_are_translated_by_their_own_memory() {
        let ring_mem = translated(1 << 46, (0..64).map(|i| 0x100_0000 + i * 4096).collect());
        let mut vq = Virtqueue::new(&ring_mem, 0, 8, QueueFeatures::default()).unwrap();
        let pool = translated(1 << 47, vec![0x20_0000, 0x7_0000]);
        let extra = ExtraMemory::default();
        vq.set_extra_memory(Arc::clone(&extra));
        let seg = ((1 << 47) + 4000, 200);
        assert!(matches!(
            vq.add_chain(&[seg], &[]),
            Err(QueueError::BadSegment { .. })
        ));
        extra.write().unwrap().push(Arc::clone(&pool));
        let head = vq.add_chain(&[seg], &[]).unwrap();
        let first = vq.read_descriptor(head).unwrap();
        assert_eq!((first.addr, first.len), (0x20_0000 + 4000, 96));
        assert_ne!(first.flags & VIRTQ_DESC_F_NEXT, 0);
        let second = vq.read_descriptor(first.next).unwrap();
        assert_eq!((second.addr, second.len), (0x7_0000, 104));
    }

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

    #[test]
    fn echo_through_a_fake_device() {
        let (mem, mut vq, mut dev) = setup(8, QueueFeatures::default());
        let out = mem.alloc(5, 8).unwrap();
        out.write_at(0, b"hello").unwrap();
        let inb = mem.alloc(16, 8).unwrap();
        let head = vq
            .add_chain(&[out.whole().unwrap()], &[inb.whole().unwrap()])
            .unwrap();
        assert_eq!(vq.num_free(), 6);
        assert!(vq.needs_notify());
        assert!(!vq.needs_notify(), "nothing new since the last decision");
        let (got_head, chain) = dev.pop().unwrap();
        assert_eq!(got_head, head);
        assert_eq!(chain, vec![(out.gpa(), 5, false), (inb.gpa(), 16, true)]);
        let data = mem.read_vec(chain[0].0, 5).unwrap();
        mem.write(chain[1].0, &data).unwrap();
        assert_eq!(vq.poll_used(), None);
        assert!(!vq.has_used());
        dev.push_used(u32::from(head), 5);
        assert!(vq.has_used());
        assert_eq!(vq.poll_used(), Some(UsedElem { head, len: 5 }));
        assert_eq!(inb.read_vec(0, 5).unwrap(), b"hello");
        assert_eq!(vq.num_free(), 8);
        assert_eq!(vq.in_flight(), 0);
    }

    #[test]
    fn free_list_reuse_and_queue_full() {
        let (mem, mut vq, mut dev) = setup(4, QueueFeatures::default());
        let buf = mem.alloc(64, 8).unwrap();
        let seg = buf.segment(0, 8).unwrap();
        let a = vq.add_chain(&[seg, seg], &[]).unwrap();
        let b = vq.add_chain(&[seg], &[seg]).unwrap();
        assert!(matches!(
            vq.add_chain(&[seg], &[]),
            Err(QueueError::Full { needed: 1, free: 0 })
        ));
        assert!(matches!(
            vq.add_chain(&[seg; 5], &[]),
            Err(QueueError::ChainTooLong { .. })
        ));
        assert!(matches!(
            vq.add_chain(&[], &[]),
            Err(QueueError::EmptyChain)
        ));
        assert!(matches!(
            vq.add_chain(&[(u64::MAX - 4, 8)], &[]),
            Err(QueueError::BadSegment { .. })
        ));
        let (h, _) = dev.pop().unwrap();
        assert_eq!(h, a);
        dev.push_used(u32::from(a), 0);
        assert_eq!(vq.poll_used().unwrap().head, a);
        assert_eq!(vq.num_free(), 2);
        let c = vq.add_chain(&[seg], &[seg]).unwrap();
        assert_eq!(c, a, "the freed slots are reused");
        assert!(vq.is_in_flight(b) && vq.is_in_flight(c));
        let (_, chain_b) = dev.pop().unwrap();
        assert_eq!(chain_b.len(), 2);
        let (_, chain_c) = dev.pop().unwrap();
        assert_eq!(chain_c, vec![(seg.0, 8, false), (seg.0, 8, true)]);
    }

    #[test]
    fn unknown_and_duplicate_used_heads_are_skipped() {
        let (mem, mut vq, mut dev) = setup(8, QueueFeatures::default());
        let buf = mem.alloc(16, 8).unwrap();
        let head = vq.add_chain(&[], &[buf.whole().unwrap()]).unwrap();
        dev.pop().unwrap();
        dev.push_used(7, 1); // a free slot
        dev.push_used(1000, 1); // out of range
        dev.push_used(u32::MAX, 1);
        dev.push_used(u32::from(head), 1000); // longer than the buffer
        dev.push_used(u32::from(head), 1); // returned twice
        assert_eq!(vq.poll_used(), Some(UsedElem { head, len: 16 }));
        assert_eq!(vq.poll_used(), None);
        assert_eq!(vq.last_used_idx(), 5);
        assert_eq!(vq.num_free(), 8);
    }

    #[test]
    fn event_idx_notification_decisions() {
        let feats = QueueFeatures {
            event_idx: true,
            indirect: false,
        };
        let (mem, mut vq, mut dev) = setup(8, feats);
        let buf = mem.alloc(16, 8).unwrap();
        let seg = buf.whole().unwrap();
        // avail_event = 0: the device wants a kick when entry 0 is published.
        vq.add_chain(&[seg], &[]).unwrap();
        assert!(vq.needs_notify());
        // The device has not consumed anything: avail_event stays 0, so
        // publishing entry 1 needs no new kick.
        vq.add_chain(&[seg], &[]).unwrap();
        assert!(!vq.needs_notify());
        // The device consumes both and sets avail_event = 2.
        dev.pop().unwrap();
        dev.pop().unwrap();
        vq.add_chain(&[seg], &[]).unwrap();
        assert!(vq.needs_notify());
        // Batch: two chains at once, event inside the batch.
        dev.pop().unwrap();
        vq.add_chain(&[seg], &[]).unwrap();
        vq.add_chain(&[seg], &[]).unwrap();
        assert!(vq.needs_notify());
        // The driver's used_event follows what it consumed.
        assert_eq!(dev.used_event(), 0);
        dev.push_used(0, 0);
        vq.poll_used().unwrap();
        assert_eq!(dev.used_event(), 1);
        assert!(need_event(0, 1, 0));
        assert!(!need_event(5, 3, 2));
        assert!(need_event(0xffff, 0, 0xfffe), "wraps around");
    }

    #[test]
    fn no_notify_flag_without_event_idx() {
        let (mem, mut vq, _dev) = setup(8, QueueFeatures::default());
        let buf = mem.alloc(16, 8).unwrap();
        let seg = buf.whole().unwrap();
        mem.store(vq.layout().used, VIRTQ_USED_F_NO_NOTIFY, Ordering::Release)
            .unwrap();
        vq.add_chain(&[seg], &[]).unwrap();
        assert!(!vq.needs_notify());
        mem.store(vq.layout().used, 0u16, Ordering::Release)
            .unwrap();
        vq.add_chain(&[seg], &[]).unwrap();
        assert!(vq.needs_notify());
    }

    #[test]
    fn indirect_tables() {
        let feats = QueueFeatures {
            event_idx: false,
            indirect: true,
        };
        let (mem, mut vq, mut dev) = setup(4, feats);
        let free_before = mem.free_bytes();
        let buf = mem.alloc(256, 16).unwrap();
        let segs: Vec<(u64, u32)> = (0..3).map(|i| buf.segment(i * 16, 16).unwrap()).collect();
        let out = buf.segment(128, 64).unwrap();
        let head = vq.add_indirect_chain(&segs, &[out]).unwrap();
        assert_eq!(vq.num_free(), 3, "one slot for a chain of four");
        let main = vq.read_descriptor(head).unwrap();
        assert_eq!(main.flags, VIRTQ_DESC_F_INDIRECT);
        assert_eq!(main.len, 64);
        let (h, chain) = dev.pop().unwrap();
        assert_eq!(h, head);
        assert_eq!(chain.len(), 4);
        assert_eq!(chain[3], (out.0, 64, true));
        assert!(chain[..3].iter().all(|c| !c.2));
        dev.push_used(u32::from(head), 64);
        assert_eq!(vq.poll_used(), Some(UsedElem { head, len: 64 }));
        drop(buf);
        assert_eq!(mem.free_bytes(), free_before, "the table is freed");
        let (_, mut plain, _) = setup(4, QueueFeatures::default());
        assert!(matches!(
            plain.add_indirect_chain(&[(0x4000_0000, 1)], &[]),
            Err(QueueError::IndirectNotNegotiated)
        ));
    }

    #[test]
    fn raw_descriptors_are_written_verbatim() {
        let (_mem, mut vq, _dev) = setup(8, QueueFeatures::default());
        let first = vq.find_free_run(2).unwrap();
        let looped = [
            RawDesc {
                addr: 0xdead_beef_0000,
                len: u32::MAX,
                flags: VIRTQ_DESC_F_NEXT,
                next: first + 1,
            },
            RawDesc {
                addr: 0,
                len: 4,
                flags: VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE,
                next: first,
            },
        ];
        let head = vq.add_raw_descriptors(first, &looped, first).unwrap();
        assert_eq!(vq.read_descriptor(first).unwrap(), looped[0]);
        assert_eq!(vq.read_descriptor(first + 1).unwrap(), looped[1]);
        assert!(vq.is_in_flight(head));
        assert_eq!(vq.num_free(), 6);
        assert!(matches!(
            vq.add_raw_descriptors(first, &looped, first),
            Err(QueueError::SlotBusy(_))
        ));
        // A head outside the queue: published, slots kept as orphans.
        vq.add_raw_descriptors(first + 2, &looped[..1], 500)
            .unwrap();
        assert_eq!(vq.num_free(), 5);
        vq.reclaim_raw_orphans();
        assert_eq!(vq.num_free(), 6);
        let table = vq.write_raw_table(&looped).unwrap();
        assert_eq!(table.len(), 32);
        vq.publish_raw_avail_idx(1000).unwrap();
        assert_eq!(vq.avail_idx(), 1000);
    }
}

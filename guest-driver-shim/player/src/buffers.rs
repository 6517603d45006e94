//! The buffers of one stream (V4L2's `REQBUFS`/`QBUF`/`DQBUF` bookkeeping):
//! `count` equal slots in one pool, each owned either by the player or by
//! the device.

use std::collections::VecDeque;

use mediaredir_proto::status::Status;

use super::mapping::Mapping;

/// Slot sizes are rounded up to this (cache-line aligned payloads).
pub(crate) const SLOT_ALIGN: usize = 64;

/// Who holds a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// The player may fill it.
    Player,
    /// Queued with this tag; the device may read it.
    Queued(u32),
}

/// A buffer the device gave back (V4L2 `DQBUF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dequeued {
    /// The buffer index.
    pub index: u32,
    /// How the device completed it: `Ok` when consumed, `Cancelled` when
    /// flushed, `Dropped`, `Stale` after a device restart, or an error.
    pub status: Status,
}

/// The buffers of one stream.
#[derive(Debug)]
pub(crate) struct BufferQueue {
    pub(crate) pool_id: u32,
    mapping: Mapping,
    slot_size: usize,
    slots: Vec<Slot>,
    /// Queued slot indices in queue order.
    order: VecDeque<u32>,
}

impl BufferQueue {
    pub(crate) fn new(pool_id: u32, mapping: Mapping, count: u32, slot_size: usize) -> BufferQueue {
        BufferQueue {
            pool_id,
            mapping,
            slot_size,
            slots: vec![Slot::Player; count as usize],
            order: VecDeque::new(),
        }
    }

    /// Slot size rounded for `size` payload bytes.
    pub(crate) fn slot_size_for(size: usize) -> Option<usize> {
        size.max(1).checked_next_multiple_of(SLOT_ALIGN)
    }

    pub(crate) fn count(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Whether every buffer is back with the player.
    pub(crate) fn all_dequeued(&self) -> bool {
        self.order.is_empty()
    }

    /// Offset of slot `index` in the pool.
    pub(crate) fn offset(&self, index: u32) -> u64 {
        u64::from(index) * self.slot_size as u64
    }

    /// Slot `index` for writing, if the player holds it.
    pub(crate) fn player_slot(&mut self, index: u32) -> Option<&mut [u8]> {
        if *self.slots.get(index as usize)? != Slot::Player {
            return None;
        }
        let offset = usize::try_from(self.offset(index)).ok()?;
        self.mapping.slice_mut(offset, self.slot_size)
    }

    /// Whether slot `index` exists and is the player's.
    pub(crate) fn is_players(&self, index: u32) -> bool {
        self.slots.get(index as usize) == Some(&Slot::Player)
    }

    /// Marks slot `index` queued under `tag`.
    pub(crate) fn mark_queued(&mut self, index: u32, tag: u32) {
        self.slots[index as usize] = Slot::Queued(tag);
        self.order.push_back(index);
    }

    /// Tags of queued slots, oldest first.
    pub(crate) fn queued_tags(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.order
            .iter()
            .filter_map(|&i| match self.slots[i as usize] {
                Slot::Queued(tag) => Some((i, tag)),
                Slot::Player => None,
            })
    }

    /// Gives slot `index` back to the player.
    pub(crate) fn mark_dequeued(&mut self, index: u32) {
        self.slots[index as usize] = Slot::Player;
        self.order.retain(|&i| i != index);
    }

    /// Address of the mapping (tests check payloads are written in place).
    pub(crate) fn base(&self) -> *const u8 {
        self.mapping.as_ptr()
    }

    /// Bytes mapped.
    pub(crate) fn mapped(&self) -> usize {
        self.mapping.len()
    }
}

//! A playback buffer that stays in guest memory until it is consumed.
//!
//! The payload is never copied: a [`GuestBuffer`] keeps the guest-memory
//! mapping alive (an `Arc<dyn GuestRam>` of the mapped regions, which
//! outlives a new `SET_MEM_TABLE`) and exposes the payload as raw
//! `(pointer, length)` pairs ([`RawSlice`]) for `writev` or for wrapping as
//! GStreamer memory. Uplinks see only those descriptors of the payload, never
//! the memory type. Rust references to the bytes are never made: the guest
//! may still write them.
//!
//! Complete on drop: whoever holds the buffer last returns it to the guest.
//! Dropping writes the status set with [`GuestBuffer::set_status`] (`IO` if
//! nobody set one, so a buffer lost in a failing uplink is still returned,
//! with an error), puts the chain in the used ring and returns the stream's
//! credit.

use std::sync::Arc;

use mediaredir_proto::data::{DATA_STATUS_SIZE, status_bytes};
use mediaredir_proto::status::Status;
use vm_memory::GuestAddress;

use crate::chain::Segment;
use crate::counters::Counters;
use crate::memory::GuestRam;
pub use crate::memory::{RawSlice, is_in_guest_memory};
use crate::model::Credit;

/// Puts completed chains in a used ring and notifies the driver.
pub trait UsedRing: Send + Sync {
    /// Returns chain `head` with `len` bytes written.
    fn complete(&self, head: u16, len: u32);
}

/// Wakes the queue processor when a stream's credit frees up.
pub trait Waker: Send + Sync {
    /// Asks for the txqs to be processed again.
    fn wake(&self);
}

/// Why a payload could not be mapped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("payload at {addr:#x}+{len} is not in guest memory")]
pub struct MapError {
    /// Guest address.
    pub addr: u64,
    /// Length.
    pub len: u32,
}

/// Where a buffer's completion goes.
#[derive(Clone)]
pub struct CompletionTarget {
    /// The used ring of the buffer's queue.
    pub ring: Arc<dyn UsedRing>,
    /// Who to wake when credit returns.
    pub waker: Arc<dyn Waker>,
    /// The daemon's counters.
    pub counters: Arc<Counters>,
}

/// A playback payload in guest memory, completed when dropped.
pub struct GuestBuffer {
    mem: Arc<dyn GuestRam>,
    slices: Vec<RawSlice>,
    payload_len: u32,
    status_addr: GuestAddress,
    head: u16,
    status: Status,
    credit: Option<(Arc<Credit>, u64)>,
    target: CompletionTarget,
}

impl std::fmt::Debug for GuestBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestBuffer")
            .field("head", &self.head)
            .field("payload_len", &self.payload_len)
            .field("slices", &self.slices.len())
            .field("status", &self.status)
            .finish()
    }
}

impl GuestBuffer {
    /// Maps `payload` segments (already checked to lie in `mem` by the chain
    /// walker) and remembers where the 8-byte status goes.
    pub fn new(
        mem: Arc<dyn GuestRam>,
        head: u16,
        payload: &[Segment],
        status_addr: GuestAddress,
        target: CompletionTarget,
    ) -> Result<GuestBuffer, MapError> {
        let mut slices = Vec::with_capacity(payload.len());
        let mut payload_len: u32 = 0;
        for seg in payload {
            mem.map(seg.addr, seg.len, &mut slices)
                .map_err(|_| MapError {
                    addr: seg.addr.0,
                    len: seg.len,
                })?;
            payload_len = payload_len.saturating_add(seg.len);
        }
        Ok(GuestBuffer {
            mem,
            slices,
            payload_len,
            status_addr,
            head,
            status: Status::Io,
            credit: None,
            target,
        })
    }

    /// The payload, as pieces of the daemon's mapping of guest memory.
    pub fn slices(&self) -> &[RawSlice] {
        &self.slices
    }

    /// Payload length.
    pub fn payload_len(&self) -> u32 {
        self.payload_len
    }

    /// Sets the status written when the buffer completes.
    pub fn set_status(&mut self, status: Status) {
        self.status = status;
    }

    /// Attaches the stream credit the buffer holds until it completes.
    pub fn hold_credit(&mut self, credit: Arc<Credit>, seq: u64) {
        self.credit = Some((credit, seq));
    }
}

impl Drop for GuestBuffer {
    fn drop(&mut self) {
        let written = match self
            .mem
            .write_at(self.status_addr, &status_bytes(self.status))
        {
            Ok(()) => u32::try_from(DATA_STATUS_SIZE).unwrap_or(0),
            Err(err) => {
                log::error!(
                    "cannot write data status at {:#x}: {err}",
                    self.status_addr.0
                );
                0
            }
        };
        self.target.ring.complete(self.head, written);
        Counters::add(&self.target.counters.buffers_completed, 1);
        if let Some((credit, seq)) = self.credit.take()
            && credit.release(seq)
        {
            self.target.waker.wake();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use vm_memory::{Bytes, GuestMemoryMmap};

    /// Records completions.
    #[derive(Default)]
    pub(crate) struct RecordingRing(pub(crate) Mutex<Vec<(u16, u32)>>);

    impl UsedRing for RecordingRing {
        fn complete(&self, head: u16, len: u32) {
            self.0.lock().unwrap().push((head, len));
        }
    }

    /// Counts wake-ups.
    #[derive(Default)]
    pub(crate) struct CountingWaker(pub(crate) AtomicUsize);

    impl Waker for CountingWaker {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn target(
        ring: &Arc<RecordingRing>,
        waker: &Arc<CountingWaker>,
    ) -> CompletionTarget {
        CompletionTarget {
            ring: ring.clone(),
            waker: waker.clone(),
            counters: Arc::new(Counters::default()),
        }
    }

    #[test]
    fn completes_on_drop_with_status_and_points_into_guest_memory() {
        let mem =
            Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap());
        let ring = Arc::new(RecordingRing::default());
        let waker = Arc::new(CountingWaker::default());
        let segs = [
            Segment {
                addr: GuestAddress(0x100),
                len: 10,
            },
            Segment {
                addr: GuestAddress(0x400),
                len: 20,
            },
        ];
        let mut buf = GuestBuffer::new(
            mem.clone(),
            7,
            &segs,
            GuestAddress(0x800),
            target(&ring, &waker),
        )
        .unwrap();
        assert_eq!(buf.payload_len(), 30);
        assert!(buf.slices().iter().all(|s| is_in_guest_memory(&*mem, s)));
        let credit = Arc::new(Credit::new(10, 1000));
        assert_eq!(
            credit.acquire(1, 30, None, None),
            crate::model::Grant::Granted
        );
        assert_eq!(credit.acquire(2, 30, None, None), crate::model::Grant::Wait);
        buf.hold_credit(credit.clone(), 1);
        buf.set_status(Status::Cancelled);
        drop(buf);
        assert_eq!(ring.0.lock().unwrap().as_slice(), &[(7, 8)]);
        let status: u32 = mem.read_obj(GuestAddress(0x800)).unwrap();
        assert_eq!(status, Status::Cancelled.as_u32());
        assert_eq!(credit.inflight_bytes(), 0);
        assert_eq!(
            waker.0.load(Ordering::SeqCst),
            1,
            "a blocked sender is woken"
        );
        let outside = RawSlice {
            ptr: std::ptr::null(),
            len: 1,
        };
        assert!(!is_in_guest_memory(&*mem, &outside));
    }

    #[test]
    fn unset_status_completes_with_io() {
        let mem =
            Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap());
        let ring = Arc::new(RecordingRing::default());
        let waker = Arc::new(CountingWaker::default());
        let buf = GuestBuffer::new(
            mem.clone(),
            1,
            &[],
            GuestAddress(0x10),
            target(&ring, &waker),
        )
        .unwrap();
        drop(buf);
        let status: u32 = mem.read_obj(GuestAddress(0x10)).unwrap();
        assert_eq!(status, Status::Io.as_u32());
    }
}

//! The daemon side's completion plumbing: a used ring that checks the
//! status each buffer wrote and a waker, both signalling one gate the
//! sender waits on (for completions and for credit).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use mediaredir_proto::status::Status;
use vhost_user_mediaredir::guest_buffer::{UsedRing, Waker};
use vm_memory::{Bytes, GuestMemoryMmap};

use crate::guest_memory::status_addr;

/// What the sender waits on: a generation bumped by completions and credit
/// releases. Waiting "past" a generation read before checking cannot miss a
/// wake-up.
#[derive(Default)]
pub(crate) struct Gate {
    state: Mutex<(u64, bool)>,
    cv: Condvar,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, (u64, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn generation(&self) -> u64 {
        self.lock().0
    }

    pub(crate) fn bump(&self) {
        let mut s = self.lock();
        s.0 += 1;
        let waiting = std::mem::take(&mut s.1);
        drop(s);
        if waiting {
            self.cv.notify_all();
        }
    }

    pub(crate) fn wait_past(&self, seen: u64) {
        let mut s = self.lock();
        while s.0 == seen {
            s.1 = true;
            s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A used ring that counts completions and checks the status each buffer
/// wrote to guest memory.
pub(crate) struct BenchRing {
    pub(crate) mem: Arc<GuestMemoryMmap>,
    pub(crate) gate: Arc<Gate>,
    pub(crate) completed: AtomicU64,
    pub(crate) not_ok: AtomicU64,
}

impl UsedRing for BenchRing {
    fn complete(&self, head: u16, _len: u32) {
        let status: u32 = self
            .mem
            .read_obj(status_addr(u64::from(head)))
            .unwrap_or(u32::MAX);
        if status != Status::Ok.as_u32() {
            self.not_ok.fetch_add(1, Ordering::Relaxed);
        }
        self.completed.fetch_add(1, Ordering::Release);
        self.gate.bump();
    }
}

/// A waker (credit released) that bumps the gate.
pub(crate) struct GateWaker(pub(crate) Arc<Gate>);

impl Waker for GateWaker {
    fn wake(&self) {
        self.0.bump();
    }
}

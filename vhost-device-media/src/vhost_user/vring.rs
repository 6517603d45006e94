//! The queue layer's [`Virtqueue`] over a vhost-user-backend vring and
//! QEMU's shared guest memory: the one place that pops, completes and
//! notifies through `VringRwLock`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use vhost_user_backend::{VringRwLock, VringT};
use virtio_queue::{QueueOwnedT, QueueT};
use vm_memory::{GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};

use crate::guest_buffer::UsedRing;
use crate::memory::GuestRam;
use crate::queues::{Avail, Virtqueue};

/// One vring of the frontend, with the guest memory its buffers are in.
pub struct VhostQueue {
    vring: VringRwLock,
    mem: GuestMemoryAtomic<GuestMemoryMmap>,
    running: Arc<AtomicBool>,
}

impl VhostQueue {
    /// `vring` over `mem`; completions go to it while `running` holds.
    pub fn new(
        vring: VringRwLock,
        mem: GuestMemoryAtomic<GuestMemoryMmap>,
        running: Arc<AtomicBool>,
    ) -> VhostQueue {
        VhostQueue {
            vring,
            mem,
            running,
        }
    }
}

impl UsedRing for VhostQueue {
    fn complete(&self, head: u16, len: u32) {
        if !self.running.load(Ordering::Acquire) {
            // The frontend stopped this ring (reset or disconnect): the
            // driver reclaimed its buffers, so nothing may be written.
            return;
        }
        if let Err(err) = self.vring.add_used(head, len) {
            log::error!("cannot complete chain {head}: {err}");
            return;
        }
        match self.vring.needs_notification() {
            Ok(false) => {}
            _ => {
                if let Err(err) = self.vring.signal_used_queue() {
                    log::error!("cannot signal the used ring: {err}");
                }
            }
        }
    }
}

impl Virtqueue for VhostQueue {
    fn memory(&self) -> Arc<dyn GuestRam> {
        self.mem.memory().into_inner()
    }

    fn pop(&self) -> Option<Avail> {
        let mem = self.mem.memory();
        let mut state = self.vring.get_mut();
        let queue = state.get_queue_mut();
        if !queue.ready() {
            return None;
        }
        let table = GuestAddress(queue.desc_table());
        let size = queue.size();
        let head = queue.pop_descriptor_chain(mem)?.head_index();
        Some(Avail { head, table, size })
    }

    fn unpop(&self) {
        self.vring
            .get_mut()
            .get_queue_mut()
            .go_to_previous_position();
    }

    fn disable_notification(&self) {
        let _ = self.vring.disable_notification();
    }

    fn enable_notification(&self) -> bool {
        matches!(self.vring.enable_notification(), Ok(true))
    }
}

//! The event queue: buffers the driver posts there wait in the ring until
//! the device core has an event for one ([`EventSink`]).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use mediaredir_proto::event::EVENT_SIZE;
use vhost_user_backend::{VringRwLock, VringT};
use virtio_queue::QueueT;
use vm_memory::{GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};

use super::VringCompletion;
use super::guest_bytes::write_scatter;
use crate::chain;
use crate::core::EventSink;
use crate::counters::{Counters, ErrorKind};
use crate::guest_buffer::UsedRing;

/// Writes events into the event queue's posted buffers.
pub struct VringEventSink {
    vring: VringRwLock,
    mem: GuestMemoryAtomic<GuestMemoryMmap>,
    indirect: bool,
    completion: VringCompletion,
    counters: Arc<Counters>,
}

impl VringEventSink {
    /// A sink over the event queue `vring`.
    pub fn new(
        vring: VringRwLock,
        mem: GuestMemoryAtomic<GuestMemoryMmap>,
        indirect: bool,
        running: Arc<AtomicBool>,
        counters: Arc<Counters>,
    ) -> VringEventSink {
        let completion = VringCompletion::new(vring.clone(), running);
        VringEventSink {
            vring,
            mem,
            indirect,
            completion,
            counters,
        }
    }
}

impl EventSink for VringEventSink {
    fn try_deliver(&self, event: &[u8; EVENT_SIZE]) -> bool {
        let ctx_mem = self.mem.memory();
        loop {
            let popped = {
                let mut state = self.vring.get_mut();
                let queue = state.get_queue_mut();
                if !queue.ready() {
                    return false;
                }
                let table = GuestAddress(queue.desc_table());
                let size = queue.size();
                queue.pop_descriptor_chain(ctx_mem.clone()).map(|c| {
                    (
                        c.head_index(),
                        chain::walk(&*ctx_mem, table, size, c.head_index(), self.indirect),
                    )
                })
            };
            let Some((head, walked)) = popped else {
                return false;
            };
            match walked {
                Ok(chain)
                    if chain.readable.is_empty() && chain.writable_len() >= EVENT_SIZE as u64 =>
                {
                    let n = write_scatter(&ctx_mem, &chain.writable, event);
                    self.completion
                        .complete(head, u32::try_from(n).unwrap_or(0));
                    return true;
                }
                Ok(chain) => {
                    crate::input_warn!(
                        "eventq: chain {head} is not a writable buffer of >= 64 bytes ({} readable, {} writable)",
                        chain.readable_len(),
                        chain.writable_len()
                    );
                    self.counters.error(ErrorKind::MalformedChain);
                    self.completion.complete(head, 0);
                }
                Err(err) => {
                    crate::input_warn!("eventq: malformed chain {head}: {err}");
                    self.counters.error(ErrorKind::MalformedChain);
                    self.completion.complete(head, 0);
                }
            }
        }
    }
}

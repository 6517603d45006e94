//! The capture queue from the device's side (spec 7.10): buffers the driver
//! posted on capq are filled, one captured sample each, as samples arrive.
//!
//! Capture is the one direction where the device copies: the sample comes
//! off the client's connection into daemon memory and is written into the
//! guest's buffer (a few kbit/s to a few Mbit/s; playback, the heavy
//! direction, stays zero-copy). The writes are counted as copied bytes.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use mediaredir_proto::data::DATA_HDR_SIZE;
use vhost_user_backend::{VringRwLock, VringT};
use virtio_queue::{QueueOwnedT, QueueT};
use vm_memory::{GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};

use crate::chain;
use crate::counters::{Counters, ErrorKind};
use crate::guest_buffer::UsedRing;
use crate::queues::{VringCompletion, skip_bytes, write_scatter};

/// What became of a sample offered to the capture queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Written into the buffer at the head of capq, which was completed.
    Written,
    /// The buffer at the head is too small for it; the buffer stays posted.
    TooSmall,
    /// No buffer is posted (or the queue is not running).
    NoBuffer,
}

/// Writes captured samples into the capture queue's posted buffers.
pub trait CaptureSink: Send + Sync {
    /// Writes `header` then `payload` into the next posted buffer.
    fn try_deliver(&self, header: &[u8; DATA_HDR_SIZE], payload: &[u8]) -> Delivery;
}

/// [`CaptureSink`] over the capq vring.
pub struct VringCaptureSink {
    vring: VringRwLock,
    mem: GuestMemoryAtomic<GuestMemoryMmap>,
    indirect: bool,
    completion: VringCompletion,
    counters: Arc<Counters>,
}

impl VringCaptureSink {
    /// A sink over the capture queue `vring`.
    pub fn new(
        vring: VringRwLock,
        mem: GuestMemoryAtomic<GuestMemoryMmap>,
        indirect: bool,
        running: Arc<AtomicBool>,
        counters: Arc<Counters>,
    ) -> VringCaptureSink {
        let completion = VringCompletion::new(vring.clone(), running);
        VringCaptureSink {
            vring,
            mem,
            indirect,
            completion,
            counters,
        }
    }
}

impl CaptureSink for VringCaptureSink {
    fn try_deliver(&self, header: &[u8; DATA_HDR_SIZE], payload: &[u8]) -> Delivery {
        let mem = self.mem.memory();
        let need = (DATA_HDR_SIZE + payload.len()) as u64;
        loop {
            let popped = {
                let mut state = self.vring.get_mut();
                let queue = state.get_queue_mut();
                if !queue.ready() {
                    return Delivery::NoBuffer;
                }
                let table = GuestAddress(queue.desc_table());
                let size = queue.size();
                let Some(c) = queue.pop_descriptor_chain(mem.clone()) else {
                    return Delivery::NoBuffer;
                };
                let walked = chain::walk(&*mem, table, size, c.head_index(), self.indirect);
                if let Ok(chain) = &walked
                    && chain.readable.is_empty()
                    && chain.writable_len() >= DATA_HDR_SIZE as u64
                    && chain.writable_len() < need
                {
                    // Too small for this sample: it stays at the head for
                    // the next one (spec 7.10).
                    queue.go_to_previous_position();
                    return Delivery::TooSmall;
                }
                (c.head_index(), walked)
            };
            let (head, walked) = popped;
            match walked {
                Ok(chain) if chain.readable.is_empty() && chain.writable_len() >= need => {
                    let written = write_scatter(&mem, &chain.writable, header);
                    let rest = skip_bytes(chain.writable, DATA_HDR_SIZE as u64);
                    let body = write_scatter(&mem, &rest, payload);
                    Counters::add(&self.counters.payload_bytes_copied, body as u64);
                    let used = u32::try_from(written + body).unwrap_or(u32::MAX);
                    self.completion.complete(head, used);
                    return Delivery::Written;
                }
                Ok(chain) => {
                    crate::input_warn!(
                        "capq: chain {head} is not a writable buffer of >= 48 bytes ({} readable, {} writable)",
                        chain.readable_len(),
                        chain.writable_len()
                    );
                    self.counters.error(ErrorKind::MalformedChain);
                    self.completion.complete(head, 0);
                }
                Err(err) => {
                    crate::input_warn!("capq: malformed chain {head}: {err}");
                    self.counters.error(ErrorKind::MalformedChain);
                    self.completion.complete(head, 0);
                }
            }
        }
    }
}

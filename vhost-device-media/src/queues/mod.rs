//! Virtqueue processing: turns chains into model calls and completions.
//!
//! Each queue has one job: the control queue answers requests in order, the
//! event queue holds driver-posted buffers for [`crate::core::EventSink`],
//! and each txq feeds playback buffers to the uplink without copying their
//! payload. Every chain is walked strictly first ([`crate::chain`]); a chain
//! that cannot carry a status is completed with used length 0 and logged,
//! every other fault is answered with its status (spec, DEV-SEC).
//!
//! This file holds what every queue shares: completing chains into the used
//! ring, popping and walking chains, the EVENT_IDX loop and the batch bound.
//! Each queue kind has its module (`controlq`, `eventq`, `txq`), and
//! copying the few bytes the device reads or writes itself (headers,
//! responses, statuses) has its own (`guest_bytes`).

mod controlq;
mod eventq;
mod guest_bytes;
mod txq;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use vhost_user_backend::{VringRwLock, VringT};
use virtio_queue::QueueT;
use vm_memory::{GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};

use crate::chain::{self, Chain};
use crate::core::DeviceCore;
use crate::counters::ErrorKind;
use crate::guest_buffer::UsedRing;

pub use controlq::process_controlq;
pub use eventq::VringEventSink;
pub use guest_bytes::skip_bytes;
pub(crate) use guest_bytes::write_scatter;
pub use txq::{drain_stream, process_txq};

/// Completes chains into one vring, until the vring is stopped.
pub struct VringCompletion {
    vring: VringRwLock,
    running: Arc<AtomicBool>,
}

impl VringCompletion {
    /// Completions into `vring` while `running` holds.
    pub fn new(vring: VringRwLock, running: Arc<AtomicBool>) -> VringCompletion {
        VringCompletion { vring, running }
    }
}

impl UsedRing for VringCompletion {
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

/// What queue processing needs from the backend.
pub struct QueueContext<'a> {
    /// The device core.
    pub core: &'a Arc<DeviceCore>,
    /// Guest memory.
    pub mem: &'a GuestMemoryAtomic<GuestMemoryMmap>,
    /// Whether VIRTIO_F_INDIRECT_DESC was negotiated.
    pub indirect: bool,
    /// Whether VIRTIO_F_RING_EVENT_IDX was negotiated.
    pub event_idx: bool,
    /// The device's `max_buffer_bytes` (fixed for the daemon's life).
    pub max_payload: u32,
}

/// A popped chain: walked, or its head and why it is malformed.
type Popped = Result<Chain, (u16, chain::ChainError)>;

/// Pops the next chain and walks it. `Ok(None)`: the queue is empty.
fn next_chain(ctx: &QueueContext<'_>, vring: &VringRwLock) -> Result<Option<Popped>, ()> {
    let mem = ctx.mem.memory();
    let mut state = vring.get_mut();
    let queue = state.get_queue_mut();
    let table = GuestAddress(queue.desc_table());
    let size = queue.size();
    let Some(head) = queue
        .pop_descriptor_chain(mem.clone())
        .map(|c| c.head_index())
    else {
        return Ok(None);
    };
    Ok(Some(
        chain::walk(&*mem, table, size, head, ctx.indirect).map_err(|e| (head, e)),
    ))
}

/// A queue's name in log lines (no allocation on the data path).
#[derive(Debug, Clone, Copy)]
enum QueueName {
    Control,
    Txq(u32),
}

impl std::fmt::Display for QueueName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueName::Control => f.write_str("controlq"),
            QueueName::Txq(n) => write!(f, "txq{n}"),
        }
    }
}

/// The next well-formed chain of the queue, completing (used length 0,
/// counted, logged) every malformed one before it; `None` when the queue is
/// empty.
fn next_valid(
    ctx: &QueueContext<'_>,
    vring: &VringRwLock,
    queue: QueueName,
    completion: &dyn UsedRing,
) -> Option<Chain> {
    loop {
        match next_chain(ctx, vring) {
            Ok(Some(Ok(chain))) => return Some(chain),
            Ok(Some(Err((head, err)))) => {
                crate::input_warn!("{queue}: malformed chain {head}: {err}");
                ctx.core.counters().error(ErrorKind::MalformedChain);
                completion.complete(head, 0);
            }
            Ok(None) | Err(()) => return None,
        }
    }
}

/// Runs `body` over the queue with the EVENT_IDX idiom: process, re-enable
/// notifications, and process again if buffers arrived meanwhile.
fn drain<F: FnMut() -> bool>(ctx: &QueueContext<'_>, vring: &VringRwLock, mut body: F) {
    loop {
        if ctx.event_idx {
            let _ = vring.disable_notification();
        }
        let blocked = body();
        if blocked || !ctx.event_idx {
            break;
        }
        match vring.enable_notification() {
            Ok(true) => continue,
            _ => break,
        }
    }
}

/// Drops buffers of a flushed stream waiting on its txq.
pub type TxqDrainer<'a> = &'a dyn Fn(u32, u32);

/// Chains one queue may take per wake-up before the others get a turn
/// (spec DEV-SEC-6); a queue with more left asks to be woken again.
pub const BATCH: usize = 64;

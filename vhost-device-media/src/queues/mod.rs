//! Virtqueue processing: turns chains into model calls and completions.
//!
//! Each queue has one job: the control queue answers requests in order, the
//! event queue holds driver-posted buffers for [`crate::core::EventSink`],
//! the capture queue takes captured samples ([`crate::capture::CaptureSink`])
//! and each txq feeds playback buffers to the uplink without copying their
//! payload. Every chain is walked strictly first ([`crate::chain`]); a chain
//! that cannot carry a status is completed with used length 0 and logged,
//! every other fault is answered with its status (spec, DEV-SEC).
//!
//! Processing is written against two small traits, not against vhost-user:
//! [`Virtqueue`] (pop an available chain, complete a used one, notification
//! control) and [`GuestRam`] (the few bytes the device reads and writes).
//! The vhost-user adapter ([`crate::vhost_user`]) implements them over its
//! vrings and QEMU's guest memory; the tests of this module over plain
//! memory and a queue in a `VecDeque`.
//!
//! Module graph: this layer sits above the core (it calls
//! [`DeviceCore`](crate::core::DeviceCore) and implements the core's sink
//! traits); the core and the capture backlog never import it.
//!
//! This file holds what every queue shares: the traits, popping and walking
//! chains, rejecting malformed ones, the EVENT_IDX loop and the batch bound.
//! Each queue kind has its module (`controlq`, `eventq`, `capq`, `txq`), and
//! copying the few bytes the device reads or writes itself (headers,
//! responses, statuses) has its own (`guest_bytes`).

mod capq;
mod controlq;
mod eventq;
mod guest_bytes;
mod txq;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use vm_memory::GuestAddress;

use crate::chain::{self, Chain};
use crate::core::DeviceCore;
use crate::counters::{Counters, ErrorKind};
use crate::guest_buffer::UsedRing;
use crate::memory::GuestRam;

pub use capq::CapqSink;
pub use controlq::process_controlq;
pub use eventq::EventqSink;
pub use guest_bytes::skip_bytes;
pub use txq::{drain_stream, process_txq};

/// An available chain, as popped from the available ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avail {
    /// Its head descriptor.
    pub head: u16,
    /// The descriptor table it indexes.
    pub table: GuestAddress,
    /// The queue size (entries of the table).
    pub size: u16,
}

/// One virtqueue, as queue processing uses it. The vhost-user adapter
/// implements it over a vring; tests over a plain queue.
///
/// Completing ([`UsedRing::complete`]) puts a chain in the used ring and
/// notifies the driver when it asked to be; once the queue is stopped
/// (reset, disconnect) completions are dropped, the driver having reclaimed
/// its buffers.
pub trait Virtqueue: UsedRing {
    /// The guest memory the queue's buffers are in (a snapshot, kept mapped
    /// while it is held).
    fn memory(&self) -> Arc<dyn GuestRam>;
    /// The next available chain; `None` when there is none or the queue is
    /// not ready.
    fn pop(&self) -> Option<Avail>;
    /// Puts the chain popped last back: the next [`Virtqueue::pop`] returns
    /// it again.
    fn unpop(&self);
    /// EVENT_IDX: no notifications while the device is processing.
    fn disable_notification(&self);
    /// EVENT_IDX: notifications again; `true` when chains arrived meanwhile.
    fn enable_notification(&self) -> bool;
}

/// What queue processing needs from the backend.
pub struct QueueContext<'a> {
    /// The device core.
    pub core: &'a Arc<DeviceCore>,
    /// Whether VIRTIO_F_INDIRECT_DESC was negotiated.
    pub indirect: bool,
    /// Whether VIRTIO_F_RING_EVENT_IDX was negotiated.
    pub event_idx: bool,
    /// The device's `max_buffer_bytes` (fixed for the daemon's life).
    pub max_payload: u32,
}

/// A popped chain: walked, or its head and why it is malformed.
type Popped = Result<Chain, (u16, chain::ChainError)>;

/// Pops the next chain and walks it; `None`: the queue is empty.
fn next_chain(queue: &dyn Virtqueue, mem: &dyn GuestRam, indirect: bool) -> Option<Popped> {
    let avail = queue.pop()?;
    Some(
        chain::walk(mem, avail.table, avail.size, avail.head, indirect)
            .map_err(|e| (avail.head, e)),
    )
}

/// A queue's name in log lines (no allocation on the data path).
#[derive(Debug, Clone, Copy)]
enum QueueName {
    Control,
    Event,
    Capture,
    Txq(u32),
}

impl std::fmt::Display for QueueName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueName::Control => f.write_str("controlq"),
            QueueName::Event => f.write_str("eventq"),
            QueueName::Capture => f.write_str("capq"),
            QueueName::Txq(n) => write!(f, "txq{n}"),
        }
    }
}

/// The next well-formed chain of the queue, completing (used length 0,
/// counted, logged) every malformed one before it; `None` when the queue is
/// empty.
fn next_valid(
    queue: &dyn Virtqueue,
    mem: &dyn GuestRam,
    indirect: bool,
    name: QueueName,
    counters: &Counters,
) -> Option<Chain> {
    loop {
        match next_chain(queue, mem, indirect)? {
            Ok(chain) => return Some(chain),
            Err((head, err)) => {
                crate::input_warn!("{name}: malformed chain {head}: {err}");
                counters.error(ErrorKind::MalformedChain);
                queue.complete(head, 0);
            }
        }
    }
}

/// A queue of driver-posted device-writable buffers of at least `min`
/// bytes each, filled by the device as it has something for one (the event
/// and capture queues).
struct PostedBuffers {
    queue: Arc<dyn Virtqueue>,
    indirect: bool,
    counters: Arc<Counters>,
    name: QueueName,
    min: usize,
}

impl PostedBuffers {
    /// The next posted buffer, completing (used length 0, counted, logged)
    /// every chain before it that is not one; `None` when the queue is
    /// empty.
    fn next(&self, mem: &dyn GuestRam) -> Option<Chain> {
        let (queue, name, min) = (self.queue.as_ref(), self.name, self.min);
        loop {
            let chain = next_valid(queue, mem, self.indirect, name, &self.counters)?;
            if chain.readable.is_empty() && chain.writable_len() >= min as u64 {
                return Some(chain);
            }
            crate::input_warn!(
                "{name}: chain {} is not a writable buffer of >= {min} bytes ({} readable, {} writable)",
                chain.head,
                chain.readable_len(),
                chain.writable_len()
            );
            self.counters.error(ErrorKind::MalformedChain);
            queue.complete(chain.head, 0);
        }
    }
}

/// Runs `body` over the queue with the EVENT_IDX idiom: process, re-enable
/// notifications, and process again if buffers arrived meanwhile.
fn drain<F: FnMut() -> bool>(ctx: &QueueContext<'_>, queue: &dyn Virtqueue, mut body: F) {
    loop {
        if ctx.event_idx {
            queue.disable_notification();
        }
        let blocked = body();
        if blocked || !ctx.event_idx {
            break;
        }
        if !queue.enable_notification() {
            break;
        }
    }
}

/// What a queue's handler says after a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// On to the next chain.
    Next,
    /// The queue cannot go on now (its head waits for credit): stop.
    Blocked,
}

/// Hands the valid chains of `queue` to `each`, with the memory snapshot
/// they were walked in, at most [`BATCH`] per pass, in the EVENT_IDX loop
/// of [`drain`]; malformed chains are completed and counted on the way
/// ([`next_valid`]). Stops at an empty queue, when `each` says
/// [`Flow::Blocked`], or after a full batch; returns `true` in the last
/// case (chains may remain: the caller schedules another pass).
fn process_chains(
    ctx: &QueueContext<'_>,
    queue: &dyn Virtqueue,
    name: QueueName,
    mut each: impl FnMut(Arc<dyn GuestRam>, Chain) -> Flow,
) -> bool {
    let mut more = false;
    drain(ctx, queue, || {
        for _ in 0..BATCH {
            let mem = queue.memory();
            let Some(chain) =
                next_valid(queue, mem.as_ref(), ctx.indirect, name, ctx.core.counters())
            else {
                return false;
            };
            if each(mem, chain) == Flow::Blocked {
                return true;
            }
        }
        more = true;
        true
    });
    more
}

/// Drops buffers of a flushed stream waiting on its txq.
pub type TxqDrainer<'a> = &'a dyn Fn(u32, u32);

/// Chains one queue may take per wake-up before the others get a turn
/// (spec DEV-SEC-6); a queue with more left asks to be woken again.
pub const BATCH: usize = 64;

//! Virtqueue processing: turns chains into model calls and completions.
//!
//! Each queue has one job: the control queue answers requests in order, the
//! event queue holds driver-posted buffers for [`crate::core::EventSink`],
//! and each txq feeds playback buffers to the uplink without copying their
//! payload. Every chain is walked strictly first ([`crate::chain`]); a chain
//! that cannot carry a status is completed with used length 0 and logged,
//! every other fault is answered with its status (spec, DEV-SEC).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use mediaredir_proto::control::{ControlRequest, RawCtrlHdr, ResponseHeader};
use mediaredir_proto::data::{DATA_HDR_SIZE, DATA_STATUS_SIZE, DataHeader, status_bytes};
use mediaredir_proto::event::EVENT_SIZE;
use mediaredir_proto::status::Status;
use vhost_user_backend::{VringRwLock, VringT};
use virtio_queue::{QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};

use crate::chain::{self, Chain, Segment};
use crate::core::{DeferredControl, DeviceCore, EventSink, count_status};
use crate::counters::{Counters, ErrorKind};
use crate::guest_buffer::{CompletionTarget, GuestBuffer, UsedRing, Waker};
use crate::model::{Action, Admit};

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

/// Reads at most `max` bytes from the front of `segments` (control requests,
/// whose size varies; payload is never read here).
fn read_front(mem: &GuestMemoryMmap, segments: &[Segment], max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for seg in segments {
        if out.len() >= max {
            break;
        }
        let n = (seg.len as usize).min(max - out.len());
        let start = out.len();
        out.resize(start + n, 0);
        mem.read_slice(&mut out[start..], seg.addr).ok()?;
    }
    Some(out)
}

/// Reads exactly `N` bytes from the front of `segments` into a stack array
/// (fixed headers: no allocation per buffer); `None` when the segments hold
/// fewer or the memory cannot be read.
fn read_array<const N: usize>(mem: &GuestMemoryMmap, segments: &[Segment]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    let mut done = 0;
    for seg in segments {
        if done == N {
            break;
        }
        let n = (seg.len as usize).min(N - done);
        mem.read_slice(&mut out[done..done + n], seg.addr).ok()?;
        done += n;
    }
    (done == N).then_some(out)
}

/// Writes `bytes` across `segments`; returns how many were written.
pub(crate) fn write_scatter(mem: &GuestMemoryMmap, segments: &[Segment], bytes: &[u8]) -> usize {
    let mut done = 0;
    for seg in segments {
        if done == bytes.len() {
            break;
        }
        let n = (seg.len as usize).min(bytes.len() - done);
        if mem.write_slice(&bytes[done..done + n], seg.addr).is_err() {
            break;
        }
        done += n;
    }
    done
}

/// Drops the first `skip` bytes of `segments`, in place (the chain's own
/// list becomes the payload's: no allocation per buffer).
pub fn skip_bytes(mut segments: Vec<Segment>, mut skip: u64) -> Vec<Segment> {
    segments.retain_mut(|seg| {
        let len = u64::from(seg.len);
        if skip >= len {
            skip -= len;
            return false;
        }
        seg.addr = GuestAddress(seg.addr.0 + skip);
        seg.len = u32::try_from(len - skip).unwrap_or(u32::MAX);
        skip = 0;
        true
    });
    segments
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

/// Answers the requests on the control queue, at most [`BATCH`] at a time.
/// Returns `true` when requests remain (the caller schedules another pass).
pub fn process_controlq(
    ctx: &QueueContext<'_>,
    vring: &VringRwLock,
    completion: &Arc<VringCompletion>,
    drainer: TxqDrainer<'_>,
) -> bool {
    let mut more = false;
    drain(ctx, vring, || {
        for _ in 0..BATCH {
            let Some(chain) = next_valid(ctx, vring, QueueName::Control, completion.as_ref())
            else {
                return false;
            };
            match control_chain(ctx, &chain, drainer) {
                ControlDone::Answered(len) => completion.complete(chain.head, len),
                ControlDone::Deferred(session) => ctx.core.defer_control(
                    session,
                    DeferredControl {
                        head: chain.head,
                        writable: chain.writable,
                        mem: ctx.mem.clone(),
                        completion: Arc::clone(completion) as Arc<dyn UsedRing>,
                    },
                ),
            }
            ctx.core.flush_events();
        }
        more = true;
        true
    });
    more
}

/// What became of a control chain.
enum ControlDone {
    /// Answered with this many bytes: complete it.
    Answered(u32),
    /// The answer waits for the client (`CALL_CREATE` of this session).
    Deferred(u32),
}

/// Handles one control chain.
fn control_chain(ctx: &QueueContext<'_>, chain: &Chain, drainer: TxqDrainer<'_>) -> ControlDone {
    ControlDone::Answered(match control_request(ctx, chain, drainer) {
        Ok(len) => len,
        Err(session) => return ControlDone::Deferred(session),
    })
}

/// Handles one control chain; the bytes written, or `Err(session)` when
/// the answer is deferred.
fn control_request(
    ctx: &QueueContext<'_>,
    chain: &Chain,
    drainer: TxqDrainer<'_>,
) -> Result<u32, u32> {
    let mem = ctx.mem.memory();
    let counters = ctx.core.counters();
    Counters::add(&counters.control_requests, 1);
    let writable = chain.writable_len();
    if writable < ResponseHeader::SIZE as u64 {
        crate::input_warn!(
            "controlq: chain {} has {writable} writable bytes, no room for a response",
            chain.head
        );
        counters.error(ErrorKind::MalformedChain);
        return Ok(0);
    }
    let (generation, limits) = {
        let model = ctx.core.model();
        (model.generation(), model.limits().decode_limits())
    };
    let answer = |status: Status, id: u32, body: &[u8]| -> u32 {
        count_status(counters, status);
        let mut out = ResponseHeader { status, id }.to_bytes().to_vec();
        out.extend_from_slice(body);
        u32::try_from(write_scatter(&mem, &chain.writable, &out)).unwrap_or(0)
    };
    // Spec 7.4 check order: header present, then generation (STALE before
    // anything else about the request), then the size limit.
    let Some(head) = read_array::<{ ResponseHeader::SIZE }>(&mem, &chain.readable) else {
        crate::input_warn!("controlq: request shorter than its header");
        return Ok(answer(Status::Invalid, 0, &[]));
    };
    let hdr: RawCtrlHdr = zerocopy::transmute!(head);
    let target = hdr.target.get();
    if hdr.generation.get() != generation {
        return Ok(answer(Status::Stale, target, &[]));
    }
    let readable = chain.readable_len();
    if readable > limits.max_request_len() as u64 {
        crate::input_warn!("controlq: request of {readable} bytes exceeds the limit");
        return Ok(answer(Status::Limit, target, &[]));
    }
    let Some(bytes) = read_front(
        &mem,
        &chain.readable,
        usize::try_from(readable).unwrap_or(0),
    ) else {
        return Ok(answer(Status::Invalid, target, &[]));
    };
    let request = match ControlRequest::decode(&bytes, &limits) {
        Ok(request) => request,
        Err(err) => {
            crate::input_warn!("controlq: {err}");
            return Ok(answer(err.status(), target, &[]));
        }
    };
    let code = request.request.code();
    if writable < code.min_response_len(limits.max_sdp) as u64 {
        crate::input_warn!(
            "controlq: {code:?} needs {} writable bytes, has {writable}",
            code.min_response_len(limits.max_sdp)
        );
        return Ok(answer(Status::Invalid, target, &[]));
    }
    let (reply, actions) = ctx.core.model().handle(request, Instant::now());
    let deferred = reply.deferred.then_some(reply.id);
    for action in &actions {
        if let Action::DrainTxq { txq, stream } = action {
            drainer(*txq, *stream);
        }
    }
    ctx.core.apply(actions);
    if reply.status == Status::Ok
        && matches!(code, mediaredir_proto::control::RequestCode::StreamCreate)
    {
        Counters::add(&counters.streams_created, 1);
    }
    let capacity = usize::try_from(writable)
        .unwrap_or(usize::MAX)
        .saturating_sub(ResponseHeader::SIZE);
    if let Some(session) = deferred {
        return Err(session);
    }
    Ok(match reply.body.encode(capacity) {
        Some(body) => answer(reply.status, reply.id, &body),
        None => {
            crate::input_warn!("controlq: no room for the {code:?} response");
            answer(Status::Invalid, reply.id, &[])
        }
    })
}

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

/// Feeds playback buffers of txq `txq` to the uplink, at most [`BATCH`] at
/// a time, until the queue is empty or the stream at its head is out of
/// credit. Returns `true` when buffers remain that credit allows (the caller
/// schedules another pass); a stream out of credit is woken by its release.
pub fn process_txq(
    ctx: &QueueContext<'_>,
    vring: &VringRwLock,
    txq: u32,
    completion: &Arc<VringCompletion>,
    waker: &Arc<dyn Waker>,
) -> bool {
    let mut more = false;
    drain(ctx, vring, || {
        for _ in 0..BATCH {
            let Some(chain) = next_valid(ctx, vring, QueueName::Txq(txq), completion.as_ref())
            else {
                return false;
            };
            if data_chain(ctx, vring, txq, chain, completion, waker) == Flow::Blocked {
                return true;
            }
        }
        more = true;
        true
    });
    more
}

/// Completes with `CANCELLED` every buffer of `stream` at the head of txq
/// `txq`, stopping at the first buffer of another stream.
pub fn drain_stream(
    ctx: &QueueContext<'_>,
    vring: &VringRwLock,
    txq: u32,
    stream: u32,
    completion: &dyn UsedRing,
) {
    let mem = ctx.mem.memory();
    loop {
        let Some(chain) = next_valid(ctx, vring, QueueName::Txq(txq), completion) else {
            return;
        };
        let header = read_array::<DATA_HDR_SIZE>(&mem, &chain.readable)
            .and_then(|b| DataHeader::decode(&b, u32::MAX).ok());
        let status_seg = chain
            .writable
            .first()
            .copied()
            .filter(|s| s.len as usize >= DATA_STATUS_SIZE);
        match (header, status_seg) {
            (Some(h), Some(seg)) if h.stream_id == stream => {
                let n = write_scatter(&mem, &[seg], &status_bytes(Status::Cancelled));
                completion.complete(chain.head, u32::try_from(n).unwrap_or(0));
            }
            _ => {
                vring.get_mut().get_queue_mut().go_to_previous_position();
                return;
            }
        }
    }
}

#[derive(PartialEq, Eq)]
enum Flow {
    Next,
    Blocked,
}

fn data_chain(
    ctx: &QueueContext<'_>,
    vring: &VringRwLock,
    txq: u32,
    mut chain: Chain,
    completion: &Arc<VringCompletion>,
    waker: &Arc<dyn Waker>,
) -> Flow {
    let counters = ctx.core.counters();
    let mem = ctx.mem.memory();
    let status_seg = chain
        .writable
        .first()
        .copied()
        .filter(|s| s.len as usize >= DATA_STATUS_SIZE);
    let Some(status_seg) = status_seg.filter(|_| chain.writable_len() == DATA_STATUS_SIZE as u64)
    else {
        crate::input_warn!(
            "txq{txq}: chain {} needs exactly one {DATA_STATUS_SIZE}-byte writable status, has {} bytes",
            chain.head,
            chain.writable_len()
        );
        counters.error(ErrorKind::MalformedChain);
        completion.complete(chain.head, 0);
        return Flow::Next;
    };
    let fail = |status: Status| {
        count_status(counters, status);
        let n = write_scatter(&mem, &[status_seg], &status_bytes(status));
        completion.complete(chain.head, u32::try_from(n).unwrap_or(0));
        Flow::Next
    };
    let Some(bytes) = read_array::<DATA_HDR_SIZE>(&mem, &chain.readable) else {
        crate::input_warn!(
            "txq{txq}: chain {} is shorter than the data header",
            chain.head
        );
        return fail(Status::Invalid);
    };
    let header = match DataHeader::decode(&bytes, ctx.max_payload) {
        Ok(header) => header,
        Err(err) => {
            crate::input_warn!("txq{txq}: {err}");
            return fail(err.status());
        }
    };
    if u64::from(header.payload_len) + DATA_HDR_SIZE as u64 != chain.readable_len() {
        crate::input_warn!(
            "txq{txq}: payload_len {} but the chain carries {} payload bytes",
            header.payload_len,
            chain.readable_len().saturating_sub(DATA_HDR_SIZE as u64)
        );
        return fail(Status::Invalid);
    }
    let admission = ctx.core.model().admit(&header, txq);
    if !matches!(admission, Ok(Admit::Wait(_))) {
        Counters::add(&counters.buffers, 1);
    }
    match admission {
        Err(status) => {
            if status != Status::Dropped && status != Status::NoClient {
                log::debug!(
                    "txq{txq}: buffer for stream {} refused: {status}",
                    header.stream_id
                );
            }
            fail(status)
        }
        Ok(Admit::Wait(_)) => {
            // Out of credit: give the chain back and wait for a release.
            vring.get_mut().get_queue_mut().go_to_previous_position();
            Flow::Blocked
        }
        Ok(Admit::Go(admission)) => {
            let payload = skip_bytes(std::mem::take(&mut chain.readable), DATA_HDR_SIZE as u64);
            let target = CompletionTarget {
                ring: completion.clone(),
                waker: Arc::clone(waker),
                counters: Arc::clone(counters),
            };
            match GuestBuffer::new(
                mem.clone().into_inner(),
                chain.head,
                &payload,
                status_seg.addr,
                target,
            ) {
                Ok(mut buffer) => {
                    buffer.hold_credit(admission.credit, admission.sample.seq);
                    ctx.core.uplink().send_sample(admission.sample, buffer);
                    Flow::Next
                }
                Err(err) => {
                    log::error!("txq{txq}: {err}");
                    admission.credit.release(admission.sample.seq);
                    fail(Status::Invalid)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipping_header_bytes_across_segments() {
        let segs = [
            Segment {
                addr: GuestAddress(0x1000),
                len: 16,
            },
            Segment {
                addr: GuestAddress(0x2000),
                len: 40,
            },
            Segment {
                addr: GuestAddress(0x3000),
                len: 100,
            },
        ];
        let rest = skip_bytes(segs.to_vec(), 48);
        assert_eq!(
            rest,
            vec![
                Segment {
                    addr: GuestAddress(0x2000 + 32),
                    len: 8
                },
                Segment {
                    addr: GuestAddress(0x3000),
                    len: 100
                }
            ]
        );
        assert_eq!(skip_bytes(segs.to_vec(), 156), vec![]);
    }
}

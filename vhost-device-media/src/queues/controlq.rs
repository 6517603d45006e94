//! The control queue: each chain is one request, answered in order (spec
//! 7.4 check order: header, generation, size limit, decoding, room for the
//! response), unless its answer waits for the client (`CALL_CREATE`).

use std::sync::Arc;
use std::time::Instant;

use mediaredir_proto::control::{ControlRequest, RawCtrlHdr, ResponseHeader};
use mediaredir_proto::status::Status;

use super::guest_bytes::{read_array, read_front, write_scatter};
use super::{Flow, QueueContext, QueueName, TxqDrainer, Virtqueue, process_chains};
use crate::chain::{Chain, Segment};
use crate::core::{DeferredChain, count_status};
use crate::counters::{Counters, ErrorKind};
use crate::memory::GuestRam;
use crate::model::Action;

/// Answers the requests on the control queue, at most
/// [`BATCH`](super::BATCH) at a time. Returns `true` when requests remain
/// (the caller schedules another pass).
pub fn process_controlq(
    ctx: &QueueContext<'_>,
    queue: &Arc<dyn Virtqueue>,
    drainer: TxqDrainer<'_>,
) -> bool {
    process_chains(ctx, queue.as_ref(), QueueName::Control, |mem, chain| {
        match control_chain(ctx, mem.as_ref(), &chain, drainer) {
            ControlDone::Answered(len) => queue.complete(chain.head, len),
            ControlDone::Deferred(session) => ctx.core.defer_control(
                session,
                Box::new(Parked {
                    head: chain.head,
                    writable: chain.writable,
                    queue: Arc::clone(queue),
                }),
            ),
        }
        ctx.core.flush_events();
        Flow::Next
    })
}

/// A control chain kept for a deferred answer (`CALL_CREATE`).
struct Parked {
    head: u16,
    writable: Vec<Segment>,
    queue: Arc<dyn Virtqueue>,
}

impl DeferredChain for Parked {
    fn capacity(&self) -> usize {
        self.writable.iter().map(|s| s.len as usize).sum()
    }

    fn answer(self: Box<Self>, response: &[u8]) {
        // The memory of now: the table may have changed while it waited.
        let mem = self.queue.memory();
        let written = write_scatter(mem.as_ref(), &self.writable, response);
        self.queue
            .complete(self.head, u32::try_from(written).unwrap_or(0));
    }
}

/// What became of a control chain.
enum ControlDone {
    /// Answered with this many bytes: complete it.
    Answered(u32),
    /// The answer waits for the client (`CALL_CREATE` of this session).
    Deferred(u32),
}

/// Handles one control chain.
fn control_chain(
    ctx: &QueueContext<'_>,
    mem: &dyn GuestRam,
    chain: &Chain,
    drainer: TxqDrainer<'_>,
) -> ControlDone {
    ControlDone::Answered(match control_request(ctx, mem, chain, drainer) {
        Ok(len) => len,
        Err(session) => return ControlDone::Deferred(session),
    })
}

/// Handles one control chain; the bytes written, or `Err(session)` when
/// the answer is deferred.
fn control_request(
    ctx: &QueueContext<'_>,
    mem: &dyn GuestRam,
    chain: &Chain,
    drainer: TxqDrainer<'_>,
) -> Result<u32, u32> {
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
        u32::try_from(write_scatter(mem, &chain.writable, &out)).unwrap_or(0)
    };
    // Spec 7.4 check order: header present, then generation (STALE before
    // anything else about the request), then the size limit.
    let Some(head) = read_array::<{ ResponseHeader::SIZE }>(mem, &chain.readable) else {
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
    let Some(bytes) = read_front(mem, &chain.readable, usize::try_from(readable).unwrap_or(0))
    else {
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

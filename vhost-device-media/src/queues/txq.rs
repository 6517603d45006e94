//! The playback queues (txq): each chain is a data header and a payload
//! that the model admits, refuses or holds back for credit; an admitted
//! payload goes to the uplink as a [`GuestBuffer`], never copied.

use std::sync::Arc;

use mediaredir_proto::data::{DATA_HDR_SIZE, DATA_STATUS_SIZE, DataHeader, status_bytes};
use mediaredir_proto::status::Status;

use super::guest_bytes::{read_array, skip_bytes, write_scatter};
use super::{Flow, QueueContext, QueueName, Virtqueue, next_valid, process_chains};
use crate::chain::Chain;
use crate::core::count_status;
use crate::counters::{Counters, ErrorKind};
use crate::guest_buffer::{CompletionTarget, GuestBuffer, UsedRing, Waker};
use crate::memory::GuestRam;
use crate::model::Admit;

/// Feeds playback buffers of txq `txq` to the uplink, at most
/// [`BATCH`](super::BATCH) at a time, until the queue is empty or the
/// stream at its head is out of credit. Returns `true` when buffers remain that credit allows (the caller
/// schedules another pass); a stream out of credit is woken by its release.
pub fn process_txq(
    ctx: &QueueContext<'_>,
    queue: &Arc<dyn Virtqueue>,
    txq: u32,
    waker: &Arc<dyn Waker>,
) -> bool {
    process_chains(ctx, queue.as_ref(), QueueName::Txq(txq), |mem, chain| {
        data_chain(ctx, queue, mem, txq, chain, waker)
    })
}

/// Completes with `CANCELLED` every buffer of `stream` at the head of txq
/// `txq`, stopping at the first buffer of another stream.
pub fn drain_stream(ctx: &QueueContext<'_>, queue: &dyn Virtqueue, txq: u32, stream: u32) {
    let mem = queue.memory();
    let mem = mem.as_ref();
    loop {
        let Some(chain) = next_valid(
            queue,
            mem,
            ctx.indirect,
            QueueName::Txq(txq),
            ctx.core.counters(),
        ) else {
            return;
        };
        let header = read_array::<DATA_HDR_SIZE>(mem, &chain.readable)
            .and_then(|b| DataHeader::decode(&b, u32::MAX).ok());
        let status_seg = chain
            .writable
            .first()
            .copied()
            .filter(|s| s.len as usize >= DATA_STATUS_SIZE);
        match (header, status_seg) {
            (Some(h), Some(seg)) if h.stream_id == stream => {
                let n = write_scatter(mem, &[seg], &status_bytes(Status::Cancelled));
                queue.complete(chain.head, u32::try_from(n).unwrap_or(0));
            }
            _ => {
                queue.unpop();
                return;
            }
        }
    }
}

fn data_chain(
    ctx: &QueueContext<'_>,
    queue: &Arc<dyn Virtqueue>,
    mem: Arc<dyn GuestRam>,
    txq: u32,
    mut chain: Chain,
    waker: &Arc<dyn Waker>,
) -> Flow {
    let counters = ctx.core.counters();
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
        queue.complete(chain.head, 0);
        return Flow::Next;
    };
    let fail = |status: Status| {
        count_status(counters, status);
        let n = write_scatter(mem.as_ref(), &[status_seg], &status_bytes(status));
        queue.complete(chain.head, u32::try_from(n).unwrap_or(0));
        Flow::Next
    };
    let Some(bytes) = read_array::<DATA_HDR_SIZE>(mem.as_ref(), &chain.readable) else {
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
            queue.unpop();
            Flow::Blocked
        }
        Ok(Admit::Go(admission)) => {
            let payload = skip_bytes(std::mem::take(&mut chain.readable), DATA_HDR_SIZE as u64);
            let target = CompletionTarget {
                ring: Arc::clone(queue) as Arc<dyn UsedRing>,
                waker: Arc::clone(waker),
                counters: Arc::clone(counters),
            };
            match GuestBuffer::new(
                Arc::clone(&mem),
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

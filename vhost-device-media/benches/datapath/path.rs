//! One path (an uplink, its client and the completion plumbing) and its
//! runs: the sender side of the benchmark, which makes each buffer as
//! queue processing would and hands it to the uplink within the stream's
//! credit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mediaredir_proto::wire::{SampleFlags, SampleHeader};
use vhost_user_mediaredir::chain::Segment;
use vhost_user_mediaredir::counters::Counters;
use vhost_user_mediaredir::guest_buffer::{CompletionTarget, GuestBuffer};
use vhost_user_mediaredir::limits::Limits;
use vhost_user_mediaredir::model::{Credit, Grant};
use vhost_user_mediaredir::uplink::Uplink;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::client::ClientLog;
use crate::completion::{BenchRing, Gate, GateWaker};
use crate::guest_memory::{PAYLOAD_AREA, status_addr};
use crate::nanos_since;

/// Most payload slots used for one size (a guest reuses a ring of buffers).
const MAX_SLOTS: u64 = 512;
/// Most buffers in flight in a throughput run (a 1024-entry virtqueue holds
/// about 256 three-descriptor chains).
pub(crate) const MAX_INFLIGHT_BUFFERS: u64 = 256;
/// The one stream used.
const STREAM: u32 = 1;

/// One path: an uplink, its client, and the completion plumbing.
pub(crate) struct Path {
    pub(crate) name: &'static str,
    pub(crate) uplink: Box<dyn Uplink>,
    mem: Arc<GuestMemoryMmap>,
    gate: Arc<Gate>,
    pub(crate) ring: Arc<BenchRing>,
    target: CompletionTarget,
    pub(crate) counters: Arc<Counters>,
    pub(crate) client: Arc<ClientLog>,
    pub(crate) next_seq: u64,
}

/// The outcome of one run.
pub(crate) struct Run {
    pub(crate) elapsed: Duration,
    pub(crate) buffers: u64,
    pub(crate) bytes: u64,
    pub(crate) latencies_ns: Vec<u64>,
}

impl Path {
    pub(crate) fn new(
        name: &'static str,
        uplink: Box<dyn Uplink>,
        mem: &Arc<GuestMemoryMmap>,
        counters: Arc<Counters>,
        client: Arc<ClientLog>,
    ) -> Path {
        let gate = Arc::new(Gate::default());
        let ring = Arc::new(BenchRing {
            mem: Arc::clone(mem),
            gate: Arc::clone(&gate),
            completed: AtomicU64::new(0),
            not_ok: AtomicU64::new(0),
        });
        let target = CompletionTarget {
            ring: ring.clone(),
            waker: Arc::new(GateWaker(Arc::clone(&gate))),
            counters: Arc::clone(&counters),
        };
        Path {
            name,
            uplink,
            mem: Arc::clone(mem),
            gate,
            ring,
            target,
            counters,
            client,
            next_seq: 1,
        }
    }

    /// Sends `count` buffers of `size` bytes with `credit` bounding what is
    /// in flight, and waits until all have completed.
    fn run(&mut self, size: u64, count: u64, credit: &Arc<Credit>, base: Instant) -> Run {
        let slots = (PAYLOAD_AREA / size).min(MAX_SLOTS);
        let len = u32::try_from(size).expect("size fits u32");
        let done_before = self.ring.completed.load(Ordering::Acquire);
        self.client.take_latencies();
        let start = Instant::now();
        for _ in 0..count {
            let seq = self.next_seq;
            self.next_seq += 1;
            loop {
                let seen = self.gate.generation();
                if credit.acquire(seq, size, None, None) == Grant::Granted {
                    break;
                }
                self.gate.wait_past(seen);
            }
            let slot = seq % slots;
            let segment = Segment {
                addr: GuestAddress(slot * size),
                len,
            };
            let head = u16::try_from(slot).expect("slot fits u16");
            let mut buffer = GuestBuffer::new(
                self.mem.clone(),
                head,
                &[segment],
                status_addr(slot),
                self.target.clone(),
            )
            .expect("payload is in guest memory");
            buffer.hold_credit(Arc::clone(credit), seq);
            let sample = SampleHeader {
                clip: Default::default(),
                stream: STREAM,
                seq,
                pts: Some(nanos_since(base)),
                dts: None,
                duration: None,
                flags: SampleFlags::empty(),
            };
            self.uplink.send_sample(sample, buffer);
        }
        let target = done_before + count;
        loop {
            let seen = self.gate.generation();
            if self.ring.completed.load(Ordering::Acquire) >= target {
                break;
            }
            self.gate.wait_past(seen);
        }
        let elapsed = start.elapsed();
        Run {
            elapsed,
            buffers: count,
            bytes: count * size,
            latencies_ns: self.client.take_latencies(),
        }
    }

    /// A throughput run: the daemon's default credit, at most
    /// [`MAX_INFLIGHT_BUFFERS`] buffers in flight.
    pub(crate) fn throughput(&mut self, size: u64, count: u64, base: Instant) -> Run {
        let limits = Limits::default();
        let window = u64::from(limits.device.max_inflight_bytes).min(MAX_INFLIGHT_BUFFERS * size);
        let credit = Arc::new(Credit::new(
            u32::try_from(window).expect("window fits u32"),
            limits.device.max_inflight_ms,
        ));
        self.run(size, count, &credit, base)
    }

    /// A latency run: one buffer in flight at a time (an idle stream always
    /// gets one buffer, and a 1-byte credit allows no second one).
    pub(crate) fn latency(&mut self, size: u64, count: u64, base: Instant) -> Run {
        let credit = Arc::new(Credit::new(1, u32::MAX));
        self.run(size, count, &credit, base)
    }
}

//! Data-path benchmark: the socket uplink's zero-copy `writev` from guest
//! memory against a copying baseline, in one process, on one machine.
//!
//! For every payload size, the same buffers (one payload segment each, in a
//! `GuestMemoryMmap`) go through two uplinks to the same kind of client:
//!
//! - zero copy: the daemon's real [`SocketUplink`] on a Unix socket; each
//!   buffer is a [`GuestBuffer`] that the uplink's writer thread sends with
//!   one `writev` of [prefix + FlatBuffers header][payload straight from guest
//!   memory];
//! - copy (baseline): a minimal uplink written here ([`CopyUplink`]) that does
//!   what a daemon without zero copy does (vhost-device-sound's GStreamer
//!   backend copies each period into a `gst::Buffer`): it copies the payload
//!   into a freshly allocated `Vec` (one `memcpy` into uninitialised memory,
//!   the cheapest copy there is) on the sending thread, then its writer thread
//!   sends [prefix + header][Vec] with the same `writev` code. Everything else
//!   is the same: queue and writer thread, held buffers completed on the
//!   client's ack, stream credit, the client.
//!
//! The client is a thread of this process: it reads each frame (prefix,
//! header, payload into a reused buffer), checks the payload's pattern and
//! acks the sample, as the client engine does. Send time travels in the
//! sample's `pts` (nanoseconds since a shared `Instant`), so the client
//! measures each buffer's latency from `send_sample` to "whole frame read".
//!
//! Two measurements per size and path:
//! - throughput: a fixed number of buffers with the daemon's default stream
//!   credit (16 MiB, and at most 256 buffers, about what a 1024-entry
//!   virtqueue holds) in flight; MB/s (10^6 bytes) and buffers/s from the
//!   first `send_sample` to the last completion. The latency seen in this run
//!   (buffers queue behind the window) is reported as "under load";
//! - latency: one buffer in flight at a time (the next is sent when the
//!   previous is acked): p50 and p99 of send-to-frame-read.
//!
//! Rounds alternate which path goes first; throughput is the median of the
//! rounds, latency percentiles pool the rounds' samples. A full run takes
//! well under a minute on 2 CPUs; `--smoke` (or `VDM_BENCH_SMOKE=1`) runs
//! small budgets in a few seconds, and so does a run without cargo's
//! `--bench` flag (`cargo test --bench datapath`), as with libtest benches.
//! The last stdout line is one JSON object with every figure.
//!
//! Sanity checks, not timing asserts: every buffer completes `OK`, every
//! payload arrives intact, and the zero-copy path's `payload_bytes_copied`
//! counter stays 0 (the baseline counts its copies in its own counters).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{
    self, Capabilities, ClientFeatures, FramePrefix, FrameReader, Hello, Message, PREFIX_LEN,
    SampleFlags, SampleHeader,
};
use vhost_device_media::chain::Segment;
use vhost_device_media::counters::Counters;
use vhost_device_media::guest_buffer::{CompletionTarget, GuestBuffer, RawSlice, UsedRing, Waker};
use vhost_device_media::limits::Limits;
use vhost_device_media::model::{Credit, Grant};
use vhost_device_media::uplink::socket::{ListenAddr, SocketUplink};
use vhost_device_media::uplink::stream::ClientStream;
use vhost_device_media::uplink::{ClientEvents, Uplink};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Payload sizes measured.
const SIZES: [u64; 6] = [1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20];
/// Guest memory holding the payload slots.
const PAYLOAD_AREA: u64 = 64 << 20;
/// Where the 8-byte data statuses go (one per slot), after the payloads.
const STATUS_BASE: u64 = PAYLOAD_AREA;
/// Most payload slots used for one size (a guest reuses a ring of buffers).
const MAX_SLOTS: u64 = 512;
/// Most buffers in flight in a throughput run (a 1024-entry virtqueue holds
/// about 256 three-descriptor chains).
const MAX_INFLIGHT_BUFFERS: u64 = 256;
/// The one stream used.
const STREAM: u32 = 1;
/// Payload words are their guest address XOR this, so the client can check
/// every byte arrived in place without knowing the layout.
const PATTERN_KEY: u64 = 0x5a5a_1234_8765_a5a5;
/// The client checks every word of one frame in this many (and the first and
/// last word of every frame).
const FULL_CHECK_EVERY: u64 = 64;

/// How much to run.
#[derive(Debug, Clone, Copy)]
struct Budget {
    smoke: bool,
    /// Payload bytes of one throughput run (before the buffer-count clamp).
    bytes: u64,
    /// Fewest and most buffers of one throughput run.
    min_buffers: u64,
    max_buffers: u64,
    /// Buffers of one latency run.
    latency_buffers: u64,
    /// Rounds (each runs both paths).
    rounds: usize,
}

impl Budget {
    fn new(smoke: bool) -> Budget {
        if smoke {
            Budget {
                smoke,
                bytes: 4 << 20,
                min_buffers: 64,
                max_buffers: 1000,
                latency_buffers: 50,
                rounds: 1,
            }
        } else {
            Budget {
                smoke,
                bytes: 512 << 20,
                min_buffers: 1000,
                max_buffers: 65536,
                latency_buffers: 1000,
                rounds: 5,
            }
        }
    }

    fn throughput_buffers(&self, size: u64) -> u64 {
        (self.bytes / size).clamp(self.min_buffers, self.max_buffers)
    }
}

/// Nanoseconds since `base`.
fn nanos_since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
}

// ---------------------------------------------------------------------------
// The daemon side's completion plumbing: a used ring that checks statuses and
// a waker, both signalling one gate the sender waits on.

/// What the sender waits on: a generation bumped by completions and credit
/// releases. Waiting "past" a generation read before checking cannot miss a
/// wake-up.
#[derive(Default)]
struct Gate {
    state: Mutex<(u64, bool)>,
    cv: Condvar,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, (u64, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn generation(&self) -> u64 {
        self.lock().0
    }

    fn bump(&self) {
        let mut s = self.lock();
        s.0 += 1;
        let waiting = std::mem::take(&mut s.1);
        drop(s);
        if waiting {
            self.cv.notify_all();
        }
    }

    fn wait_past(&self, seen: u64) {
        let mut s = self.lock();
        while s.0 == seen {
            s.1 = true;
            s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A used ring that counts completions and checks the status each buffer
/// wrote to guest memory.
struct BenchRing {
    mem: Arc<GuestMemoryMmap>,
    gate: Arc<Gate>,
    completed: AtomicU64,
    not_ok: AtomicU64,
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

struct GateWaker(Arc<Gate>);

impl Waker for GateWaker {
    fn wake(&self) {
        self.0.bump();
    }
}

fn status_addr(slot: u64) -> GuestAddress {
    GuestAddress(STATUS_BASE + slot * 8)
}

/// Guest memory filled with the self-describing pattern.
fn guest_memory() -> Arc<GuestMemoryMmap> {
    let total = usize::try_from(PAYLOAD_AREA + (64 << 10)).expect("fits");
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), total)]).expect("guest memory");
    let chunk = 1u64 << 20;
    let mut bytes = Vec::with_capacity(usize::try_from(chunk).expect("fits"));
    for base in (0..PAYLOAD_AREA).step_by(1 << 20) {
        bytes.clear();
        for addr in (base..base + chunk).step_by(8) {
            bytes.extend_from_slice(&(addr ^ PATTERN_KEY).to_le_bytes());
        }
        mem.write_slice(&bytes, GuestAddress(base))
            .expect("fill guest memory");
    }
    Arc::new(mem)
}

// ---------------------------------------------------------------------------
// The client: a thread that reads frames and acks samples.

/// Latencies the client measured, and payloads that were wrong.
#[derive(Default)]
struct ClientLog {
    latencies_ns: Mutex<Vec<u64>>,
    bad_payloads: AtomicU64,
    frames: AtomicU64,
}

impl ClientLog {
    fn take_latencies(&self) -> Vec<u64> {
        std::mem::take(&mut *self.latencies_ns.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn word(bytes: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
    u64::from_le_bytes(w) ^ PATTERN_KEY
}

/// Whether `payload` is an intact run of guest memory (checks every word when
/// `full`, else the first and last).
fn payload_ok(payload: &[u8], full: bool) -> bool {
    if payload.is_empty() || !payload.len().is_multiple_of(8) {
        return false;
    }
    let words = payload.len() / 8;
    let base = word(payload, 0);
    let expect = |i: usize| base.wrapping_add(8 * i as u64);
    if word(payload, words - 1) != expect(words - 1) {
        return false;
    }
    !full || (0..words).all(|i| word(payload, i) == expect(i))
}

/// Reads frames from `rx` until the connection closes, acking every sample
/// on `tx` right after recording its latency.
fn client_loop(rx: UnixStream, mut tx: UnixStream, base: Instant, log: &ClientLog) {
    let mut rx = BufReader::with_capacity(64 << 10, rx);
    let mut prefix = [0u8; PREFIX_LEN];
    let mut header = Vec::new();
    let mut payload = Vec::new();
    let mut fbb = wire::FlatBufferBuilder::new();
    let mut out = Vec::new();
    loop {
        if rx.read_exact(&mut prefix).is_err() {
            return;
        }
        let Ok(p) = FramePrefix::decode(&prefix) else {
            fail("client: bad frame prefix");
        };
        header.resize(p.header_len(), 0);
        payload.resize(p.payload_len(), 0);
        if rx.read_exact(&mut header).is_err() || rx.read_exact(&mut payload).is_err() {
            return;
        }
        let Ok(msg) = Message::decode(&header) else {
            fail("client: bad frame header");
        };
        let reply = match msg {
            Message::Sample(s) => {
                let now = nanos_since(base);
                let Some(sent) = s.pts else {
                    fail("client: a sample without its send time in pts");
                };
                let full = s.seq % FULL_CHECK_EVERY == 1;
                if !payload_ok(&payload, full) {
                    log.bad_payloads.fetch_add(1, Ordering::Relaxed);
                }
                log.latencies_ns
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(now.saturating_sub(sent));
                log.frames.fetch_add(1, Ordering::Relaxed);
                Some(Message::Ack {
                    stream: s.stream,
                    seq: s.seq,
                    status: Status::Ok,
                })
            }
            Message::Ping { nonce } => Some(Message::Pong { nonce }),
            _ => None,
        };
        if let Some(reply) = reply {
            if wire::encode_frame_into(&mut fbb, &reply, 0, &mut out).is_err() {
                fail("client: cannot encode a reply");
            }
            if tx.write_all(&out).is_err() {
                return;
            }
        }
    }
}

/// Ends the process: a broken client would leave the sender waiting forever.
fn fail(why: &str) -> ! {
    eprintln!("datapath bench: {why}");
    std::process::exit(1);
}

fn spawn_client(rx: UnixStream, tx: UnixStream, base: Instant, log: Arc<ClientLog>) {
    thread::Builder::new()
        .name("bench-client".into())
        .spawn(move || client_loop(rx, tx, base, &log))
        .expect("spawn client");
}

/// Records whether the socket uplink has a client.
#[derive(Default)]
struct Connection {
    connected: Mutex<bool>,
    cv: Condvar,
}

impl ClientEvents for Connection {
    fn client_connected(&self, _caps: Capabilities) {
        *self.connected.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }

    fn client_disconnected(&self) {
        *self.connected.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.cv.notify_all();
    }

    fn client_message(&self, _msg: Message) {}
}

impl Connection {
    fn wait_connected(&self, timeout: Duration) -> bool {
        let guard = self.connected.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |c| !*c)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }
}

// ---------------------------------------------------------------------------
// The copying baseline uplink.

enum CopyItem {
    Message(Message),
    Sample(SampleHeader, Vec<u8>, GuestBuffer),
}

/// Samples written and waiting for the client's cumulative ack.
#[derive(Default)]
struct CopyBook {
    /// Highest ack seen (an ack can overtake the writer's bookkeeping).
    acked: u64,
    unacked: VecDeque<(u64, GuestBuffer)>,
}

struct CopyShared {
    queue: Mutex<VecDeque<CopyItem>>,
    wake: Condvar,
    book: Mutex<CopyBook>,
    counters: Arc<Counters>,
    stream: ClientStream,
    closed: AtomicBool,
}

/// An uplink that copies each payload out of guest memory into a fresh `Vec`
/// before sending it: the baseline. Same queue, writer thread, `writev`,
/// hold-until-ack and completion as the socket uplink; only the copy differs.
struct CopyUplink {
    shared: Arc<CopyShared>,
}

impl CopyUplink {
    /// Serves a connected socket (no handshake: the client is known).
    fn new(stream: UnixStream, counters: Arc<Counters>) -> CopyUplink {
        let acks = stream.try_clone().expect("clone socket");
        let shared = Arc::new(CopyShared {
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            book: Mutex::new(CopyBook::default()),
            counters,
            stream: ClientStream::Unix(stream),
            closed: AtomicBool::new(false),
        });
        let writer = Arc::clone(&shared);
        thread::Builder::new()
            .name("copy-writer".into())
            .spawn(move || copy_write_loop(&writer))
            .expect("spawn writer");
        let reader = Arc::clone(&shared);
        thread::Builder::new()
            .name("copy-acks".into())
            .spawn(move || copy_ack_loop(&reader, acks))
            .expect("spawn ack reader");
        CopyUplink { shared }
    }

    fn enqueue(&self, item: CopyItem) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(item);
        self.shared.wake.notify_all();
    }
}

/// Copies the payload of `buffer` into a new `Vec` (not zeroed first).
fn copy_payload(buffer: &GuestBuffer) -> Vec<u8> {
    let len = buffer.payload_len() as usize;
    let mut copy: Vec<u8> = Vec::with_capacity(len);
    for slice in buffer.slices() {
        let dst = copy.spare_capacity_mut()[..slice.len]
            .as_mut_ptr()
            .cast::<u8>();
        // SAFETY: `slice` lies in guest memory that `buffer` keeps mapped;
        // `dst` has room for `slice.len` bytes (the spare capacity was just
        // sliced to that length) and is a fresh allocation, so the two do not
        // overlap. Guest memory is read as raw bytes, never as a reference.
        unsafe { std::ptr::copy_nonoverlapping(slice.ptr, dst, slice.len) };
        let filled = copy.len() + slice.len;
        // SAFETY: the bytes up to `filled` were initialised just above.
        unsafe { copy.set_len(filled) };
    }
    copy
}

impl Uplink for CopyUplink {
    fn send(&self, msg: Message) {
        self.enqueue(CopyItem::Message(msg));
    }

    fn send_sample(&self, sample: SampleHeader, buffer: GuestBuffer) {
        let copy = copy_payload(&buffer);
        Counters::add(
            &self.shared.counters.payload_bytes_copied,
            copy.len() as u64,
        );
        self.enqueue(CopyItem::Sample(sample, copy, buffer));
    }

    fn cancel(&self, _stream: u32, status: Status) {
        let doomed: Vec<(u64, GuestBuffer)> = self
            .shared
            .book
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unacked
            .drain(..)
            .collect();
        for (_, mut buf) in doomed {
            buf.set_status(status);
        }
    }

    fn forget(&self, stream: u32) {
        self.cancel(stream, Status::Cancelled);
    }

    fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.shared.stream.shutdown();
        self.shared.wake.notify_all();
    }
}

fn copy_write_loop(shared: &CopyShared) {
    let mut fbb = wire::FlatBufferBuilder::new();
    let mut head = Vec::new();
    loop {
        let item = {
            let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if shared.closed.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(item) = q.pop_front() {
                    break item;
                }
                q = shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let (msg, payload, buffer) = match item {
            CopyItem::Message(msg) => (msg, Vec::new(), None),
            CopyItem::Sample(sample, copy, buffer) => (Message::Sample(sample), copy, Some(buffer)),
        };
        wire::encode_frame_into(&mut fbb, &msg, payload.len(), &mut head).expect("encode frame");
        let slices = [RawSlice {
            ptr: payload.as_ptr(),
            len: payload.len(),
        }];
        if shared.stream.write_frame(&head, &slices).is_err() {
            return;
        }
        drop(payload);
        if let (Message::Sample(sample), Some(buffer)) = (msg, buffer) {
            Counters::add(
                &shared.counters.payload_bytes,
                u64::from(buffer.payload_len()),
            );
            let mut book = shared.book.lock().unwrap_or_else(|p| p.into_inner());
            if sample.seq > book.acked {
                book.unacked.push_back((sample.seq, buffer));
            } else {
                drop(book);
                let mut buffer = buffer;
                buffer.set_status(Status::Ok);
            }
        }
    }
}

fn copy_ack_loop(shared: &CopyShared, stream: UnixStream) {
    let mut stream = BufReader::new(stream);
    let mut reader = FrameReader::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        while let Some((msg, _)) = reader.next_frame() {
            if let Message::Ack { seq, status, .. } = msg {
                let mut done = Vec::new();
                {
                    let mut book = shared.book.lock().unwrap_or_else(|p| p.into_inner());
                    book.acked = book.acked.max(seq);
                    while book.unacked.front().is_some_and(|(n, _)| *n <= seq) {
                        done.extend(book.unacked.pop_front().map(|(_, b)| b));
                    }
                }
                for mut buffer in done {
                    buffer.set_status(status);
                }
            }
        }
        let want = reader.wanted().clamp(1, buf.len());
        match stream.read(&mut buf[..want]) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if reader.feed(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// One path (uplink + client + completion plumbing) and its runs.

struct Path {
    name: &'static str,
    uplink: Box<dyn Uplink>,
    mem: Arc<GuestMemoryMmap>,
    gate: Arc<Gate>,
    ring: Arc<BenchRing>,
    target: CompletionTarget,
    counters: Arc<Counters>,
    client: Arc<ClientLog>,
    next_seq: u64,
}

/// The outcome of one run.
struct Run {
    elapsed: Duration,
    buffers: u64,
    bytes: u64,
    latencies_ns: Vec<u64>,
}

impl Path {
    fn new(
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
                Arc::clone(&self.mem),
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
    fn throughput(&mut self, size: u64, count: u64, base: Instant) -> Run {
        let limits = Limits::default();
        let window = u64::from(limits.max_inflight_bytes).min(MAX_INFLIGHT_BUFFERS * size);
        let credit = Arc::new(Credit::new(
            u32::try_from(window).expect("window fits u32"),
            limits.max_inflight_ms,
        ));
        self.run(size, count, &credit, base)
    }

    /// A latency run: one buffer in flight at a time (an idle stream always
    /// gets one buffer, and a 1-byte credit allows no second one).
    fn latency(&mut self, size: u64, count: u64, base: Instant) -> Run {
        let credit = Arc::new(Credit::new(1, u32::MAX));
        self.run(size, count, &credit, base)
    }
}

// ---------------------------------------------------------------------------
// Figures.

/// Nearest-rank percentile of sorted `v`, in microseconds.
fn percentile_us(sorted: &[u64], p: u64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).clamp(1, n);
    let idx = usize::try_from(rank - 1).unwrap_or(0);
    sorted[idx] as f64 / 1000.0
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if !n.is_multiple_of(2) => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One path's figures at one size.
#[derive(Default)]
struct Figures {
    mb_s_rounds: Vec<f64>,
    buffers_s_rounds: Vec<f64>,
    loaded_ns: Vec<u64>,
    idle_ns: Vec<u64>,
}

impl Figures {
    fn add_throughput(&mut self, run: Run) {
        let secs = run.elapsed.as_secs_f64();
        self.mb_s_rounds.push(run.bytes as f64 / secs / 1e6);
        self.buffers_s_rounds.push(run.buffers as f64 / secs);
        self.loaded_ns.extend(run.latencies_ns);
    }

    fn add_latency(&mut self, run: Run) {
        self.idle_ns.extend(run.latencies_ns);
    }

    fn finish(&mut self) {
        self.loaded_ns.sort_unstable();
        self.idle_ns.sort_unstable();
    }

    fn mb_s(&self) -> f64 {
        median(&self.mb_s_rounds)
    }

    fn buffers_s(&self) -> f64 {
        median(&self.buffers_s_rounds)
    }

    /// Slowest and fastest round, `lo–hi`.
    fn mb_s_range(&self) -> String {
        let lo = self
            .mb_s_rounds
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let hi = self.mb_s_rounds.iter().copied().fold(0.0, f64::max);
        format!("{lo:.0}–{hi:.0}")
    }

    fn json(&self) -> String {
        let rounds: Vec<String> = self.mb_s_rounds.iter().map(|v| format!("{v:.1}")).collect();
        format!(
            "{{\"mb_s\":{:.1},\"buffers_s\":{:.0},\"mb_s_rounds\":[{}],\
             \"p50_us\":{:.1},\"p99_us\":{:.1},\"latency_samples\":{},\
             \"loaded_p50_us\":{:.1},\"loaded_p99_us\":{:.1}}}",
            self.mb_s(),
            self.buffers_s(),
            rounds.join(","),
            percentile_us(&self.idle_ns, 50),
            percentile_us(&self.idle_ns, 99),
            self.idle_ns.len(),
            percentile_us(&self.loaded_ns, 50),
            percentile_us(&self.loaded_ns, 99),
        )
    }
}

/// The machine the figures come from.
struct Machine {
    cpu: String,
    cpus_online: usize,
    nproc: usize,
    mem_gib: f64,
    kernel: String,
    loadavg: String,
}

impl Machine {
    fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string());
        let cpus_online = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into())
        };
        let loadavg = read("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        Machine {
            cpu,
            cpus_online,
            nproc: thread::available_parallelism().map_or(0, |n| n.get()),
            mem_gib: mem_kib as f64 / 1_048_576.0,
            kernel: read("/proc/sys/kernel/osrelease"),
            loadavg,
        }
    }

    fn line(&self) -> String {
        format!(
            "{}, {} CPUs online (nproc {}), {:.1} GiB RAM, Linux {}, load average {}",
            self.cpu, self.cpus_online, self.nproc, self.mem_gib, self.kernel, self.loadavg
        )
    }

    fn json(&self) -> String {
        format!(
            "{{\"cpu\":{},\"cpus_online\":{},\"nproc\":{},\"mem_gib\":{:.1},\"kernel\":{},\"loadavg\":{}}}",
            json_str(&self.cpu),
            self.cpus_online,
            self.nproc,
            self.mem_gib,
            json_str(&self.kernel),
            json_str(&self.loadavg),
        )
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Today's UTC date, `YYYY-MM-DD`, from the system clock.
fn utc_date(unix_secs: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let days = i64::try_from(unix_secs / 86_400).unwrap_or(0) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn size_label(size: u64) -> String {
    if size >= 1 << 20 {
        format!("{} MiB", size >> 20)
    } else {
        format!("{} KiB", size >> 10)
    }
}

fn us_pair(sorted: &[u64]) -> String {
    format!(
        "{:.1} / {:.1}",
        percentile_us(sorted, 50),
        percentile_us(sorted, 99)
    )
}

// ---------------------------------------------------------------------------

fn parse_args() -> Budget {
    let mut smoke = std::env::var("VDM_BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut bench_flag = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--smoke" => smoke = true,
            "--bench" => bench_flag = true,
            "--help" | "-h" => {
                println!(
                    "usage: cargo bench -p vhost-device-media --bench datapath [-- --smoke]\n\
                     --smoke (or VDM_BENCH_SMOKE=1): small budgets, a few seconds"
                );
                std::process::exit(0);
            }
            // libtest-style filters and flags passed by cargo are ignored.
            _ => {}
        }
    }
    if !bench_flag && !smoke {
        println!("(run without cargo's --bench flag, as by `cargo test`: smoke run)");
        smoke = true;
    }
    Budget::new(smoke)
}

fn main() {
    let budget = parse_args();
    let machine = Machine::probe();
    let unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let date = utc_date(unix_secs);
    println!("# vhost-device-media data-path benchmark ({date})");
    println!();
    println!("machine: {}", machine.line());
    println!(
        "setup: guest memory is an anonymous mmap (GuestMemoryMmap::from_ranges) standing in \
         for the memfd QEMU shares; one payload segment per buffer; Unix stream sockets; the \
         client is a thread of this process that reads every frame and acks it"
    );
    println!(
        "mode: {} ({} round(s); MB = 10^6 bytes)",
        if budget.smoke { "smoke" } else { "full" },
        budget.rounds
    );

    let base = Instant::now();
    let mem = guest_memory();

    // Zero copy: the daemon's socket uplink and a client that says Hello.
    let sock: PathBuf = std::env::temp_dir().join(format!("vdm-bench-{}.sock", std::process::id()));
    let zc_counters = Arc::new(Counters::default());
    let uplink = SocketUplink::listen(ListenAddr::Unix(sock.clone()), Arc::clone(&zc_counters), 1)
        .expect("listen");
    let connection = Arc::new(Connection::default());
    let weak: Weak<Connection> = Arc::downgrade(&connection);
    uplink.set_events(weak);
    let mut zc_socket = UnixStream::connect(&sock).expect("connect to the uplink");
    let hello = Message::Hello(Hello {
        major: wire::PROTOCOL_MAJOR,
        minor: wire::PROTOCOL_MINOR,
        name: "datapath bench".into(),
        caps: Capabilities {
            codecs: vec![],
            sources: vec![],
            features: ClientFeatures::empty(),
        },
    });
    zc_socket
        .write_all(&wire::encode_frame(&hello, 0).expect("encode Hello"))
        .expect("send Hello");
    let zc_log = Arc::new(ClientLog::default());
    spawn_client(
        zc_socket.try_clone().expect("clone"),
        zc_socket,
        base,
        Arc::clone(&zc_log),
    );
    assert!(
        connection.wait_connected(Duration::from_secs(10)),
        "the socket uplink did not report the client"
    );
    let mut zero_copy = Path::new(
        "zero-copy",
        Box::new(uplink),
        &mem,
        Arc::clone(&zc_counters),
        zc_log,
    );

    // Copy: the baseline uplink on a socket pair, the same client.
    let (daemon_end, client_end) = UnixStream::pair().expect("socket pair");
    let copy_counters = Arc::new(Counters::default());
    let copy_log = Arc::new(ClientLog::default());
    spawn_client(
        client_end.try_clone().expect("clone"),
        client_end,
        base,
        Arc::clone(&copy_log),
    );
    let mut copying = Path::new(
        "copy",
        Box::new(CopyUplink::new(daemon_end, Arc::clone(&copy_counters))),
        &mem,
        Arc::clone(&copy_counters),
        copy_log,
    );

    let mut results: Vec<(u64, Figures, Figures)> = Vec::new();
    for size in SIZES {
        let count = budget.throughput_buffers(size);
        let mut zc = Figures::default();
        let mut cp = Figures::default();
        // Warm-up: threads, socket buffers, allocator, caches.
        for path in [&mut zero_copy, &mut copying] {
            path.throughput(size, (count / 4).max(16), base);
        }
        for round in 0..budget.rounds {
            let order: [(&mut Path, &mut Figures); 2] = if round % 2 == 0 {
                [(&mut zero_copy, &mut zc), (&mut copying, &mut cp)]
            } else {
                [(&mut copying, &mut cp), (&mut zero_copy, &mut zc)]
            };
            for (path, figures) in order {
                figures.add_throughput(path.throughput(size, count, base));
                figures.add_latency(path.latency(size, budget.latency_buffers, base));
            }
        }
        zc.finish();
        cp.finish();
        eprintln!(
            "{:>8}: zero-copy {:.0} MB/s, copy {:.0} MB/s ({count} buffers per run)",
            size_label(size),
            zc.mb_s(),
            cp.mb_s()
        );
        results.push((size, zc, cp));
    }

    // Sanity checks (not timing asserts).
    for path in [&zero_copy, &copying] {
        assert_eq!(
            path.ring.not_ok.load(Ordering::Relaxed),
            0,
            "{}: a buffer completed with a status other than OK",
            path.name
        );
        assert_eq!(
            path.client.bad_payloads.load(Ordering::Relaxed),
            0,
            "{}: a payload arrived damaged",
            path.name
        );
        // A buffer's drop completes it on the ring and then counts it: the
        // last count may land just after the ring shows the completion.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut snap = path.counters.snapshot();
        while snap.buffers_completed < path.next_seq - 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
            snap = path.counters.snapshot();
        }
        assert_eq!(snap.uplink_errors, 0, "{}: uplink errors", path.name);
        assert_eq!(
            snap.buffers_completed,
            path.next_seq - 1,
            "{}: every buffer completes",
            path.name
        );
    }
    let zc_snap = zc_counters.snapshot();
    let copy_snap = copy_counters.snapshot();
    assert_eq!(
        zc_snap.payload_bytes_copied, 0,
        "the zero-copy path copied payload bytes"
    );
    assert!(zc_snap.payload_bytes > 0);

    println!();
    println!(
        "| payload | zero-copy MB/s | copy MB/s | ratio (zero-copy / copy) | zero-copy p50 / p99 µs | copy p50 / p99 µs |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for (size, zc, cp) in &results {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {} | {} |",
            size_label(*size),
            zc.mb_s(),
            cp.mb_s(),
            zc.mb_s() / cp.mb_s(),
            us_pair(&zc.idle_ns),
            us_pair(&cp.idle_ns),
        );
    }
    println!();
    println!(
        "Latency above: one buffer in flight, send_sample to whole frame read by the client. \
         Throughput: median of the rounds, up to {MAX_INFLIGHT_BUFFERS} buffers / 16 MiB in flight."
    );
    println!();
    println!(
        "| payload | zero-copy buffers/s | copy buffers/s | zero-copy MB/s range | copy MB/s range | \
         zero-copy p50 / p99 µs under load | copy p50 / p99 µs under load |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (size, zc, cp) in &results {
        println!(
            "| {} | {:.0} | {:.0} | {} | {} | {} | {} |",
            size_label(*size),
            zc.buffers_s(),
            cp.buffers_s(),
            zc.mb_s_range(),
            cp.mb_s_range(),
            us_pair(&zc.loaded_ns),
            us_pair(&cp.loaded_ns),
        );
    }
    println!();
    println!(
        "Under load: the latency of the throughput runs, where buffers wait behind the credit \
         window; range: slowest and fastest round."
    );
    println!();
    println!(
        "payload_bytes_copied: zero-copy path {} (asserted 0; {} payload bytes sent), \
         copy baseline {} (its copies, counted the same way)",
        zc_snap.payload_bytes_copied, zc_snap.payload_bytes, copy_snap.payload_bytes_copied
    );

    let sizes_json: Vec<String> = results
        .iter()
        .map(|(size, zc, cp)| {
            format!(
                "{{\"size\":{size},\"zero_copy\":{},\"copy\":{},\"ratio\":{:.3}}}",
                zc.json(),
                cp.json(),
                zc.mb_s() / cp.mb_s()
            )
        })
        .collect();
    println!(
        "{{\"bench\":\"datapath\",\"date\":\"{date}\",\"unix_time\":{unix_secs},\"mode\":\"{}\",\
         \"rounds\":{},\"machine\":{},\"guest_memory\":\"anonymous mmap (stands in for QEMU's memfd)\",\
         \"sizes\":[{}],\"payload_bytes_copied\":{{\"zero_copy\":{},\"copy\":{}}}}}",
        if budget.smoke { "smoke" } else { "full" },
        budget.rounds,
        machine.json(),
        sizes_json.join(","),
        zc_snap.payload_bytes_copied,
        copy_snap.payload_bytes_copied,
    );

    zero_copy.uplink.shutdown();
    copying.uplink.shutdown();
    let _ = std::fs::remove_file(&sock);
}

//! The client: a thread that reads every frame, checks the payload's
//! pattern, records the sample's latency and acks it, as the client engine
//! does; and what the socket uplink reports about it.

use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{self, Capabilities, FramePrefix, Message, PREFIX_LEN};
use vhost_user_mediaredir::uplink::ClientEvents;

use crate::guest_memory::PATTERN_KEY;
use crate::nanos_since;

/// The client checks every word of one frame in this many (and the first and
/// last word of every frame).
const FULL_CHECK_EVERY: u64 = 64;

/// Latencies the client measured, and payloads that were wrong.
#[derive(Default)]
pub(crate) struct ClientLog {
    latencies_ns: Mutex<Vec<u64>>,
    pub(crate) bad_payloads: AtomicU64,
    frames: AtomicU64,
}

impl ClientLog {
    pub(crate) fn take_latencies(&self) -> Vec<u64> {
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

/// Starts the client on a thread of its own.
pub(crate) fn spawn_client(rx: UnixStream, tx: UnixStream, base: Instant, log: Arc<ClientLog>) {
    thread::Builder::new()
        .name("bench-client".into())
        .spawn(move || client_loop(rx, tx, base, &log))
        .expect("spawn client");
}

/// Records whether the socket uplink has a client.
#[derive(Default)]
pub(crate) struct Connection {
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
    pub(crate) fn wait_connected(&self, timeout: Duration) -> bool {
        let guard = self.connected.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |c| !*c)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }
}

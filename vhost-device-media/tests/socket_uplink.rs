//! The socket uplink with real sockets and a guest-memory mapping: payload
//! bytes arrive unchanged, are written from the guest mapping itself (the
//! iovecs point inside it, and nothing is counted as copied), and every
//! buffer completes with the status the spec gives it: OK on ack, CANCELLED
//! on flush, NO_CLIENT when the client goes away (spec DEV-DATA, WIRE).

use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mediaredir_proto::codec::Codec;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{self, Message, SampleHeader};
use test_support::{TempDir, scratch};
use vhost_user_mediaredir::chain::Segment;
use vhost_user_mediaredir::counters::Counters;
use vhost_user_mediaredir::guest_buffer::{CompletionTarget, GuestBuffer, is_in_guest_memory};
use vhost_user_mediaredir::uplink::socket::{ListenAddr, SocketUplink};
use vhost_user_mediaredir::uplink::{ClientEvents, Uplink};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

mod common;
use common::{Events, Ring, sample};

struct Setup {
    _dir: TempDir,
    uplink: SocketUplink,
    /// Held: the uplink only has a weak reference.
    events: Arc<dyn ClientEvents>,
    seen: Receiver<&'static str>,
    mem: Arc<GuestMemoryMmap>,
    ring: Arc<Ring>,
    counters: Arc<Counters>,
    path: std::path::PathBuf,
}

fn setup(tag: &str) -> Setup {
    let (events, seen) = Events::new();
    setup_with(tag, Arc::new(events), seen)
}

/// A setup whose client events go to `events`, which reports on `seen`.
fn setup_with(tag: &str, events: Arc<dyn ClientEvents>, seen: Receiver<&'static str>) -> Setup {
    let dir = scratch(&format!("vdm-uplink-{tag}"));
    let path = dir.path().join("uplink.sock");
    let counters = Arc::new(Counters::default());
    let uplink = SocketUplink::listen(ListenAddr::Unix(path.clone()), counters.clone(), 1).unwrap();
    uplink.set_events(Arc::downgrade(&events));
    let mem = Arc::new(GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap());
    Setup {
        _dir: dir,
        uplink,
        events,
        seen,
        mem,
        ring: Arc::new(Ring::default()),
        counters,
        path,
    }
}

/// A client that says hello and forwards every frame; acks when asked.
fn client(path: &std::path::Path, ack: bool) -> (UnixStream, Receiver<(Message, Vec<u8>)>) {
    let mut stream = UnixStream::connect(path).unwrap();
    let caps = wire::Capabilities {
        codecs: vec![wire::CodecCap {
            codec: Codec::H264,
            flags: wire::CodecFlags::DECODE,
            max_width: 0,
            max_height: 0,
        }],
        sources: vec![],
        features: wire::ClientFeatures::OVERLAY,
    };
    let hello = Message::Hello(wire::Hello {
        major: 1,
        minor: 0,
        name: "t".into(),
        caps,
    });
    stream
        .write_all(&wire::encode_frame(&hello, 0).unwrap())
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut acker = stream.try_clone().unwrap();
    let rx = common::pump(
        move |buf| reader.read(buf),
        move |bytes| {
            let _ = acker.write_all(bytes);
        },
        ack,
    );
    (stream, rx)
}

fn buffer(s: &Setup, head: u16, segments: &[Segment]) -> GuestBuffer {
    let target = CompletionTarget {
        ring: s.ring.clone(),
        waker: s.ring.clone(),
        counters: s.counters.clone(),
    };
    GuestBuffer::new(
        s.mem.clone(),
        head,
        segments,
        GuestAddress(0x10 + u64::from(head) * 8),
        target,
    )
    .unwrap()
}

fn status_of(s: &Setup, head: u16) -> u32 {
    s.mem
        .read_obj(GuestAddress(0x10 + u64::from(head) * 8))
        .unwrap()
}

fn wait_completions(s: &Setup, n: usize) -> Vec<(u16, u32)> {
    for _ in 0..500 {
        let done = s.ring.0.lock().unwrap().clone();
        if done.len() >= n {
            return done;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    s.ring.0.lock().unwrap().clone()
}

#[test]
fn payload_arrives_unchanged_from_guest_memory_and_acks_complete_ok() {
    let s = setup("ack");
    let pattern: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    s.mem
        .write_slice(&pattern, GuestAddress(0x10_0000))
        .unwrap();
    let (_conn, frames) = client(&s.path, true);
    assert_eq!(s.seen.recv_timeout(Duration::from_secs(5)), Ok("connected"));
    // Three segments, as a guest scatter list would give them.
    let segments = [
        Segment {
            addr: GuestAddress(0x10_0000),
            len: 1000,
        },
        Segment {
            addr: GuestAddress(0x10_0000 + 1000),
            len: 200_000,
        },
        Segment {
            addr: GuestAddress(0x10_0000 + 201_000),
            len: 99_000,
        },
    ];
    let buf = buffer(&s, 1, &segments);
    assert!(
        buf.slices()
            .iter()
            .all(|slice| is_in_guest_memory(&*s.mem, slice)),
        "iovecs point into guest memory"
    );
    s.uplink.send_sample(sample(5, 1), buf);
    let (welcome, _) = frames.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(matches!(welcome, Message::Welcome(_)));
    let (msg, payload) = frames.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(msg, Message::Sample(sample(5, 1)));
    assert!(payload == pattern, "payload bytes changed on the way");
    assert_eq!(wait_completions(&s, 1), vec![(1, 8)]);
    assert_eq!(status_of(&s, 1), Status::Ok.as_u32());
    let c = s.counters.snapshot();
    assert_eq!(c.payload_bytes, 300_000);
    assert_eq!(c.payload_bytes_copied, 0);
    // On the wire: the payload plus the welcome's and the sample's frame
    // prefixes and FlatBuffers headers (a few hundred bytes).
    assert!(
        c.wire_bytes > 300_000 && c.wire_bytes < 300_000 + 1024,
        "wire_bytes {}",
        c.wire_bytes
    );
    s.uplink.shutdown();
}

#[test]
fn cancel_and_disconnect_complete_every_held_buffer() {
    let s = setup("cancel");
    let (conn, frames) = client(&s.path, false);
    assert_eq!(s.seen.recv_timeout(Duration::from_secs(5)), Ok("connected"));
    let seg = [Segment {
        addr: GuestAddress(0x2000),
        len: 100,
    }];
    for seq in 1..=3u16 {
        s.uplink
            .send_sample(sample(7, u64::from(seq)), buffer(&s, seq, &seg));
    }
    s.uplink.send_sample(sample(8, 1), buffer(&s, 10, &seg));
    // Wait until all four samples were written (held, unacked).
    let mut samples = 0;
    while samples < 4 {
        let (msg, _) = frames.recv_timeout(Duration::from_secs(5)).unwrap();
        samples += usize::from(matches!(msg, Message::Sample(_)));
    }
    assert!(
        s.ring.0.lock().unwrap().is_empty(),
        "nothing completes before an ack"
    );
    s.uplink.cancel(7, Status::Cancelled);
    let done = wait_completions(&s, 3);
    assert_eq!(done.len(), 3);
    for head in 1..=3 {
        assert_eq!(status_of(&s, head), Status::Cancelled.as_u32());
    }
    // The client vanishes: the remaining buffer completes NO_CLIENT.
    conn.shutdown(std::net::Shutdown::Both).unwrap();
    assert_eq!(
        s.seen.recv_timeout(Duration::from_secs(20)),
        Ok("disconnected")
    );
    assert_eq!(wait_completions(&s, 4).len(), 4);
    assert_eq!(status_of(&s, 10), Status::NoClient.as_u32());
    // Without a client a sample completes at once with NO_CLIENT.
    s.uplink.send_sample(sample(8, 2), buffer(&s, 11, &seg));
    assert_eq!(status_of(&s, 11), Status::NoClient.as_u32());
    drop(s.events.clone());
    s.uplink.shutdown();
}

/// Reports connections and every client message by name on a channel; the
/// first message is held (as a busy device would hold the reader) until
/// the test releases it.
struct Holding {
    seen: Mutex<Sender<&'static str>>,
    release: Mutex<Option<Receiver<()>>>,
}

impl ClientEvents for Holding {
    fn client_connected(&self, _caps: wire::Capabilities) {
        let _ = self.seen.lock().unwrap().send("connected");
    }
    fn client_disconnected(&self) {
        let _ = self.seen.lock().unwrap().send("disconnected");
    }
    fn client_message(&self, msg: Message) {
        let _ = self.seen.lock().unwrap().send(msg.name());
        let release = self.release.lock().unwrap().take();
        if let Some(release) = release {
            let _ = release.recv_timeout(Duration::from_secs(20));
        }
    }
}

/// The client acknowledges `stream` up to `seq`, OK.
fn send_ack(conn: &mut UnixStream, stream: u32, seq: u64) {
    send_frame(
        conn,
        &Message::Ack {
            stream,
            seq,
            status: Status::Ok,
        },
    );
}

/// Sends `sample` of `head` and waits until the client has it.
fn deliver(s: &Setup, frames: &Receiver<(Message, Vec<u8>)>, sample: SampleHeader, head: u16) {
    let seg = [Segment {
        addr: GuestAddress(0x2000),
        len: 100,
    }];
    s.uplink.send_sample(sample.clone(), buffer(s, head, &seg));
    let (sent, _) = frames
        .iter()
        .find(|(m, _)| matches!(m, Message::Sample(_)))
        .expect("the sample reaches the client");
    assert_eq!(sent, Message::Sample(sample));
}

fn send_frame(conn: &mut UnixStream, msg: &Message) {
    conn.write_all(&wire::encode_frame(msg, 0).unwrap())
        .unwrap();
}

/// A client that acknowledges its last sample, reports the end of its
/// stream and closes at once: the daemon handles all of it before the
/// disconnection, even when a write notices the closed connection while
/// the reader is still busy with an earlier message. (It used to end the
/// connection from the failed write: the `EndOfStream` still unread was
/// dropped and the acknowledged buffer completed `NO_CLIENT`.)
#[test]
fn what_the_client_sent_before_closing_is_handled_before_the_disconnect() {
    let (seen_tx, seen) = mpsc::channel();
    let (release, held) = mpsc::channel();
    let holding = Arc::new(Holding {
        seen: Mutex::new(seen_tx),
        release: Mutex::new(Some(held)),
    });
    let s = setup_with("eos-close", holding, seen);
    let (mut conn, frames) = client(&s.path, false);
    assert_eq!(s.seen.recv_timeout(Duration::from_secs(5)), Ok("connected"));
    deliver(&s, &frames, sample(7, 1), 1);
    // The client's last words, then it closes.
    send_frame(
        &mut conn,
        &Message::Qos {
            stream: 7,
            rendered: 1,
            dropped: 0,
            jitter_ns: 0,
        },
    );
    send_ack(&mut conn, 7, 1);
    send_frame(&mut conn, &Message::EndOfStream { stream: 7 });
    conn.shutdown(std::net::Shutdown::Both).unwrap();
    // The reader is held in the first message; a write fails meanwhile.
    assert_eq!(s.seen.recv_timeout(Duration::from_secs(5)), Ok("Qos"));
    s.uplink.send(Message::Ping { nonce: 9 });
    for _ in 0..500 {
        if s.counters.snapshot().uplink_errors > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(s.counters.snapshot().uplink_errors, 1, "the write failed");
    release.send(()).unwrap();
    let rest: Vec<&str> = (0..2)
        .map_while(|_| s.seen.recv_timeout(Duration::from_secs(5)).ok())
        .collect();
    assert_eq!(rest, ["EndOfStream", "disconnected"]);
    assert_eq!(wait_completions(&s, 1).len(), 1);
    assert_eq!(
        status_of(&s, 1),
        Status::Ok.as_u32(),
        "the acknowledged buffer completes OK, not NO_CLIENT"
    );
    s.uplink.shutdown();
}

/// The guest destroys a stream while the client's ack of its last sample
/// is on the way: the late ack is the client's answer, not a protocol
/// violation, and the connection stays; an ack for a stream never
/// announced to the client still ends it (spec DEV-SEC-7).
#[test]
fn a_late_ack_for_a_destroyed_stream_keeps_the_connection() {
    let s = setup("late-ack");
    let (mut conn, frames) = client(&s.path, false);
    assert_eq!(s.seen.recv_timeout(Duration::from_secs(5)), Ok("connected"));
    deliver(&s, &frames, sample(7, 1), 1);
    s.uplink.forget(7);
    // The writer may still be between writing the sample and booking it:
    // then it, not `forget`, completes it.
    assert_eq!(wait_completions(&s, 1).len(), 1);
    assert_eq!(status_of(&s, 1), Status::Cancelled.as_u32());
    send_ack(&mut conn, 7, 1);
    // Still connected: the next stream's sample goes out and completes.
    deliver(&s, &frames, sample(8, 1), 2);
    send_ack(&mut conn, 8, 1);
    assert_eq!(wait_completions(&s, 2).len(), 2);
    assert_eq!(status_of(&s, 2), Status::Ok.as_u32());
    // A stream it never heard of: a protocol violation.
    send_ack(&mut conn, 99, 1);
    assert_eq!(
        s.seen.recv_timeout(Duration::from_secs(20)),
        Ok("disconnected")
    );
    s.uplink.shutdown();
}

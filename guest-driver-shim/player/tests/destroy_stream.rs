//! `destroy_stream` against a scripted broker: the broker may give a
//! queued buffer back (`COMPLETE`) before it answers the destroy, as the
//! real one does when the device cancels the buffer first. The player then
//! already holds that completion when it waits for its buffers to free the
//! pool, and must not wait on the socket for it.

use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use mediaredir_player::seqpacket::{Received, SeqpacketConn, SeqpacketListener};
use mediaredir_player::{BufferInfo, MediaRedir};
use mediaredir_proto::broker::{BROKER_VERSION, BrokerMessage, MAX_MESSAGE, Sender};
use mediaredir_proto::control::ResponseHeader;
use mediaredir_proto::status::Status;

const STREAM: u32 = 7;
const POOL: u32 = 1;

/// Reads the next client message.
fn next(conn: &SeqpacketConn) -> (u32, BrokerMessage) {
    let mut buf = vec![0; MAX_MESSAGE];
    let Received::Packet { len, .. } = conn.recv(&mut buf).expect("recv") else {
        panic!("the player closed");
    };
    BrokerMessage::decode(&buf[..len], Sender::Client).expect("a client message")
}

fn send(conn: &SeqpacketConn, tag: u32, message: &BrokerMessage) {
    conn.send(&message.encode(tag), None).expect("send");
}

/// Plays the broker for one connection: a pool, one queued buffer, and a
/// destroy answered after the buffer's `COMPLETE`. Returns the message
/// that followed the destroy's answer.
fn broker(listener: &SeqpacketListener) -> BrokerMessage {
    let conn = listener.accept().expect("accept");
    conn.set_nonblocking(false).expect("blocking");
    let (tag, hello) = next(&conn);
    assert!(matches!(hello, BrokerMessage::Hello { .. }));
    let reply = BrokerMessage::HelloReply {
        version: BROKER_VERSION,
        generation: 1,
    };
    send(&conn, tag, &reply);

    let (tag, create) = next(&conn);
    let BrokerMessage::PoolCreate { size } = create else {
        panic!("expected POOL_CREATE, got {create:?}");
    };
    let size = size.next_multiple_of(4096);
    let memfd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC).expect("memfd");
    rustix::fs::ftruncate(&memfd, size).expect("ftruncate");
    let reply = BrokerMessage::PoolCreateReply {
        pool_id: POOL,
        size,
    };
    conn.send(&reply.encode(tag), Some(memfd.as_fd()))
        .expect("send the pool");

    let (queued, queue) = next(&conn);
    assert!(matches!(queue, BrokerMessage::Queue { pool_id: POOL, .. }));

    let (tag, control) = next(&conn);
    assert!(matches!(control, BrokerMessage::Control(_)));
    // The buffer comes back first, then the answer.
    let complete = BrokerMessage::Complete {
        status: Status::Cancelled,
    };
    send(&conn, queued, &complete);
    let header = ResponseHeader {
        status: Status::Ok,
        id: STREAM,
    };
    send(
        &conn,
        tag,
        &BrokerMessage::ControlReply(header.to_bytes().to_vec()),
    );

    let (tag, after) = next(&conn);
    send(&conn, tag, &BrokerMessage::Status { status: Status::Ok });
    after
}

#[test]
fn a_completion_read_before_the_destroy_answer_frees_the_pool_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broker.sock");
    let listener = SeqpacketListener::bind(&path, 0o600).expect("bind");
    let broker = thread::spawn(move || broker(&listener));

    let mut redir = MediaRedir::open(&path).expect("open");
    // Long enough that a wait for nothing shows as a hang, not a failure.
    redir.set_timeout(Duration::from_secs(30));
    assert_eq!(redir.request_buffers(STREAM, 2, 64).expect("REQBUFS"), 2);
    redir.buffer_mut(STREAM, 0).expect("buffer 0")[..4].copy_from_slice(b"data");
    let info = BufferInfo {
        bytes_used: 4,
        ..BufferInfo::default()
    };
    redir.queue_buffer(STREAM, 0, &info).expect("QBUF");

    let started = Instant::now();
    redir.destroy_stream(STREAM).expect("destroy");
    // A hang check: the completion is already here, nothing to wait for
    // (before the fix this took the whole 30 s timeout).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "destroy_stream waited {:?} for a completion it had",
        started.elapsed()
    );
    let after = broker.join().expect("the broker thread");
    assert_eq!(after, BrokerMessage::PoolDestroy { pool_id: POOL });
}

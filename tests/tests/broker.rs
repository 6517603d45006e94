//! The guest broker (spec §9) and the V4L2-style player API, against the
//! real daemon: several players at once, each confined to what it created
//! (BRK-3, BRK-4), payloads queued in place from shared pools and forwarded
//! unchanged, clean-up when a player goes (BRK-5), every malformed
//! message answered with its status without disturbing others (BRK-2), and
//! a `CALL_CREATE` waiting for the client's SDP holding up no other player
//! (the broker never waits for the device).

use std::time::{Duration, Instant};

use conformance_tests::client::{AckPolicy, TestClient, decode_everything};
use conformance_tests::rig::{Rig, connected_player, video};
use guest_driver_shim::broker::BrokerThread;
use mediaredir_player::seqpacket::{Received, SeqpacketConn, wait_readable};
use mediaredir_player::{BufferInfo, MediaRedir, PlayerError};
use mediaredir_proto::broker::{BrokerMessage, MAX_MESSAGE, Sender, kind};
use mediaredir_proto::control::{ControlRequest, Request, ResponseHeader};
use mediaredir_proto::data::{DataHeader, FLAG_KEYFRAME};
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{ClientFeatures, Message};

/// A daemon, a client on its uplink, and a broker in this process.
struct Stack {
    rig: Rig,
    client: TestClient,
    broker: BrokerThread,
    socket: std::path::PathBuf,
}

fn stack(tag: &str, extra: &[&str]) -> Stack {
    stack_acking(tag, extra, AckPolicy::Immediate)
}

fn stack_acking(tag: &str, extra: &[&str], ack: AckPolicy) -> Stack {
    stack_with(tag, extra, |rig| rig.client(ack))
}

/// A stack whose client is `client(&rig)`.
fn stack_with(tag: &str, extra: &[&str], client: impl FnOnce(&Rig) -> TestClient) -> Stack {
    let rig = Rig::start(tag, extra);
    let client = client(&rig);
    let (broker, socket) = rig.broker();
    Stack {
        rig,
        client,
        broker,
        socket,
    }
}

fn player(stack: &Stack) -> MediaRedir {
    connected_player(&stack.socket)
}

fn status(e: PlayerError) -> Status {
    e.status()
        .unwrap_or_else(|| panic!("expected a status, got {e}"))
}

#[test]
fn players_fill_shared_buffers_in_place_and_the_client_gets_the_bytes() {
    let s = stack("broker-data", &[]);
    let mut p = player(&s);
    let caps = p.query_caps().expect("caps");
    assert!(!caps.codecs.is_empty(), "the client's codecs are reported");
    p.try_format(&video(0)).expect("the client decodes H.264");
    let pres = p.create_presentation(false).expect("presentation");
    let stream = p.create_stream(pres, &video(0)).expect("stream");
    assert_eq!(p.request_buffers(stream, 4, 1000).expect("buffers"), 4);
    let (count, size) = p.buffer_layout(stream).expect("layout");
    assert_eq!((count, size), (4, 1024), "slots rounded to 64 bytes");
    let (base, mapped) = p.pool_mapping(stream).expect("mapping");
    p.play(pres).expect("play");
    let mut sent = Vec::new();
    for i in 0..10u32 {
        let index = i % 4;
        if i >= 4 {
            let done = p.dequeue_buffer(stream).expect("a buffer comes back");
            assert_eq!(done.status, Status::Ok);
            assert_eq!(done.index, index, "buffers come back in order");
        }
        let payload: Vec<u8> = (0..(100 + i * 37))
            .map(|b| (b ^ i).to_le_bytes()[0])
            .collect();
        let buffer = p.buffer_mut(stream, index).expect("the player holds it");
        let at = buffer.as_ptr() as usize - base as usize;
        assert!(at + payload.len() <= mapped, "the buffer lies in the pool");
        buffer[..payload.len()].copy_from_slice(&payload);
        p.queue_buffer(
            stream,
            index,
            &BufferInfo {
                bytes_used: u32::try_from(payload.len()).expect("small"),
                pts: Some(u64::from(i) * 33_000_000),
                flags: FLAG_KEYFRAME,
                ..BufferInfo::default()
            },
        )
        .expect("queued");
        assert!(
            p.buffer_mut(stream, index).is_none(),
            "a queued buffer is the device's"
        );
        sent.push(payload);
    }
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let (frame, _) = s
            .client
            .wait_for(Duration::from_secs(10), |m| matches!(m, Message::Sample(_)));
        got.push(frame.expect("sample forwarded").payload);
    }
    assert_eq!(got, sent, "every payload forwarded unchanged and in order");
    let counters = s.rig.daemon().counters();
    assert_eq!(counters.get("payload_bytes_copied"), Some(&0));
    p.destroy_presentation(pres).expect("destroy");
    drop(s.broker);
}

#[test]
fn a_player_reaches_only_its_own_objects_and_events() {
    let s = stack("broker-isolation", &[]);
    let mut a = player(&s);
    let mut b = player(&s);
    let pres = a.create_presentation(false).expect("presentation");
    let stream = a.create_stream(pres, &video(0)).expect("stream");
    // B addresses A's presentation and stream: NO_ENTITY, nothing happens.
    assert_eq!(status(b.play(pres).unwrap_err()), Status::NoEntity);
    assert_eq!(
        status(b.set_volume(stream, 0.5, false).unwrap_err()),
        Status::NoEntity
    );
    assert_eq!(
        status(b.destroy_presentation(pres).unwrap_err()),
        Status::NoEntity
    );
    // B's own buffers cannot be queued on A's stream.
    let own = b.create_presentation(false).expect("B's presentation");
    let own_stream = b.create_stream(own, &video(1)).expect("B's stream");
    b.request_buffers(own_stream, 1, 64).expect("buffers");
    let mut raw = SeqpacketConn::connect(&s.socket).expect("raw connection");
    hello(&mut raw);
    let pool = raw_pool(&mut raw, 4096);
    let header = DataHeader {
        clip: Default::default(),
        stream_id: stream,
        generation: 0,
        flags: 0,
        payload_len: 16,
        pts: None,
        dts: None,
        duration: None,
    };
    let reply = exchange(
        &mut raw,
        9,
        &BrokerMessage::Queue {
            pool_id: pool,
            offset: 0,
            header,
        },
    );
    assert_eq!(
        reply,
        BrokerMessage::Complete {
            status: Status::NoEntity
        }
    );
    // A's events reach A only.
    a.play(pres).expect("A plays");
    a.request_buffers(stream, 2, 64).expect("buffers");
    a.queue_buffer(
        stream,
        0,
        &BufferInfo {
            flags: mediaredir_proto::data::FLAG_EOS,
            ..BufferInfo::default()
        },
    )
    .expect("EOS queued");
    // The test client reports the end of stream as the engine would.
    let (eos, _) = s.client.wait_for(
        Duration::from_secs(10),
        |m| matches!(m, Message::Sample(h) if h.stream == stream),
    );
    assert!(eos.is_some(), "EOS buffer forwarded");
    let mut client = s.client;
    client.send(&Message::EndOfStream { stream });
    let mut seen = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !seen {
        if let Some(Event::Eos { stream: id }) = a.wait_event(Duration::from_millis(200)).unwrap() {
            seen = id == stream;
        }
    }
    assert!(seen, "A gets its stream's EOS");
    b.set_nonblocking(true);
    loop {
        match b.dequeue_event() {
            Ok(Event::Eos { .. }) => panic!("B got A's EOS"),
            Ok(_) => continue,
            Err(PlayerError::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_departed_players_objects_are_destroyed() {
    // One presentation at most: a second player can create one only if
    // the broker destroyed the first player's.
    let s = stack("broker-cleanup", &["--max-presentations", "1"]);
    let mut a = player(&s);
    let pres = a.create_presentation(false).expect("presentation");
    let stream = a.create_stream(pres, &video(0)).expect("stream");
    a.request_buffers(stream, 2, 4096).expect("buffers");
    let mut b = player(&s);
    assert_eq!(
        status(b.create_presentation(false).unwrap_err()),
        Status::Limit
    );
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match b.create_presentation(false) {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(status(e), Status::Limit);
                assert!(
                    Instant::now() < deadline,
                    "A's presentation never destroyed"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Sends `message` with `tag` on a raw connection and returns the reply.
fn exchange(conn: &mut SeqpacketConn, tag: u32, message: &BrokerMessage) -> BrokerMessage {
    conn.send(&message.encode(tag), None).expect("send");
    reply(conn, tag)
}

fn reply(conn: &mut SeqpacketConn, tag: u32) -> BrokerMessage {
    conn.set_nonblocking(false).expect("blocking");
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        match conn.recv(&mut buf).expect("recv") {
            Received::Packet { len, .. } => {
                let (t, m) =
                    BrokerMessage::decode(&buf[..len], Sender::Broker).expect("valid reply");
                if matches!(m, BrokerMessage::Event(_)) {
                    continue;
                }
                assert_eq!(t, tag, "the reply echoes the tag");
                return m;
            }
            Received::Closed => panic!("the broker closed the connection"),
        }
    }
}

fn hello(conn: &mut SeqpacketConn) {
    let m = exchange(conn, 1, &BrokerMessage::Hello { version: 1 });
    assert!(
        matches!(m, BrokerMessage::HelloReply { version: 1, .. }),
        "{m:?}"
    );
}

fn raw_pool(conn: &mut SeqpacketConn, size: u64) -> u32 {
    match exchange(conn, 2, &BrokerMessage::PoolCreate { size }) {
        BrokerMessage::PoolCreateReply { pool_id, size: got } => {
            assert!(got >= size);
            pool_id
        }
        other => panic!("POOL_CREATE: {other:?}"),
    }
}

fn raw_packet(kind: u32, tag: u32, len_field: u32, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    for v in [kind, tag, len_field, 0] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(body);
    p
}

#[test]
fn malformed_messages_get_their_status_and_others_are_unaffected() {
    let s = stack("broker-malformed", &[]);
    let mut good = player(&s);
    let mut raw = SeqpacketConn::connect(&s.socket).expect("connect");
    // Anything before HELLO: BAD_STATE.
    let m = exchange(&mut raw, 5, &BrokerMessage::PoolCreate { size: 4096 });
    assert_eq!(
        m,
        BrokerMessage::Status {
            status: Status::BadState
        }
    );
    // Another protocol version: UNSUPPORTED.
    let m = exchange(&mut raw, 6, &BrokerMessage::Hello { version: 2 });
    assert_eq!(
        m,
        BrokerMessage::Status {
            status: Status::Unsupported
        }
    );
    hello(&mut raw);
    // Unknown type, wrong length, a broker-only type, an oversized packet.
    raw.send(&raw_packet(77, 7, 0, &[]), None).unwrap();
    assert_eq!(
        reply(&mut raw, 7),
        BrokerMessage::Status {
            status: Status::UnknownRequest
        }
    );
    raw.send(&raw_packet(kind::POOL_CREATE, 8, 4, &[0; 8]), None)
        .unwrap();
    assert_eq!(
        reply(&mut raw, 8),
        BrokerMessage::Status {
            status: Status::Invalid
        }
    );
    raw.send(&raw_packet(kind::COMPLETE, 9, 8, &[0; 8]), None)
        .unwrap();
    assert!(matches!(reply(&mut raw, 9), BrokerMessage::Status { .. }));
    raw.send(&vec![0u8; MAX_MESSAGE + 100], None).unwrap();
    assert_eq!(
        reply(&mut raw, 0),
        BrokerMessage::Status {
            status: Status::Invalid
        }
    );
    // Pools: size 0, over the per-client limit.
    let m = exchange(&mut raw, 10, &BrokerMessage::PoolCreate { size: 0 });
    assert_eq!(
        m,
        BrokerMessage::Status {
            status: Status::Invalid
        }
    );
    let m = exchange(&mut raw, 11, &BrokerMessage::PoolCreate { size: 1 << 40 });
    assert_eq!(
        m,
        BrokerMessage::Status {
            status: Status::Limit
        }
    );
    // A control request that does not decode: its status in a CONTROL reply.
    let m = exchange(&mut raw, 12, &BrokerMessage::Control(vec![1, 2, 3]));
    assert!(matches!(m, BrokerMessage::ControlReply(_)), "{m:?}");
    // A QUEUE outside its pool, and into a pool that does not exist.
    let pres = match exchange(
        &mut raw,
        13,
        &BrokerMessage::Control(
            ControlRequest {
                generation: 0,
                target: 0,
                request: Request::PresCreate { live: false },
            }
            .encode(),
        ),
    ) {
        BrokerMessage::ControlReply(bytes) => u32::from_le_bytes(bytes[4..8].try_into().unwrap()),
        other => panic!("{other:?}"),
    };
    let stream = match exchange(
        &mut raw,
        14,
        &BrokerMessage::Control(
            ControlRequest {
                generation: 0,
                target: pres,
                request: Request::StreamCreate(video(0)),
            }
            .encode(),
        ),
    ) {
        BrokerMessage::ControlReply(bytes) => u32::from_le_bytes(bytes[4..8].try_into().unwrap()),
        other => panic!("{other:?}"),
    };
    let pool = raw_pool(&mut raw, 4096);
    let header = |len| DataHeader {
        clip: Default::default(),
        stream_id: stream,
        generation: 0,
        flags: 0,
        payload_len: len,
        pts: None,
        dts: None,
        duration: None,
    };
    for (tag, pool_id, offset, len) in [
        (20, pool, 0, 1 << 22),
        (21, pool, u64::MAX - 8, 64),
        (22, pool + 100, 0, 16),
    ] {
        let m = exchange(
            &mut raw,
            tag,
            &BrokerMessage::Queue {
                pool_id,
                offset,
                header: header(len),
            },
        );
        let want = if pool_id == pool {
            Status::Invalid
        } else {
            Status::NoEntity
        };
        assert_eq!(m, BrokerMessage::Complete { status: want }, "QUEUE {tag}");
    }
    // Destroying a pool that does not exist; then the real one.
    let m = exchange(
        &mut raw,
        30,
        &BrokerMessage::PoolDestroy {
            pool_id: pool + 100,
        },
    );
    assert_eq!(
        m,
        BrokerMessage::Status {
            status: Status::NoEntity
        }
    );
    let m = exchange(&mut raw, 31, &BrokerMessage::PoolDestroy { pool_id: pool });
    assert_eq!(m, BrokerMessage::Status { status: Status::Ok });
    // The well-behaved player never noticed.
    assert!(good.query_caps().expect("caps").client_connected);
    assert!(s.broker.is_running());
}

#[test]
fn non_blocking_players_poll_the_fd() {
    let s = stack("broker-poll", &[]);
    let mut p = player(&s);
    p.set_nonblocking(true);
    let pres = p.create_presentation(false).expect("presentation");
    let stream = p.create_stream(pres, &video(0)).expect("stream");
    p.request_buffers(stream, 2, 64).expect("buffers");
    assert!(
        matches!(p.dequeue_buffer(stream), Err(PlayerError::Usage(_))),
        "none queued"
    );
    p.play(pres).expect("play");
    p.buffer_mut(stream, 0).expect("held")[..4].copy_from_slice(b"data");
    p.queue_buffer(
        stream,
        0,
        &BufferInfo {
            bytes_used: 4,
            flags: FLAG_KEYFRAME,
            ..BufferInfo::default()
        },
    )
    .expect("queued");
    let deadline = Instant::now() + Duration::from_secs(10);
    let done = loop {
        match p.dequeue_buffer(stream) {
            Ok(done) => break done,
            Err(PlayerError::WouldBlock) => {
                assert!(Instant::now() < deadline, "the buffer never came back");
                let _ = wait_readable(&p, Duration::from_secs(1));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!((done.index, done.status), (0, Status::Ok));
    assert!(matches!(
        p.dequeue_event(),
        Err(PlayerError::WouldBlock) | Ok(_)
    ));
}

#[test]
fn a_player_recovers_after_the_broker_resets_the_device() {
    // The client never acks: the buffers are still in flight at the reset
    // (and no ack for a stream of the old instance reaches the daemon).
    let s = stack_acking("broker-reset", &[], AckPolicy::Never);
    let mut p = player(&s);
    let first = p.hello().expect("hello");
    let pres = p.create_presentation(false).expect("presentation");
    let stream = p.create_stream(pres, &video(0)).expect("stream");
    p.request_buffers(stream, 4, 1000).expect("buffers");
    p.play(pres).expect("play");
    for index in 0..2 {
        p.buffer_mut(stream, index).expect("held")[..4].copy_from_slice(b"abcd");
        let info = BufferInfo {
            bytes_used: 4,
            flags: FLAG_KEYFRAME,
            ..BufferInfo::default()
        };
        p.queue_buffer(stream, index, &info).expect("queued");
    }
    let reset = s.broker.reset_handle();
    reset.request();
    assert_eq!(reset.asked(), 1);
    let started = Instant::now();
    loop {
        match p.wait_event(Duration::from_secs(10)).expect("events") {
            Some(Event::DeviceStarted) => break,
            Some(_) => {}
            None => panic!("no DEVICE_STARTED after the reset"),
        }
    }
    let done = p.dequeue_buffer(stream).expect("a buffer comes back");
    assert_eq!(done.status, Status::Stale, "in flight at the reset");
    let e = p.create_presentation(false).expect_err("stale until HELLO");
    assert_eq!(status(e), Status::Stale);
    let generation = p.recover(Duration::from_secs(20)).expect("recovers");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "recovery does not wait for its timeout"
    );
    assert_eq!(generation, p.generation());
    assert_ne!(generation, first, "a reset makes a new device instance");
    assert!(p.buffer_layout(stream).is_none(), "the old pools are freed");
    let pres = p.create_presentation(false).expect("a presentation again");
    let stream = p.create_stream(pres, &video(0)).expect("a stream again");
    assert_eq!(p.request_buffers(stream, 4, 1000).expect("buffers"), 4);
    p.destroy_presentation(pres).expect("destroy");
}

#[test]
fn a_call_create_waiting_for_the_client_stalls_no_other_player() {
    let s = stack_with("broker-call-wait", &[], |rig| {
        let mut caps = decode_everything();
        caps.features |= ClientFeatures::CALL;
        TestClient::connect(&rig.uplink, caps, AckPolicy::Immediate)
    });
    let mut caller = SeqpacketConn::connect(&s.socket).expect("raw connection");
    hello(&mut caller);
    let create = ControlRequest {
        generation: 0,
        target: 0,
        request: Request::CallCreate { sdp: None },
    };
    caller
        .send(&BrokerMessage::Control(create.encode()).encode(7), None)
        .expect("send");
    // The device holds CALL_CREATE until the client sends its SDP (up to
    // 10 s).
    let (got, _) = s.client.wait_for(Duration::from_secs(10), |m| {
        matches!(m, Message::CallCreate { .. })
    });
    let Some(Message::CallCreate { session, .. }) = got.map(|r| r.msg) else {
        panic!("no CallCreate reached the client");
    };
    // Meanwhile another player works as usual (a broker that waited for
    // CALL_CREATE would serve it only once the device gave up, with IO).
    let mut other = player(&s);
    let pres = other.create_presentation(false).expect("presentation");
    other.create_stream(pres, &video(0)).expect("stream");
    other.destroy_presentation(pres).expect("destroy");
    // Only now the client answers: the caller gets its session.
    let mut client = s.client;
    client.send(&Message::CallLocalSdp {
        session,
        sdp: "v=0\r\n".into(),
    });
    let BrokerMessage::ControlReply(answer) = reply(&mut caller, 7) else {
        panic!("CALL_CREATE answered with something else");
    };
    let (header, _) = ResponseHeader::decode(&answer).expect("a response header");
    assert_eq!((header.status, header.id), (Status::Ok, session));
    assert!(s.broker.is_running());
}

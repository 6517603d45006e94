//! The broker's loop never waits for the device: against the toy device,
//! a control request the device holds (slow, or never answered) leaves
//! every other player served (`HELLO`, control requests, pools and
//! `QUEUE`/`COMPLETE`), its own client's next request waits behind it
//! (answers in order), and one never answered gets `IO` after the driver's
//! timeout, after which the device is reset as before.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Daemon;
use common::toy::{GENERATION, answer, connect, device_features, toy_device};
use guest_driver_shim::broker::{BrokerOptions, BrokerThread};
use guest_driver_shim::driver::{DriverOptions, MediaDevice};
use mediaredir_player::seqpacket::{Received, SeqpacketConn};
use mediaredir_proto::broker::{BrokerMessage, MAX_MESSAGE, Sender};
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::{ControlRequest, Request, ResponseHeader, StreamFormat};
use mediaredir_proto::data::{DataHeader, FLAG_KEYFRAME};
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;
use test_support::{TempDir, scratch};

/// The toy device's controlq.
const CONTROLQ: u16 = 0;

/// A player speaking the broker protocol by hand, polling a non-blocking
/// socket so that a test can also check that nothing arrived.
struct Peer {
    conn: SeqpacketConn,
    buf: Vec<u8>,
    events: Vec<Event>,
}

impl Peer {
    fn connect(socket: &Path) -> Peer {
        let conn = SeqpacketConn::connect(socket).expect("connects");
        conn.set_nonblocking(true).expect("non-blocking");
        let mut peer = Peer {
            conn,
            buf: vec![0; MAX_MESSAGE],
            events: Vec::new(),
        };
        let hello = peer.ask(1, &BrokerMessage::Hello { version: 1 });
        assert!(
            matches!(hello, BrokerMessage::HelloReply { .. }),
            "{hello:?}"
        );
        peer
    }

    fn send(&self, tag: u32, message: &BrokerMessage) {
        self.conn.send(&message.encode(tag), None).expect("send");
    }

    /// The next reply within `within` (events are kept aside).
    fn next(&mut self, within: Duration) -> Option<(u32, BrokerMessage)> {
        let deadline = Instant::now() + within;
        loop {
            match self.conn.recv(&mut self.buf) {
                Ok(Received::Packet { len, .. }) => {
                    let (tag, m) = BrokerMessage::decode(&self.buf[..len], Sender::Broker)
                        .expect("a valid message");
                    match m {
                        BrokerMessage::Event(raw) => {
                            let (event, _) = Event::decode(&raw).expect("a valid event");
                            self.events.push(event);
                        }
                        m => return Some((tag, m)),
                    }
                }
                Ok(Received::Closed) => panic!("the broker closed the connection"),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
    }

    /// The reply to `tag`, which must come next and within 5 s.
    fn reply(&mut self, tag: u32) -> BrokerMessage {
        let (got, m) = self
            .next(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no reply to {tag} within 5 s"));
        assert_eq!(got, tag, "replies in order");
        m
    }

    fn ask(&mut self, tag: u32, message: &BrokerMessage) -> BrokerMessage {
        self.send(tag, message);
        self.reply(tag)
    }

    /// Sends a control request for `target` (the broker fills in the
    /// generation).
    fn send_control(&self, tag: u32, target: u32, request: Request) {
        let bytes = ControlRequest {
            generation: 0,
            target,
            request,
        }
        .encode();
        self.send(tag, &BrokerMessage::Control(bytes));
    }

    /// A control request's answer: status and id.
    fn control(&mut self, tag: u32, target: u32, request: Request) -> (Status, u32) {
        self.send_control(tag, target, request);
        answered(&self.reply(tag))
    }
}

fn answered(m: &BrokerMessage) -> (Status, u32) {
    let BrokerMessage::ControlReply(bytes) = m else {
        panic!("not a control reply: {m:?}");
    };
    let (h, _) = ResponseHeader::decode(bytes).expect("a response header");
    (h.status, h.id)
}

/// A toy device and a broker in front of it, with `timeout` for control
/// answers.
struct Rig {
    _dir: TempDir,
    daemon: Option<Daemon>,
    backend: common::TestBackend,
    broker: BrokerThread,
    socket: PathBuf,
}

impl Rig {
    fn start(name: &str, timeout: Duration) -> Rig {
        common::init_logging();
        let dir = scratch(&format!("gds-{name}"));
        let sock = dir.path().join("device.sock");
        let socket = dir.path().join("broker.sock");
        let backend = toy_device(device_features());
        let daemon = Daemon::spawn(&sock, backend.clone());
        let options = DriverOptions {
            timeout,
            ..DriverOptions::default()
        };
        let broker = BrokerThread::spawn(&socket, BrokerOptions::default(), move || {
            Ok(MediaDevice::new(connect(&sock), options)?)
        })
        .expect("the broker starts");
        Rig {
            _dir: dir,
            daemon: Some(daemon),
            backend,
            broker,
            socket,
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // The broker first: it drives the device.
        if let Err(e) = self.broker.join() {
            log::warn!("broker: {e}");
        }
        if let Some(daemon) = self.daemon.take() {
            daemon.kill();
        }
    }
}

/// A player that created presentation 7 and sent `PRES_PAUSE` for it
/// (tag 3), which the toy device holds until a test answers it.
fn holding(rig: &Rig) -> Peer {
    let mut peer = Peer::connect(&rig.socket);
    assert_eq!(
        peer.control(2, 0, Request::PresCreate { live: false }),
        (Status::Ok, 7)
    );
    peer.send_control(3, 7, Request::PresPause);
    peer
}

#[test]
fn a_control_request_the_device_holds_stalls_no_other_player() {
    let rig = Rig::start("broker-slow", Duration::from_secs(10));
    let mut slow = holding(&rig);
    // The same client's next request waits for it.
    slow.send_control(4, 7, Request::PresQueryPosition);

    // Meanwhile another player is served: HELLO, control requests, a
    // pool and a QUEUE with its COMPLETE.
    let started = Instant::now();
    let mut other = Peer::connect(&rig.socket);
    assert_eq!(other.control(2, 0, Request::GetCaps).0, Status::Ok);
    assert_eq!(
        other.control(3, 0, Request::PresCreate { live: false }),
        (Status::Ok, 7)
    );
    let video = StreamFormat::video(Codec::H264, 0, 640, 360, 0, 0);
    let (status, stream) = other.control(4, 7, Request::StreamCreate(video));
    assert_eq!(status, Status::Ok);
    let pool = match other.ask(5, &BrokerMessage::PoolCreate { size: 4096 }) {
        BrokerMessage::PoolCreateReply { pool_id, .. } => pool_id,
        m => panic!("POOL_CREATE: {m:?}"),
    };
    let header = DataHeader {
        clip: Default::default(),
        stream_id: stream,
        generation: 0,
        flags: FLAG_KEYFRAME,
        payload_len: 16,
        pts: Some(0),
        dts: None,
        duration: None,
    };
    let queue = BrokerMessage::Queue {
        pool_id: pool,
        offset: 0,
        header,
    };
    assert_eq!(
        other.ask(6, &queue),
        BrokerMessage::Complete { status: Status::Ok }
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "served while a request is at the device"
    );

    // The held request is still unanswered, and so is the one behind it.
    assert!(slow.next(Duration::from_millis(200)).is_none());
    assert!(rig.backend.answer_held(CONTROLQ, &answer(Status::Ok, 7)));
    assert_eq!(answered(&slow.reply(3)), (Status::Ok, 7));
    let (tag, position) = slow.next(Duration::from_secs(5)).expect("the next answer");
    assert_eq!((tag, answered(&position)), (4, (Status::Ok, 7)));
    assert!(rig.broker.is_running());
}

#[test]
fn a_control_request_never_answered_gets_io_and_the_device_is_reset() {
    let timeout = Duration::from_millis(500);
    let rig = Rig::start("broker-timeout", timeout);
    let mut other = Peer::connect(&rig.socket);
    let sent = Instant::now();
    let mut stuck = holding(&rig);
    assert_eq!(other.control(2, 0, Request::GetCaps).0, Status::Ok);
    // What a blocking wait answered: IO, after the driver's timeout.
    let (tag, reply) = stuck
        .next(timeout * 10)
        .expect("an answer after the timeout");
    assert!(sent.elapsed() >= timeout, "not before the timeout");
    assert_eq!((tag, answered(&reply)), (3, (Status::Io, 7)));
    // The device was reset: every player hears DEVICE_STARTED; the one
    // that owned objects is stale until it says HELLO again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stuck.events.contains(&Event::DeviceStarted) {
        assert!(Instant::now() < deadline, "no DEVICE_STARTED");
        assert!(stuck.next(Duration::from_millis(50)).is_none());
    }
    assert_eq!(stuck.control(4, 0, Request::GetCaps).0, Status::Stale);
    match stuck.ask(5, &BrokerMessage::Hello { version: 1 }) {
        BrokerMessage::HelloReply { generation, .. } => assert_eq!(generation, GENERATION),
        m => panic!("HELLO: {m:?}"),
    }
    assert_eq!(stuck.control(6, 0, Request::GetCaps).0, Status::Ok);
    assert_eq!(other.control(3, 0, Request::GetCaps).0, Status::Ok);
    assert!(other.events.contains(&Event::DeviceStarted));
    assert!(rig.broker.is_running());
}

#[test]
fn a_player_that_leaves_with_a_request_at_the_device_leaves_nothing_behind() {
    let rig = Rig::start("broker-leave", Duration::from_secs(10));
    let leaving = holding(&rig);
    leaving.send_control(4, 7, Request::PresPlay);
    drop(leaving);
    let mut other = Peer::connect(&rig.socket);
    assert_eq!(other.control(2, 0, Request::GetCaps).0, Status::Ok);
    // The late answer goes to nobody; the broker goes on.
    assert!(rig.backend.answer_held(CONTROLQ, &answer(Status::Ok, 7)));
    assert_eq!(other.control(3, 0, Request::GetCaps).0, Status::Ok);
    assert!(rig.broker.is_running());
}

//! `MediaDevice` end to end over vhost-user against a toy media device built
//! with `vhost-user-backend`: initialisation, control requests, events, data
//! buffers (direct and indirect), timeouts, control requests collected
//! without waiting, raw chains and reset.

mod common;

use std::time::Duration;

use common::toy::{
    GENERATION, answer, caps, config, connect, device_features, driver_options, toy_device,
    toy_device_with,
};
use common::{Daemon, STANDARD_FEATURES};
use guest_driver_shim::driver::ControlAnswer;
use guest_driver_shim::driver::{
    DriverError, FEATURE_CALL, FEATURE_CAPTURE, FEATURE_EVENT_IDX, FEATURE_INDIRECT_DESC,
    MediaDevice,
};
use guest_driver_shim::transport::Transport;
use guest_driver_shim::vhost_user::VhostUserTransport;
use guest_driver_shim::virtqueue::{RawDesc, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use mediaredir_proto::control::{ControlRequest, Request, RequestCode, ResponseHeader};
use mediaredir_proto::data::{DataHeader, FLAG_KEYFRAME};
use mediaredir_proto::device::{CONTROLQ, DeviceConfig, TXQ_BASE};
use mediaredir_proto::event::Event;
use mediaredir_proto::response::ResponseBody;
use mediaredir_proto::status::Status;
use test_support::scratch;

fn header(payload_len: u32) -> DataHeader {
    DataHeader {
        clip: Default::default(),
        stream_id: 5,
        generation: 0,
        flags: FLAG_KEYFRAME,
        payload_len,
        pts: Some(0),
        dts: None,
        duration: Some(33_333_333),
    }
}

#[test]
fn media_device_over_vhost_user() {
    common::init_logging();
    let tmp = scratch("gds-media");
    let dir = tmp.path();
    let sock = dir.join("media.sock");
    let backend = toy_device(device_features());
    let daemon = Daemon::spawn(&sock, backend.clone());
    let mut dev = MediaDevice::new(connect(&sock), driver_options()).unwrap();

    let features = dev.features().unwrap();
    assert_ne!(features & FEATURE_EVENT_IDX, 0);
    assert_ne!(features & FEATURE_INDIRECT_DESC, 0);
    assert_ne!(features & FEATURE_CAPTURE, 0);
    assert_eq!(features & FEATURE_CALL, 0, "not offered");
    assert_eq!(dev.cached_config().unwrap(), config());
    assert_eq!(dev.config().unwrap(), config());

    // Control requests.
    let (hdr, body) = dev.control(Request::GetCaps, 0).unwrap();
    assert_eq!(hdr.status, Status::Ok);
    assert_eq!(body, ResponseBody::Caps(caps()));
    let (hdr, _) = dev.control(Request::PresCreate { live: false }, 0).unwrap();
    assert_eq!((hdr.status, hdr.id), (Status::Ok, 7));
    let (_, body) = dev.control(Request::PresQueryPosition, 7).unwrap();
    assert!(matches!(body, ResponseBody::Position(p) if p.position_ns == 1_000_000));
    let raw = dev.control_raw(&[1, 2, 3], 16).unwrap();
    assert_eq!(raw.used_len, 16);
    assert_eq!(
        ResponseHeader::decode(&raw.bytes).unwrap().0.status,
        Status::Invalid
    );

    // A request the device never answers times out; the next one works
    // and the held chain stays reserved.
    match dev.control(Request::PresPause, 7) {
        Err(DriverError::Timeout { queue: 0, .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    let (hdr, _) = dev.control(Request::PresPlay, 7).unwrap();
    assert_eq!((hdr.status, hdr.id), (Status::Ok, 7));

    // Events: more than there are posted buffers, so buffers are reposted.
    assert_eq!(dev.next_event(Duration::from_millis(50)).unwrap(), None);
    for i in 0..100u64 {
        let event = Event::Position {
            presentation: 7,
            position_ns: i,
            buffered_ns: 0,
        };
        backend.push_event(event.encode(GENERATION).to_vec());
        let got = dev.next_event(Duration::from_secs(2)).unwrap();
        assert_eq!(got, Some((event, GENERATION)));
    }
    backend.push_event(Event::ClientDisconnected.encode(GENERATION).to_vec());
    assert_eq!(
        dev.next_event(Duration::from_secs(2)).unwrap(),
        Some((Event::ClientDisconnected, GENERATION))
    );

    // Data: copied payload (direct or indirect), payload in place in
    // several segments, and a bad header.
    let t1 = dev.submit_data_copy(0, &header(0), &[0xab; 1000]).unwrap();
    let done = dev
        .wait_data_completions(0, Duration::from_secs(2))
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].token, t1);
    assert_eq!(done[0].status, Ok(Status::Ok));
    assert_eq!(done[0].used_len, 8);

    let pool = dev.dma().alloc(4096, 4096).unwrap();
    pool.write_at(0, &[7; 4096]).unwrap();
    let segments: Vec<_> = (0..4)
        .map(|i| pool.segment(i * 1024, 1024).unwrap())
        .collect();
    let t2 = dev.submit_data(1, &header(4096), &segments).unwrap();
    let t3 = dev.submit_data(1, &header(100), &segments).unwrap();
    let mut done = Vec::new();
    while done.len() < 2 {
        let more = dev
            .wait_data_completions(1, Duration::from_secs(2))
            .unwrap();
        assert!(!more.is_empty(), "completions within 2 s");
        done.extend(more);
    }
    done.sort_by_key(|c| c.token);
    assert_eq!(
        (done[0].token, done[0].status.clone()),
        (t2, Ok(Status::Ok))
    );
    assert_eq!(
        (done[1].token, done[1].status.clone()),
        (t3, Ok(Status::Invalid))
    );
    assert_eq!(dev.data_in_flight(1).unwrap(), 0);
    assert!(matches!(
        dev.submit_data_copy(2, &header(1), &[1]),
        Err(DriverError::NoSuchTxq(2))
    ));

    // Raw chain on txq 0: header and status written by hand.
    let mem = dev.dma().clone();
    let hdr_buf = mem.alloc(64, 16).unwrap();
    let mut good = header(0);
    good.generation = GENERATION;
    good.flags |= mediaredir_proto::data::FLAG_EOS;
    hdr_buf.write_at(0, &good.to_bytes()).unwrap();
    let vq = dev.queue_mut(TXQ_BASE).unwrap();
    let first = vq.find_free_run(2).unwrap();
    let descs = [
        RawDesc {
            addr: hdr_buf.gpa(),
            len: 48,
            flags: VIRTQ_DESC_F_NEXT,
            next: first + 1,
        },
        RawDesc {
            addr: hdr_buf.gpa() + 48,
            len: 8,
            flags: VIRTQ_DESC_F_WRITE,
            next: 0,
        },
    ];
    let head = vq.add_raw_descriptors(first, &descs, first).unwrap();
    dev.kick(TXQ_BASE).unwrap();
    let used = dev
        .wait_used(TXQ_BASE, Duration::from_secs(2))
        .unwrap()
        .unwrap();
    assert_eq!((used.head, used.len), (head, 8));
    assert_eq!(hdr_buf.read_vec(48, 4).unwrap(), vec![0, 0, 0, 0]);

    // Reset and start again.
    dev.reset().unwrap();
    let (hdr, _) = dev.control(Request::GetCaps, 0).unwrap();
    assert_eq!(hdr.status, Status::Ok);
    // An event type this driver does not know (a newer device's) is
    // skipped, not an error (spec DRV-EVT-2).
    let mut unknown = Event::ClientDisconnected.encode(GENERATION);
    unknown[0] = 0x7f;
    backend.push_event(unknown.to_vec());
    backend.push_event(Event::Eos { stream: 5 }.encode(GENERATION).to_vec());
    assert_eq!(
        dev.next_event(Duration::from_secs(2)).unwrap(),
        Some((Event::Eos { stream: 5 }, GENERATION))
    );

    drop(dev);
    daemon.kill();
}

#[test]
fn a_device_without_version_1_is_refused() {
    common::init_logging();
    let tmp = scratch("gds-legacy");
    let dir = tmp.path();
    let sock = dir.join("legacy.sock");
    let daemon = Daemon::spawn(&sock, toy_device(STANDARD_FEATURES & !(1 << 32)));
    match MediaDevice::new(connect(&sock), driver_options()) {
        Err(DriverError::Features(_)) => {}
        other => panic!("expected a feature error, got {other:?}"),
    }
    daemon.kill();
}

#[test]
fn daemon_restart_reconnect_and_reset() {
    common::init_logging();
    let tmp = scratch("gds-media-restart");
    let dir = tmp.path();
    let sock = dir.join("media.sock");
    let first = Daemon::spawn(&sock, toy_device(device_features()));
    let mut dev = MediaDevice::new(connect(&sock), driver_options()).unwrap();
    assert!(
        dev.transport()
            .protocol_features()
            .contains(vhost::vhost_user::message::VhostUserProtocolFeatures::BACKEND_REQ)
    );
    let (hdr, _) = dev.control(Request::GetCaps, 0).unwrap();
    assert_eq!(hdr.status, Status::Ok);
    first.kill();
    // The daemon is gone: the next request fails fast (no hang).
    match dev.control(Request::GetCaps, 0) {
        Err(DriverError::Transport(_)) | Err(DriverError::Timeout { .. }) => {}
        other => panic!("expected a transport error, got {other:?}"),
    }
    let restarted = DeviceConfig {
        generation: GENERATION + 1,
        ..config()
    };
    let second = Daemon::spawn(&sock, toy_device_with(device_features(), restarted));
    dev.transport_mut().reconnect().unwrap();
    dev.reset().unwrap();
    assert_eq!(dev.generation().unwrap(), GENERATION + 1);
    let (hdr, _) = dev.control(Request::PresCreate { live: true }, 0).unwrap();
    assert_eq!((hdr.status, hdr.id), (Status::Ok, 7));
    let t = dev.submit_data_copy(1, &header(0), &[1; 10]).unwrap();
    let done = dev
        .wait_data_completions(1, Duration::from_secs(2))
        .unwrap();
    assert_eq!((done[0].token, done[0].status.clone()), (t, Ok(Status::Ok)));
    drop(dev);
    second.kill();
}

/// Answers collected by polling until one arrives (at most 2 s).
fn wait_answers(dev: &mut MediaDevice<VhostUserTransport>) -> Vec<ControlAnswer> {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let answers = dev.poll_control_answers().unwrap();
        if !answers.is_empty() || std::time::Instant::now() >= deadline {
            return answers;
        }
        dev.transport_mut()
            .wait_used(CONTROLQ, Duration::from_millis(50))
            .unwrap();
    }
}

#[test]
fn control_requests_are_collected_without_waiting() {
    common::init_logging();
    let tmp = scratch("gds-media-async");
    let sock = tmp.path().join("media.sock");
    let backend = toy_device(device_features());
    let daemon = Daemon::spawn(&sock, backend.clone());
    let mut dev = MediaDevice::new(connect(&sock), driver_options()).unwrap();
    let encode = |request: Request, target: u32| {
        ControlRequest {
            generation: GENERATION,
            target,
            request,
        }
        .encode()
    };
    let capacity = dev.response_capacity(RequestCode::GetCaps).unwrap();
    // The device holds PRES_PAUSE: the request after it is answered first.
    let held = dev
        .submit_control(&encode(Request::PresPause, 7), 16)
        .unwrap();
    let caps_token = dev
        .submit_control(&encode(Request::GetCaps, 0), capacity)
        .unwrap();
    let answers = wait_answers(&mut dev);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].token, caps_token);
    let bytes = &answers[0].response.as_ref().unwrap().bytes;
    assert_eq!(ResponseHeader::decode(bytes).unwrap().0.status, Status::Ok);
    // Answered late, it still reaches whoever polls.
    assert!(backend.answer_held(CONTROLQ, &answer(Status::Ok, 7)));
    let answers = wait_answers(&mut dev);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].token, held);
    // An abandoned request's late answer is dropped; its chain was kept
    // until the device returned it, and the blocking wait still works.
    let abandoned = dev
        .submit_control(&encode(Request::PresPause, 7), 16)
        .unwrap();
    let pending = dev.queue_mut(CONTROLQ).unwrap().in_flight();
    dev.abandon_control(abandoned);
    assert_eq!(dev.queue_mut(CONTROLQ).unwrap().in_flight(), pending);
    assert!(backend.answer_held(CONTROLQ, &answer(Status::Ok, 7)));
    let (hdr, _) = dev.control(Request::GetCaps, 0).unwrap();
    assert_eq!(hdr.status, Status::Ok);
    assert!(dev.poll_control_answers().unwrap().is_empty());
    assert_eq!(dev.queue_mut(CONTROLQ).unwrap().in_flight(), 0);
    drop(dev);
    daemon.kill();
}

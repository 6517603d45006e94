//! Call media sessions (spec 7.12) from the driver's side, with a
//! wire-protocol client playing the client engine: CALL_CREATE answered
//! with the client's SDP once it arrives, the remote answer forwarded,
//! start/hold/DTMF/mute turned into CallControl, statistics and hang-ups
//! turned into events, and every session ended when the client goes.

use std::time::Duration;

use conformance_tests::client::{AckPolicy, TestClient, decode_everything};
use conformance_tests::rig::{
    Rig, call, expect_call_dtmf, expect_call_ended, wait_client, wait_event,
};
use mediaredir_proto::control::Request;
use mediaredir_proto::event::Event;
use mediaredir_proto::response::ResponseBody;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{self, CallAction, ClientFeatures, Message};

/// The next CallCreate the client receives: its session and remote SDP.
/// (Run on a thread: the driver's request waits for the client's answer.)
fn next_create(client: &TestClient) -> (u32, String) {
    let (create, _) = client.wait_for(Duration::from_secs(10), |m| {
        matches!(m, Message::CallCreate { .. })
    });
    let Some(Message::CallCreate {
        session,
        sdp: remote,
    }) = create.map(|r| r.msg)
    else {
        panic!("no CallCreate reached the client");
    };
    (session, remote)
}

#[test]
fn calls_through_the_device() {
    let rig = Rig::start("calls", &[]);
    let mut caps = decode_everything();
    caps.features |= ClientFeatures::CALL;
    let client = TestClient::connect(&rig.uplink, caps, AckPolicy::Immediate);
    let mut dev = rig.driver();
    wait_client(&mut dev, true);

    // The guest offers: CALL_CREATE waits for the client's offer.
    let client = std::sync::Arc::new(std::sync::Mutex::new(client));
    let answerer = {
        let client = std::sync::Arc::clone(&client);
        std::thread::spawn(move || {
            let mut c = client.lock().unwrap();
            let (session, remote) = next_create(&c);
            assert!(remote.is_empty(), "a local offer: no remote SDP");
            c.send(&Message::CallLocalSdp {
                session,
                sdp: "v=0\r\no=client 1 1 IN IP4 127.0.0.1\r\n".into(),
            });
            session
        })
    };
    let (status, id, body) = call(&mut dev, 0, Request::CallCreate { sdp: None });
    let session = answerer.join().unwrap();
    assert_eq!((status, id), (Status::Ok, session));
    assert_eq!(
        body,
        ResponseBody::CallSdp("v=0\r\no=client 1 1 IN IP4 127.0.0.1\r\n".into())
    );
    let c = client.lock().unwrap();
    let (status, _, _) = call(
        &mut dev,
        id,
        Request::CallSetRemote {
            sdp: "v=0 peer".into(),
        },
    );
    assert_eq!(status, Status::Ok);
    let (remote, _) = c.wait_for(Duration::from_secs(5), |m| {
        matches!(m, Message::CallRemoteSdp { .. })
    });
    assert!(matches!(
        remote.map(|r| r.msg),
        Some(Message::CallRemoteSdp { session, ref sdp }) if session == id && sdp == "v=0 peer"
    ));
    for (request, action) in [
        (Request::CallStart, CallAction::Start),
        (Request::CallHold { hold: true }, CallAction::Hold),
        (Request::CallHold { hold: false }, CallAction::Resume),
        (
            Request::CallDtmf {
                event: 5,
                duration_ms: 100,
            },
            CallAction::Dtmf {
                event: 5,
                duration_ms: 100,
            },
        ),
        (
            Request::CallMute {
                media: 1,
                mute: true,
            },
            CallAction::Mute(wire::MediaMask::AUDIO),
        ),
    ] {
        assert_eq!(
            call(&mut dev, id, request.clone()).0,
            Status::Ok,
            "{request:?}"
        );
        let (got, _) = c.wait_for(Duration::from_secs(5), |m| {
            matches!(m, Message::CallControl { .. })
        });
        assert!(
            matches!(got.map(|r| r.msg), Some(Message::CallControl { session, action: a }) if session == id && a == action),
            "{request:?} reaches the client as {action:?}"
        );
    }
    drop(c);

    // What the client reports becomes events and CALL_STATS answers.
    let mut c = client.lock().unwrap();
    c.send(&Message::CallStats(wire::CallStats {
        session: id,
        jitter_us: 1200,
        packets_lost: 2,
        packets_received: 700,
        rtt_us: 3000,
        mos_x100: 420,
    }));
    c.send(&Message::CallDtmfReceived {
        session: id,
        event: 9,
    });
    let (stats, _) = wait_event(&mut dev, Duration::from_secs(5), |e| {
        matches!(e, Event::CallStats { .. })
    });
    assert!(
        matches!(stats, Some(Event::CallStats { session, packets_received: 700, mos_x100: 420, .. }) if session == id)
    );
    expect_call_dtmf(&mut dev, Duration::from_secs(5), id, 9);
    let (_, _, body) = call(&mut dev, id, Request::CallStats);
    assert!(matches!(body, ResponseBody::CallStats(s) if s.rtt_us == 3000 && s.packets_lost == 2));

    // The peer hangs up.
    c.send(&Message::CallEnded {
        session: id,
        status: Status::Ok,
        reason: "BYE".into(),
    });
    expect_call_ended(&mut dev, Duration::from_secs(5), id, Status::Ok);
    assert_eq!(call(&mut dev, id, Request::CallStart).0, Status::BadState);
    assert_eq!(call(&mut dev, id, Request::CallEnd).0, Status::Ok);

    // A second call, answering an offer; then the client goes away.
    drop(c);
    let answerer = {
        let client = std::sync::Arc::clone(&client);
        std::thread::spawn(move || {
            let c = client.lock().unwrap();
            let (session, remote) = next_create(&c);
            assert_eq!(remote, "v=0 remote offer");
            drop(c);
            client.lock().unwrap().send(&Message::CallLocalSdp {
                session,
                sdp: "v=0 answer".into(),
            });
        })
    };
    let (status, second, body) = call(
        &mut dev,
        0,
        Request::CallCreate {
            sdp: Some("v=0 remote offer".into()),
        },
    );
    answerer.join().unwrap();
    assert_eq!(
        (status, body),
        (Status::Ok, ResponseBody::CallSdp("v=0 answer".into()))
    );
    assert_eq!(
        call(&mut dev, second, Request::CallStart).0,
        Status::Ok,
        "READY after an answer"
    );
    let client = std::sync::Arc::try_unwrap(client)
        .unwrap()
        .into_inner()
        .unwrap();
    client.close();
    expect_call_ended(&mut dev, Duration::from_secs(10), second, Status::NoClient);
    assert_eq!(
        call(&mut dev, 0, Request::CallCreate { sdp: None }).0,
        Status::NoClient
    );
}

//! Call media end to end through the socket uplink (spec 7.12): the guest
//! driver makes the requests, the daemon forwards them over its socket
//! uplink, the `media-client` binary runs the RTP media with an independent
//! GStreamer peer on loopback. The guest gets the client's SDP answer, the
//! peer hears the client's 440 Hz test microphone, DTMF goes both ways, the
//! client's statistics become `CALL_STATS` events, and the peer's BYE ends
//! the call with `CALL_ENDED` (`OK`).

#[path = "../../client-engine/tests/common/mod.rs"]
mod common;
mod e2e_common;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use client_engine::gst;
use client_engine::gst::prelude::*;
use common::peer::{PEER_DTMF, PEER_OPUS, PEER_VP8, Peer};
use common::tone;
use conformance_tests::rig::{
    Rig, call, expect_call_dtmf, expect_call_ended, wait_client, wait_event,
};
use e2e_common::{media_client_binary, wait_path};
use mediaredir_proto::control::Request;
use mediaredir_proto::event::Event;
use mediaredir_proto::response::ResponseBody;
use mediaredir_proto::status::Status;
use test_support::{ChildGuard, until};

#[test]
fn guest_call_runs_on_the_client_with_a_real_peer() {
    let _ = env_logger::builder().is_test(true).try_init();
    let rig = Rig::start("mc-calls-e2e", &[]);
    wait_path(&rig.uplink);
    let _client = ChildGuard::new(
        Command::new(media_client_binary())
            .args(["--connect", &format!("unix:{}", rig.uplink.display())])
            .args(["--headless", "--stats-interval", "0", "--sources", "test"])
            .args(["--call-address", "127.0.0.1"])
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start media-client"),
    );
    let mut dev = rig.driver();
    wait_client(&mut dev, true);

    // The guest has the peer's offer: CALL_CREATE answers with the
    // client's SDP.
    let peer = Peer::new(false);
    let offer = peer.sdp(PEER_OPUS, PEER_DTMF, PEER_VP8);
    let (status, id, body) = call(&mut dev, 0, Request::CallCreate { sdp: Some(offer) });
    assert_eq!(status, Status::Ok, "{body:?}");
    let ResponseBody::CallSdp(answer) = body else {
        panic!("CALL_CREATE answered {body:?}")
    };
    assert!(answer.contains("m=audio "), "{answer}");
    assert!(
        answer.contains(&format!("a=rtpmap:{PEER_OPUS} opus/48000/2")),
        "{answer}"
    );
    peer.start(&answer, (PEER_OPUS, PEER_DTMF, PEER_VP8));
    assert_eq!(call(&mut dev, id, Request::CallStart).0, Status::Ok);

    // The peer hears the client's microphone.
    assert!(
        until(20, || peer.pcm_since(0).len() > 48000 * 2),
        "peer got no audio"
    );
    assert!(tone::dominant(&peer.pcm_since(9600), 48000.0, 440.0));

    // DTMF: guest -> client -> peer, and peer -> client -> guest event.
    assert_eq!(
        call(
            &mut dev,
            id,
            Request::CallDtmf {
                event: 3,
                duration_ms: 200
            }
        )
        .0,
        Status::Ok
    );
    assert!(
        until(10, || peer.dtmf_received().contains(&3)),
        "peer got no DTMF 3"
    );
    peer.dtmf(11, 200);
    expect_call_dtmf(&mut dev, Duration::from_secs(10), id, 11);

    // The client's statistics: events, and CALL_STATS answers.
    let (stats, _) = wait_event(
        &mut dev,
        Duration::from_secs(10),
        |e| matches!(e, Event::CallStats { packets_received, .. } if *packets_received > 0),
    );
    let Some(Event::CallStats {
        session,
        jitter_us,
        packets_lost,
        mos_x100,
        ..
    }) = stats
    else {
        panic!("no CALL_STATS event with received packets")
    };
    assert_eq!(session, id);
    assert_eq!(packets_lost, 0);
    assert!(jitter_us < 50_000);
    assert!((100..=450).contains(&mos_x100));
    let (_, _, body) = call(&mut dev, id, Request::CallStats);
    assert!(
        matches!(&body, ResponseBody::CallStats(s) if s.packets_received > 0),
        "{body:?}"
    );

    // Hold: the peer stops receiving.
    assert_eq!(
        call(&mut dev, id, Request::CallHold { hold: true }).0,
        Status::Ok
    );
    std::thread::sleep(Duration::from_millis(500));
    let held = peer.rtp_in.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(peer.rtp_in.load(Ordering::Relaxed), held, "RTP while held");
    assert_eq!(
        call(&mut dev, id, Request::CallHold { hold: false }).0,
        Status::Ok
    );
    assert!(until(10, || peer.rtp_in.load(Ordering::Relaxed) > held + 20));

    // The peer hangs up: CALL_ENDED OK; the guest ends the session.
    let src = peer.audio_src.lock().unwrap().clone().unwrap();
    src.send_event(gst::event::Eos::new());
    expect_call_ended(&mut dev, Duration::from_secs(15), id, Status::Ok);
    assert_eq!(call(&mut dev, id, Request::CallEnd).0, Status::Ok);
}

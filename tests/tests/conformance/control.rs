//! Every request in every state it is legal in, and the answer to the
//! illegal ones (7.4, 7.6, 7.7).

use conformance_tests::client::AckPolicy;
use conformance_tests::rig::{Rig, audio, call, ok, video, wait_client};
use guest_driver_shim::DriverOptions;
use guest_driver_shim::driver::{DRIVER_FEATURES, FEATURE_CALL, FEATURE_CAPTURE};
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::{ControlRequest, Geometry, Rect, Request, StreamFormat, UNITY_Q16};
use mediaredir_proto::response::{PresentationState, ResponseBody};
use mediaredir_proto::status::Status;
use mediaredir_proto::time::TIME_NONE;

/// DEV-PRES-1, DEV-STRM-1/2, DEV-CTRL-2/4/5, DEV-INIT-1, DEV-CAPS-1.
#[test]
fn requests_in_each_state() {
    let rig = Rig::start(
        "states",
        &["--max-streams", "3", "--max-presentations", "2"],
    );
    let _client = rig.client(AckPolicy::Immediate);
    // Without F_CAPTURE and F_CALL, to see requests of features not
    // negotiated.
    let mut dev = rig.driver_with(DriverOptions {
        features: DRIVER_FEATURES & !FEATURE_CAPTURE & !FEATURE_CALL,
        ..DriverOptions::default()
    });
    wait_client(&mut dev, true);

    // Capabilities reflect the connected client; CHECK_FORMAT follows them.
    match call(&mut dev, 0, Request::GetCaps) {
        (Status::Ok, _, ResponseBody::Caps(caps)) => {
            assert!(caps.client_connected);
            assert_eq!(caps.codecs.len(), Codec::ALL.len());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        call(&mut dev, 0, Request::CheckFormat(video(0))).0,
        Status::Ok
    );

    // IDLE: streams may be created; the txq rules hold.
    let pres = ok(&mut dev, 0, Request::PresCreate { live: false });
    let v = ok(&mut dev, pres, Request::StreamCreate(video(0)));
    assert_eq!(
        call(&mut dev, pres, Request::StreamCreate(audio(0))).0,
        Status::Invalid,
        "txq taken"
    );
    assert_eq!(
        call(&mut dev, pres, Request::StreamCreate(audio(4))).0,
        Status::Invalid,
        "no txq 4"
    );
    let a = ok(&mut dev, pres, Request::StreamCreate(audio(1)));
    match call(&mut dev, pres, Request::PresQueryPosition) {
        (Status::Ok, _, ResponseBody::Position(p)) => {
            assert_eq!(p.state, PresentationState::Idle);
            assert_eq!(p.position_ns, TIME_NONE, "no report yet");
        }
        other => panic!("{other:?}"),
    }

    // PLAYING and PAUSED, idempotent; no new streams once played.
    ok(&mut dev, pres, Request::PresPlay);
    ok(&mut dev, pres, Request::PresPlay);
    assert_eq!(
        call(&mut dev, pres, Request::StreamCreate(audio(2))).0,
        Status::BadState
    );
    ok(&mut dev, pres, Request::PresPause);
    ok(&mut dev, pres, Request::PresPause);
    ok(
        &mut dev,
        pres,
        Request::PresFlush {
            position_ns: 2_000_000_000,
        },
    );
    ok(
        &mut dev,
        pres,
        Request::PresSetRate {
            rate_q16: 2 * UNITY_Q16,
        },
    );
    let geometry = Geometry {
        display_id: 0,
        visible: true,
        color_key: false,
        z: 1,
        dest: Rect {
            x: 100,
            y: 80,
            width: 642,
            height: 362,
        },
        source: Rect::default(),
        clip: vec![Rect {
            x: 100,
            y: 80,
            width: 300,
            height: 362,
        }],
    };
    ok(&mut dev, pres, Request::PresSetGeometry(geometry));
    ok(
        &mut dev,
        a,
        Request::StreamSetVolume {
            volume_q16: UNITY_Q16 / 2,
            mute: false,
        },
    );
    assert_eq!(
        call(
            &mut dev,
            v,
            Request::StreamSetVolume {
                volume_q16: 1,
                mute: true
            }
        )
        .0,
        Status::Invalid
    );

    // Limits.
    let other = ok(&mut dev, 0, Request::PresCreate { live: false });
    assert_eq!(
        call(&mut dev, 0, Request::PresCreate { live: false }).0,
        Status::Limit
    );
    ok(&mut dev, other, Request::StreamCreate(video(0)));
    assert_eq!(
        call(&mut dev, other, Request::StreamCreate(audio(1))).0,
        Status::Limit
    );

    // Features not negotiated are unknown requests; capture is invalid.
    assert_eq!(
        call(&mut dev, 0, Request::CallCreate { sdp: None }).0,
        Status::UnknownRequest
    );
    assert_eq!(
        call(&mut dev, 0, Request::EnumSources).0,
        Status::UnknownRequest
    );
    let capture = StreamFormat {
        direction: mediaredir_proto::control::Direction::Capture,
        txq: 0,
        source_id: 1,
        ..audio(0)
    };
    assert_eq!(
        call(&mut dev, other, Request::StreamCreate(capture)).0,
        Status::Invalid
    );

    // Destruction, then NO_ENTITY for everything that named the objects.
    ok(&mut dev, v, Request::StreamDestroy);
    assert_eq!(
        call(&mut dev, v, Request::StreamDestroy).0,
        Status::NoEntity
    );
    ok(&mut dev, pres, Request::PresDestroy);
    for request in [
        Request::PresPlay,
        Request::PresPause,
        Request::PresQueryPosition,
        Request::PresDestroy,
    ] {
        assert_eq!(call(&mut dev, pres, request).0, Status::NoEntity);
    }
    assert_eq!(
        call(&mut dev, a, Request::StreamDestroy).0,
        Status::NoEntity,
        "destroyed with its presentation"
    );
}

/// DEV-CAPS-1: without a client, capabilities are empty and requests that
/// need one answer NO_CLIENT.
#[test]
fn without_a_client() {
    let rig = Rig::start("noclient", &[]);
    let mut dev = rig.driver();
    match call(&mut dev, 0, Request::GetCaps) {
        (Status::Ok, _, ResponseBody::Caps(caps)) => {
            assert!(!caps.client_connected && caps.codecs.is_empty())
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        call(&mut dev, 0, Request::CheckFormat(video(0))).0,
        Status::NoClient
    );
    let pres = ok(&mut dev, 0, Request::PresCreate { live: false });
    assert_eq!(
        call(&mut dev, pres, Request::StreamCreate(video(0))).0,
        Status::NoClient
    );
    assert_eq!(
        call(&mut dev, pres, Request::PresQueryPosition).0,
        Status::NoClient
    );
}

/// DEV-RST-1: a request carrying another generation is STALE, before any
/// other check.
#[test]
fn stale_generation_first() {
    let rig = Rig::start("stale", &[]);
    let mut dev = rig.driver();
    let generation = dev.config().unwrap().generation;
    let mut bytes = ControlRequest {
        generation: generation.wrapping_add(1),
        target: 0,
        request: Request::GetCaps,
    }
    .encode();
    let answer = dev.control_raw(&bytes, 64).unwrap();
    assert_eq!(&answer.bytes[..4], &Status::Stale.as_u32().to_le_bytes());
    bytes[0] = 0x77; // also an unknown code: STALE still wins
    let answer = dev.control_raw(&bytes, 64).unwrap();
    assert_eq!(&answer.bytes[..4], &Status::Stale.as_u32().to_le_bytes());
}

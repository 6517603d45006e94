//! Tests of the cross-field rules of validation: video and audio streams,
//! overlay geometry and call control, including what only the wire can
//! express (an absent rectangle, stray call arguments).

use crate::wire::WireError;
use crate::wire::generated::mediaredir::wire as fb;
use crate::wire::message::fixtures::{
    audio_stream, err, geometry, range, raw, round_trip, video_stream,
};
use crate::wire::message::{
    CallAction, CallStats, CreateStream, MAX_CHANNELS, MAX_DIMENSION, MAX_SAMPLE_RATE, Message,
    SetGeometry,
};
use crate::wire::types::{CallOp, Codec, Direction, MediaMask, Rect};

#[test]
fn video_stream_rules() {
    let v = |f: fn(&mut CreateStream)| {
        let mut s = video_stream();
        f(&mut s);
        Message::CreateStream(s)
    };
    for m in [
        v(|s| (s.media.width, s.media.height) = (1, 1)),
        v(|s| (s.media.width, s.media.height) = (MAX_DIMENSION, MAX_DIMENSION)),
        v(|s| (s.media.fps_num, s.media.fps_den) = (0, 0)),
        v(|s| (s.media.fps_num, s.media.fps_den) = (0, 5)),
        v(|s| s.codec = Codec::Mjpeg),
    ] {
        assert_eq!(round_trip(&m).as_ref(), Ok(&m));
    }
    assert_eq!(
        err(v(|s| s.media.width = 0)),
        range("CreateStream.width", 0, 1, 16384)
    );
    assert_eq!(
        err(v(|s| s.media.width = MAX_DIMENSION + 1)),
        range("CreateStream.width", 16385, 1, 16384)
    );
    assert_eq!(
        err(v(|s| s.media.height = 0)),
        range("CreateStream.height", 0, 1, 16384)
    );
    assert_eq!(
        err(v(|s| s.media.height = MAX_DIMENSION + 1)),
        range("CreateStream.height", 16385, 1, 16384)
    );
    assert_eq!(
        err(v(|s| s.media.sample_rate = 48000)),
        range("CreateStream.sample_rate", 48000, 0, 0)
    );
    assert_eq!(
        err(v(|s| s.media.channels = 1)),
        range("CreateStream.channels", 1, 0, 0)
    );
    assert!(matches!(
        err(v(|s| s.media.fps_den = 0)),
        WireError::Inconsistent {
            field: "CreateStream.fps_den",
            ..
        }
    ));
    assert!(matches!(
        err(v(|s| s.source = 2)),
        WireError::Inconsistent {
            field: "CreateStream.source",
            ..
        }
    ));
}

#[test]
fn audio_stream_rules() {
    let a = |f: fn(&mut CreateStream)| {
        let mut s = audio_stream();
        f(&mut s);
        Message::CreateStream(s)
    };
    for m in [
        a(|s| (s.media.sample_rate, s.media.channels) = (1, 1)),
        a(|s| {
            (s.media.sample_rate, s.media.channels, s.codec) =
                (MAX_SAMPLE_RATE, MAX_CHANNELS, Codec::PcmS16le)
        }),
        a(|s| (s.media.channels, s.codec_data) = (6, b"OpusHead".to_vec())),
        a(|s| (s.media.channels, s.codec) = (6, Codec::Aac)),
        a(|s| (s.direction, s.source, s.media.channels) = (Direction::Capture, 1, 6)),
    ] {
        assert_eq!(round_trip(&m).as_ref(), Ok(&m));
    }
    assert_eq!(
        err(a(|s| s.media.sample_rate = 0)),
        range("CreateStream.sample_rate", 0, 1, 384_000)
    );
    assert_eq!(
        err(a(|s| s.media.sample_rate = MAX_SAMPLE_RATE + 1)),
        range("CreateStream.sample_rate", 384_001, 1, 384_000)
    );
    assert_eq!(
        err(a(|s| s.media.channels = 0)),
        range("CreateStream.channels", 0, 1, 8)
    );
    assert_eq!(
        err(a(|s| s.media.channels = 9)),
        range("CreateStream.channels", 9, 1, 8)
    );
    assert_eq!(
        err(a(|s| s.media.width = 1)),
        range("CreateStream.width", 1, 0, 0)
    );
    assert_eq!(
        err(a(|s| s.media.height = 1)),
        range("CreateStream.height", 1, 0, 0)
    );
    assert!(matches!(
        err(a(|s| s.media.channels = 3)),
        WireError::Inconsistent {
            field: "CreateStream.codec_data",
            ..
        }
    ));
}

#[test]
fn geometry_rules() {
    let g = |f: fn(&mut SetGeometry)| {
        let mut s = geometry();
        f(&mut s);
        Message::SetGeometry(s)
    };
    let m = g(|s| s.dest = Rect::new(i32::MIN, 0, u32::MAX, 0));
    assert_eq!(round_trip(&m).as_ref(), Ok(&m));
    assert!(matches!(
        err(g(|s| s.dest = Rect::new(1, 0, i32::MAX as u32, 1))),
        WireError::Inconsistent {
            field: "SetGeometry.dest",
            ..
        }
    ));
    assert!(matches!(
        err(g(|s| s.clip[1] = Rect::new(0, 10, 1, i32::MAX as u32))),
        WireError::Inconsistent {
            field: "SetGeometry.clip",
            ..
        }
    ));
    assert!(matches!(
        err(g(|s| s.source = Rect::new(-1, 0, 10, 10))),
        WireError::Inconsistent {
            field: "SetGeometry.source",
            ..
        }
    ));
    // Absent dest is refused; absent source means the whole picture.
    let bytes = raw(|fbb| {
        let args = fb::SetGeometryArgs {
            presentation: 1,
            ..Default::default()
        };
        (
            fb::Message::SetGeometry,
            fb::SetGeometry::create(fbb, &args).as_union_value(),
        )
    });
    assert_eq!(
        Message::decode(&bytes),
        Err(WireError::MissingField("SetGeometry.dest"))
    );
    let bytes = raw(|fbb| {
        let dest = fb::Rect::new(0, 0, 5, 5);
        let args = fb::SetGeometryArgs {
            presentation: 1,
            dest: Some(&dest),
            ..Default::default()
        };
        (
            fb::Message::SetGeometry,
            fb::SetGeometry::create(fbb, &args).as_union_value(),
        )
    });
    assert_eq!(
        Message::decode(&bytes),
        Ok(Message::SetGeometry(SetGeometry {
            presentation: 1,
            display: 0,
            visible: false,
            z: 0,
            dest: Rect::new(0, 0, 5, 5),
            source: Rect::default(),
            clip: Vec::new(),
            // Absent, as from a minor 0 or 1 peer: no colour key.
            color_key: false,
        }))
    );
}

#[test]
fn call_rules() {
    let dtmf = |event, duration_ms| Message::CallControl {
        session: 1,
        action: CallAction::Dtmf { event, duration_ms },
    };
    for (e, d) in [(0, 40), (15, 5000), (9, 250)] {
        assert_eq!(round_trip(&dtmf(e, d)), Ok(dtmf(e, d)));
    }
    assert_eq!(err(dtmf(16, 100)), range("CallControl.arg", 16, 0, 15));
    assert_eq!(
        err(dtmf(1, 39)),
        range("CallControl.duration_ms", 39, 40, 5000)
    );
    assert_eq!(
        err(dtmf(1, 5001)),
        range("CallControl.duration_ms", 5001, 40, 5000)
    );
    assert!(matches!(
        err(Message::CallControl {
            session: 1,
            action: CallAction::Mute(MediaMask::empty())
        }),
        WireError::Inconsistent {
            field: "CallControl.arg",
            ..
        }
    ));
    let rx = |event| Message::CallDtmfReceived { session: 1, event };
    assert_eq!(round_trip(&rx(15)), Ok(rx(15)));
    assert_eq!(err(rx(16)), range("CallDtmfReceived.event", 16, 0, 15));
    let stats = |mos_x100| {
        Message::CallStats(CallStats {
            session: 1,
            jitter_us: 0,
            packets_lost: 0,
            packets_received: 0,
            rtt_us: 0,
            mos_x100,
        })
    };
    assert_eq!(round_trip(&stats(500)), Ok(stats(500)));
    assert_eq!(err(stats(501)), range("CallStats.mos_x100", 501, 0, 500));

    // On the wire: unknown op, unknown mask bits, stray arguments.
    let control = |op: u8, arg, duration_ms| {
        raw(move |fbb| {
            let args = fb::CallControlArgs {
                session: 1,
                op: fb::CallOp(op),
                arg,
                duration_ms,
            };
            (
                fb::Message::CallControl,
                fb::CallControl::create(fbb, &args).as_union_value(),
            )
        })
    };
    assert_eq!(
        Message::decode(&control(7, 0, 0)),
        Err(WireError::UnknownEnum {
            field: "CallControl.op",
            value: 7
        })
    );
    assert_eq!(
        Message::decode(&control(CallOp::Mute.raw(), 4, 0)),
        Err(WireError::UnknownFlags {
            field: "CallControl.arg",
            bits: 4
        })
    );
    for (op, arg, d) in [
        (CallOp::Start, 1, 0),
        (CallOp::End, 0, 1),
        (CallOp::Unmute, 1, 100),
    ] {
        assert!(matches!(
            Message::decode(&control(op.raw(), arg, d)),
            Err(WireError::Inconsistent {
                field: "CallControl.arg",
                ..
            })
        ));
    }
}

//! Tests of the per-field limits of validation: nonzero ids, sequence
//! numbers, lengths, counts, ranges and error statuses, each checked both by
//! `Message::validate` and by a decode of the same message.

use crate::wire::WireError;
use crate::wire::message::fixtures::{
    caps, err, geometry, range, round_trip, sample, video_stream,
};
use crate::wire::message::{
    CallAction, CallStats, Capabilities, CaptureSource, CodecCap, CreateStream, Hello,
    MAX_CLIP_RECTS, MAX_CODEC_DATA_LEN, MAX_CODECS, MAX_NAME_LEN, MAX_RATE_Q16, MAX_SDP_LEN,
    MAX_TEXT_LEN, MAX_VOLUME_Q16, MIN_RATE_Q16, Message, SampleHeader, SetGeometry, UNITY_Q16,
    Welcome,
};
use crate::wire::types::{
    Codec, CodecFlags, Direction, PresentationFlags, PresentationState, Rect, SourceKind, Status,
};

#[test]
fn zero_ids_rejected() {
    let cases = [
        (
            Message::CreatePresentation {
                id: 0,
                flags: PresentationFlags::empty(),
            },
            "CreatePresentation.id",
        ),
        (
            Message::DestroyPresentation { id: 0 },
            "DestroyPresentation.id",
        ),
        (Message::Play { presentation: 0 }, "Play.presentation"),
        (Message::Pause { presentation: 0 }, "Pause.presentation"),
        (
            Message::Flush {
                presentation: 0,
                position_ns: 0,
            },
            "Flush.presentation",
        ),
        (
            Message::SetRate {
                presentation: 0,
                rate_q16: UNITY_Q16,
            },
            "SetRate.presentation",
        ),
        (
            Message::SetGeometry(SetGeometry {
                presentation: 0,
                ..geometry()
            }),
            "SetGeometry.presentation",
        ),
        (
            Message::CreateStream(CreateStream {
                id: 0,
                ..video_stream()
            }),
            "CreateStream.id",
        ),
        (
            Message::CreateStream(CreateStream {
                presentation: 0,
                ..video_stream()
            }),
            "CreateStream.presentation",
        ),
        (Message::DestroyStream { id: 0 }, "DestroyStream.id"),
        (
            Message::SetVolume {
                stream: 0,
                volume_q16: 0,
                mute: false,
            },
            "SetVolume.stream",
        ),
        (
            Message::Sample(SampleHeader {
                stream: 0,
                ..sample()
            }),
            "Sample.stream",
        ),
        (
            Message::CaptureSample(SampleHeader {
                stream: 0,
                ..sample()
            }),
            "CaptureSample.stream",
        ),
        (
            Message::Ack {
                stream: 0,
                seq: 1,
                status: Status::Ok,
            },
            "Ack.stream",
        ),
        (Message::StartCapture { stream: 0 }, "StartCapture.stream"),
        (Message::StopCapture { stream: 0 }, "StopCapture.stream"),
        (
            Message::RequestKeyframe { stream: 0 },
            "RequestKeyframe.stream",
        ),
        (Message::EndOfStream { stream: 0 }, "EndOfStream.stream"),
        (
            Message::Position {
                presentation: 0,
                position_ns: 0,
            },
            "Position.presentation",
        ),
        (
            Message::StateChanged {
                presentation: 0,
                state: PresentationState::Paused,
            },
            "StateChanged.presentation",
        ),
        (
            Message::StreamError {
                stream: 0,
                status: Status::Io,
                message: String::new(),
            },
            "StreamError.stream",
        ),
        (
            Message::Qos {
                stream: 0,
                rendered: 0,
                dropped: 0,
                jitter_ns: 0,
            },
            "Qos.stream",
        ),
        (
            Message::CallCreate {
                session: 0,
                sdp: String::new(),
            },
            "CallCreate.session",
        ),
        (
            Message::CallLocalSdp {
                session: 0,
                sdp: "v=0".into(),
            },
            "CallLocalSdp.session",
        ),
        (
            Message::CallRemoteSdp {
                session: 0,
                sdp: "v=0".into(),
            },
            "CallRemoteSdp.session",
        ),
        (
            Message::CallControl {
                session: 0,
                action: CallAction::End,
            },
            "CallControl.session",
        ),
        (
            Message::CallStats(CallStats {
                session: 0,
                jitter_us: 0,
                packets_lost: 0,
                packets_received: 0,
                rtt_us: 0,
                mos_x100: 0,
            }),
            "CallStats.session",
        ),
        (
            Message::CallEnded {
                session: 0,
                status: Status::Ok,
                reason: String::new(),
            },
            "CallEnded.session",
        ),
        (
            Message::CallDtmfReceived {
                session: 0,
                event: 1,
            },
            "CallDtmfReceived.session",
        ),
    ];
    for (m, field) in cases {
        assert_eq!(err(m), WireError::ZeroId(field));
    }
    let mut c = caps();
    c.sources[1].id = 0;
    assert_eq!(
        err(Message::CapabilitiesChanged(c)),
        WireError::ZeroId("CaptureSource.id")
    );
    let e = err(Message::CreateStream(CreateStream {
        direction: Direction::Capture,
        source: 0,
        ..video_stream()
    }));
    assert_eq!(e, WireError::ZeroId("CreateStream.source"));
}

#[test]
fn sequence_numbers_start_at_one() {
    assert!(matches!(
        err(Message::Sample(SampleHeader { seq: 0, ..sample() })),
        WireError::Inconsistent {
            field: "Sample.seq",
            ..
        }
    ));
    assert!(matches!(
        err(Message::CaptureSample(SampleHeader { seq: 0, ..sample() })),
        WireError::Inconsistent {
            field: "CaptureSample.seq",
            ..
        }
    ));
    assert!(matches!(
        err(Message::Ack {
            stream: 1,
            seq: 0,
            status: Status::Ok
        }),
        WireError::Inconsistent {
            field: "Ack.seq",
            ..
        }
    ));
}

#[test]
fn name_and_text_limits() {
    let name = |n| "n".repeat(n);
    let hello = |n| {
        Message::Hello(Hello {
            major: 1,
            minor: 0,
            name: name(n),
            caps: caps(),
        })
    };
    assert_eq!(round_trip(&hello(MAX_NAME_LEN)), Ok(hello(MAX_NAME_LEN)));
    assert_eq!(
        err(hello(MAX_NAME_LEN + 1)),
        WireError::TooLong {
            field: "Hello.name",
            len: 257,
            max: 256
        }
    );
    let welcome = |n| {
        Message::Welcome(Welcome {
            major: 1,
            minor: 0,
            server: name(n),
            session: 1,
        })
    };
    assert!(round_trip(&welcome(MAX_NAME_LEN)).is_ok());
    assert!(matches!(
        err(welcome(MAX_NAME_LEN + 1)),
        WireError::TooLong {
            field: "Welcome.server",
            ..
        }
    ));
    let source = |n| {
        let mut c = caps();
        c.sources[0].name = name(n);
        Message::CapabilitiesChanged(c)
    };
    assert!(round_trip(&source(MAX_NAME_LEN)).is_ok());
    assert!(matches!(
        err(source(MAX_NAME_LEN + 1)),
        WireError::TooLong {
            field: "CaptureSource.name",
            ..
        }
    ));

    let text = |n| Message::StreamError {
        stream: 1,
        status: Status::Io,
        message: name(n),
    };
    assert!(round_trip(&text(MAX_TEXT_LEN)).is_ok());
    assert!(matches!(
        err(text(MAX_TEXT_LEN + 1)),
        WireError::TooLong {
            field: "StreamError.message",
            ..
        }
    ));
    let ended = |n| Message::CallEnded {
        session: 1,
        status: Status::Ok,
        reason: name(n),
    };
    assert!(round_trip(&ended(MAX_TEXT_LEN)).is_ok());
    assert!(matches!(
        err(ended(MAX_TEXT_LEN + 1)),
        WireError::TooLong {
            field: "CallEnded.reason",
            ..
        }
    ));
    let perr = |n| Message::ProtocolError {
        status: Status::Invalid,
        fatal: true,
        message: name(n),
    };
    assert!(round_trip(&perr(MAX_TEXT_LEN)).is_ok());
    assert!(matches!(
        err(perr(MAX_TEXT_LEN + 1)),
        WireError::TooLong {
            field: "ProtocolError.message",
            ..
        }
    ));
}

#[test]
fn sdp_limits() {
    let sdp = |n| "s".repeat(n);
    for m in [
        |s| Message::CallCreate { session: 1, sdp: s },
        |s| Message::CallLocalSdp { session: 1, sdp: s },
        |s| Message::CallRemoteSdp { session: 1, sdp: s },
    ] {
        assert_eq!(m(sdp(MAX_SDP_LEN)).validate(), Ok(()));
        assert!(matches!(
            m(sdp(MAX_SDP_LEN + 1)).validate(),
            Err(WireError::TooLong {
                len: 65537,
                max: 65536,
                ..
            })
        ));
        // A full-size SDP fits in a header.
        let big = m(sdp(MAX_SDP_LEN));
        assert!(round_trip(&big).as_ref() == Ok(&big));
    }
    assert!(matches!(
        err(Message::CallLocalSdp {
            session: 1,
            sdp: String::new()
        }),
        WireError::Inconsistent {
            field: "CallLocalSdp.sdp",
            ..
        }
    ));
    assert!(matches!(
        err(Message::CallRemoteSdp {
            session: 1,
            sdp: String::new()
        }),
        WireError::Inconsistent {
            field: "CallRemoteSdp.sdp",
            ..
        }
    ));
}

#[test]
fn codec_data_limit() {
    let with = |n| {
        Message::CreateStream(CreateStream {
            codec_data: vec![0xAB; n],
            ..video_stream()
        })
    };
    assert_eq!(with(MAX_CODEC_DATA_LEN).validate(), Ok(()));
    assert_eq!(
        with(MAX_CODEC_DATA_LEN + 1).validate(),
        Err(WireError::TooLong {
            field: "CreateStream.codec_data",
            len: 65537,
            max: 65536
        })
    );
    // Full-size codec data fits in a header.
    let big = with(MAX_CODEC_DATA_LEN);
    assert!(round_trip(&big).as_ref() == Ok(&big));
}

#[test]
fn count_limits() {
    let clip = |n| {
        Message::SetGeometry(SetGeometry {
            clip: vec![Rect::new(1, 2, 3, 4); n],
            ..geometry()
        })
    };
    assert_eq!(round_trip(&clip(MAX_CLIP_RECTS)), Ok(clip(MAX_CLIP_RECTS)));
    assert_eq!(
        err(clip(MAX_CLIP_RECTS + 1)),
        WireError::TooMany {
            field: "SetGeometry.clip",
            count: 17,
            max: 16
        }
    );

    let codecs = |n| {
        let cc = CodecCap {
            codec: Codec::Vp9,
            flags: CodecFlags::DECODE,
            max_width: 0,
            max_height: 0,
        };
        Message::CapabilitiesChanged(Capabilities {
            codecs: vec![cc; n],
            ..caps()
        })
    };
    assert_eq!(round_trip(&codecs(MAX_CODECS)), Ok(codecs(MAX_CODECS)));
    assert_eq!(
        err(codecs(MAX_CODECS + 1)),
        WireError::TooMany {
            field: "Capabilities.codecs",
            count: 65,
            max: 64
        }
    );

    let sources = |n: u32| {
        let s = (1..=n)
            .map(|id| CaptureSource {
                id,
                kind: SourceKind::Camera,
                name: format!("cam{id}"),
            })
            .collect();
        Message::CapabilitiesChanged(Capabilities {
            sources: s,
            ..caps()
        })
    };
    assert_eq!(round_trip(&sources(32)), Ok(sources(32)));
    assert_eq!(
        err(sources(33)),
        WireError::TooMany {
            field: "Capabilities.sources",
            count: 33,
            max: 32
        }
    );
}

#[test]
fn duplicate_source_ids_rejected() {
    let mut c = caps();
    c.sources[2].id = c.sources[0].id;
    assert_eq!(
        err(Message::Hello(Hello {
            major: 1,
            minor: 0,
            name: "c".into(),
            caps: c
        })),
        WireError::DuplicateId {
            field: "CaptureSource.id",
            id: 1
        }
    );
}

#[test]
fn rate_and_volume_limits() {
    let rate = |r| Message::SetRate {
        presentation: 1,
        rate_q16: r,
    };
    for ok in [MIN_RATE_Q16, UNITY_Q16, MAX_RATE_Q16] {
        assert_eq!(round_trip(&rate(ok)), Ok(rate(ok)));
    }
    for bad in [0, MIN_RATE_Q16 - 1, MAX_RATE_Q16 + 1, u32::MAX] {
        assert_eq!(
            err(rate(bad)),
            range("SetRate.rate_q16", bad, 8192, 524_288)
        );
    }
    let vol = |v| Message::SetVolume {
        stream: 1,
        volume_q16: v,
        mute: false,
    };
    for ok in [0, UNITY_Q16, MAX_VOLUME_Q16] {
        assert_eq!(round_trip(&vol(ok)), Ok(vol(ok)));
    }
    for bad in [MAX_VOLUME_Q16 + 1, u32::MAX] {
        assert_eq!(
            err(vol(bad)),
            range("SetVolume.volume_q16", bad, 0, 262_144)
        );
    }
}

#[test]
fn error_statuses_are_not_ok() {
    assert!(matches!(
        err(Message::StreamError {
            stream: 1,
            status: Status::Ok,
            message: String::new()
        }),
        WireError::Inconsistent {
            field: "StreamError.status",
            ..
        }
    ));
    assert!(matches!(
        err(Message::ProtocolError {
            status: Status::Ok,
            fatal: true,
            message: String::new()
        }),
        WireError::Inconsistent {
            field: "ProtocolError.status",
            ..
        }
    ));
}

//! Unit tests of the message encoder and validating decoder.

use std::collections::BTreeSet;

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use super::*;

fn caps() -> Capabilities {
    Capabilities {
        codecs: vec![
            CodecCap {
                codec: Codec::H264,
                flags: CodecFlags::DECODE | CodecFlags::ENCODE,
                max_width: 3840,
                max_height: 2160,
            },
            CodecCap {
                codec: Codec::Opus,
                flags: CodecFlags::ALL,
                max_width: 0,
                max_height: 0,
            },
        ],
        sources: vec![
            CaptureSource {
                id: 1,
                kind: SourceKind::Microphone,
                name: "Built-in mic".into(),
            },
            CaptureSource {
                id: 7,
                kind: SourceKind::Camera,
                name: String::new(),
            },
            CaptureSource {
                id: 9,
                kind: SourceKind::Screen,
                name: "écran".into(),
            },
        ],
        features: ClientFeatures::OVERLAY | ClientFeatures::CALL,
    }
}

fn video_stream() -> CreateStream {
    CreateStream {
        id: 3,
        presentation: 1,
        direction: Direction::Playback,
        codec: Codec::H264,
        width: 1920,
        height: 1080,
        fps_num: 30000,
        fps_den: 1001,
        sample_rate: 0,
        channels: 0,
        bitrate: 4_000_000,
        source: 0,
        codec_data: vec![1, 0x64, 0, 0x28, 0xff, 0xe1],
    }
}

fn audio_stream() -> CreateStream {
    CreateStream {
        id: 4,
        presentation: 1,
        direction: Direction::Playback,
        codec: Codec::Opus,
        width: 0,
        height: 0,
        fps_num: 0,
        fps_den: 0,
        sample_rate: 48000,
        channels: 2,
        bitrate: 0,
        source: 0,
        codec_data: Vec::new(),
    }
}

fn geometry() -> SetGeometry {
    SetGeometry {
        presentation: 1,
        display: 0,
        visible: true,
        z: -3,
        dest: Rect::new(-10, 20, 640, 360),
        source: Rect::default(),
        clip: vec![Rect::new(0, 0, 10, 10), Rect::new(100, 100, 5, 5)],
    }
}

fn sample() -> SampleHeader {
    SampleHeader {
        clip: Default::default(),
        stream: 3,
        seq: 1,
        pts: Some(0),
        dts: None,
        duration: Some(33_366_666),
        flags: SampleFlags::KEYFRAME,
    }
}

/// At least one value of every variant, and several forms of some.
fn all_messages() -> Vec<Message> {
    vec![
        Message::Hello(Hello {
            major: 1,
            minor: 0,
            name: "client".into(),
            caps: caps(),
        }),
        Message::Hello(Hello {
            major: 2,
            minor: 7,
            name: String::new(),
            caps: Capabilities::default(),
        }),
        Message::Welcome(Welcome {
            major: 1,
            minor: 0,
            server: "vhost-device-media".into(),
            session: 0xdead_beef_0000_0001,
        }),
        Message::CapabilitiesChanged(caps()),
        Message::CreatePresentation {
            id: 1,
            flags: PresentationFlags::empty(),
        },
        Message::CreatePresentation {
            id: u32::MAX,
            flags: PresentationFlags::LIVE,
        },
        Message::DestroyPresentation { id: 1 },
        Message::Play { presentation: 1 },
        Message::Pause { presentation: 2 },
        Message::Flush {
            presentation: 1,
            position_ns: 5_000_000_000,
        },
        Message::Flush {
            presentation: 1,
            position_ns: 0,
        },
        Message::SetRate {
            presentation: 1,
            rate_q16: UNITY_Q16,
        },
        Message::SetGeometry(geometry()),
        Message::SetGeometry(SetGeometry {
            visible: false,
            clip: Vec::new(),
            source: Rect::new(0, 0, 1920, 1080),
            ..geometry()
        }),
        Message::CreateStream(video_stream()),
        Message::CreateStream(audio_stream()),
        Message::CreateStream(CreateStream {
            direction: Direction::Capture,
            source: 7,
            codec: Codec::Vp8,
            fps_num: 0,
            fps_den: 0,
            codec_data: Vec::new(),
            ..video_stream()
        }),
        Message::DestroyStream { id: 3 },
        Message::SetVolume {
            stream: 4,
            volume_q16: 32768,
            mute: true,
        },
        Message::SetVolume {
            stream: 4,
            volume_q16: 0,
            mute: false,
        },
        Message::Sample(sample()),
        Message::Sample(SampleHeader {
            pts: None,
            duration: None,
            flags: SampleFlags::EOS,
            seq: u64::MAX,
            ..sample()
        }),
        Message::Ack {
            stream: 3,
            seq: 17,
            status: Status::Ok,
        },
        Message::Ack {
            stream: 3,
            seq: 18,
            status: Status::Cancelled,
        },
        Message::StartCapture { stream: 5 },
        Message::StopCapture { stream: 5 },
        Message::CaptureSample(SampleHeader {
            stream: 5,
            dts: Some(u64::MAX - 1),
            flags: SampleFlags::ALL,
            ..sample()
        }),
        Message::RequestKeyframe { stream: 3 },
        Message::EndOfStream { stream: 3 },
        Message::Position {
            presentation: 1,
            position_ns: 123_456_789,
        },
        Message::StateChanged {
            presentation: 1,
            state: PresentationState::Playing,
        },
        Message::StateChanged {
            presentation: 1,
            state: PresentationState::Idle,
        },
        Message::StreamError {
            stream: 3,
            status: Status::Unsupported,
            message: "no decoder".into(),
        },
        Message::StreamError {
            stream: 3,
            status: Status::Io,
            message: String::new(),
        },
        Message::Qos {
            stream: 3,
            rendered: 1000,
            dropped: 2,
            jitter_ns: -5000,
        },
        Message::CallCreate {
            session: 1,
            sdp: String::new(),
        },
        Message::CallCreate {
            session: 1,
            sdp: "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\n".into(),
        },
        Message::CallLocalSdp {
            session: 1,
            sdp: "v=0\r\n".into(),
        },
        Message::CallRemoteSdp {
            session: 1,
            sdp: "v=0\r\n".into(),
        },
        Message::CallControl {
            session: 1,
            action: CallAction::Start,
        },
        Message::CallControl {
            session: 1,
            action: CallAction::Hold,
        },
        Message::CallControl {
            session: 1,
            action: CallAction::Resume,
        },
        Message::CallControl {
            session: 1,
            action: CallAction::Mute(MediaMask::AUDIO),
        },
        Message::CallControl {
            session: 1,
            action: CallAction::Unmute(MediaMask::ALL),
        },
        Message::CallControl {
            session: 1,
            action: CallAction::Dtmf {
                event: 11,
                duration_ms: 100,
            },
        },
        Message::CallControl {
            session: 1,
            action: CallAction::End,
        },
        Message::CallStats(CallStats {
            session: 1,
            jitter_us: 1200,
            packets_lost: 3,
            packets_received: 100_000,
            rtt_us: 40_000,
            mos_x100: 430,
        }),
        Message::CallEnded {
            session: 1,
            status: Status::Ok,
            reason: String::new(),
        },
        Message::CallEnded {
            session: 1,
            status: Status::Io,
            reason: "peer gone".into(),
        },
        Message::CallDtmfReceived {
            session: 1,
            event: 0,
        },
        Message::Ping { nonce: 0 },
        Message::Pong { nonce: u64::MAX },
        Message::ProtocolError {
            status: Status::Invalid,
            fatal: true,
            message: "major 2".into(),
        },
        Message::ProtocolError {
            status: Status::Limit,
            fatal: false,
            message: String::new(),
        },
    ]
}

fn round_trip(m: &Message) -> Result<Message, WireError> {
    Message::decode(&m.to_header_bytes())
}

/// A header whose message is built by hand with the generated builders, so
/// tests can put on the wire what `Message::encode` never would.
fn raw(
    build: impl for<'f> FnOnce(&mut FlatBufferBuilder<'f>) -> (fb::Message, WIPOffset<UnionWIPOffset>),
) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let (msg_type, msg) = build(&mut fbb);
    let frame = fb::Frame::create(
        &mut fbb,
        &fb::FrameArgs {
            msg_type,
            msg: Some(msg),
        },
    );
    fb::finish_frame_buffer(&mut fbb, frame);
    fbb.finished_data().to_vec()
}

fn raw_stream(args: fb::CreateStreamArgs<'_>) -> Vec<u8> {
    raw(|fbb| {
        (
            fb::Message::CreateStream,
            fb::CreateStream::create(fbb, &args).as_union_value(),
        )
    })
}

fn stream_args(c: &CreateStream) -> fb::CreateStreamArgs<'static> {
    fb::CreateStreamArgs {
        id: c.id,
        presentation: c.presentation,
        direction: fb::Direction(c.direction.raw()),
        codec: fb::Codec(c.codec.as_u32()),
        width: c.width,
        height: c.height,
        fps_num: c.fps_num,
        fps_den: c.fps_den,
        sample_rate: c.sample_rate,
        channels: c.channels,
        bitrate: c.bitrate,
        source: c.source,
        codec_data: None,
    }
}

fn err(m: Message) -> WireError {
    let e = m
        .validate()
        .expect_err("validate accepted an invalid message");
    // The decoder applies exactly the same rules.
    assert_eq!(round_trip(&m), Err(e.clone()), "{m:?}");
    e
}

fn range(field: &'static str, value: u32, min: u32, max: u32) -> WireError {
    WireError::OutOfRange {
        field,
        value: i64::from(value),
        min: i64::from(min),
        max: i64::from(max),
    }
}

#[test]
fn every_variant_round_trips() {
    let msgs = all_messages();
    for m in &msgs {
        m.validate().unwrap_or_else(|e| panic!("{m:?}: {e}"));
        assert_eq!(round_trip(m).as_ref(), Ok(m), "{}", m.name());
    }
    // Every union member of the schema is covered, under its schema name.
    let covered: BTreeSet<&str> = msgs.iter().map(Message::name).collect();
    let schema: BTreeSet<&str> = fb::Message::ENUM_VALUES
        .iter()
        .filter(|t| **t != fb::Message::NONE)
        .map(|t| t.variant_name().unwrap())
        .collect();
    assert_eq!(covered, schema);
}

#[test]
fn header_carries_identifier_and_reuses_builder() {
    let mut fbb = FlatBufferBuilder::new();
    for m in all_messages() {
        let bytes = m.encode(&mut fbb).to_vec();
        assert_eq!(&bytes[4..8], b"MRW1");
        assert_eq!(Message::decode(&bytes), Ok(m));
    }
}

#[test]
fn payload_carriers() {
    for m in all_messages() {
        assert_eq!(
            m.carries_payload(),
            matches!(m.name(), "Sample" | "CaptureSample"),
            "{}",
            m.name()
        );
    }
}

#[test]
fn sample_clipping_travels_and_capture_has_none() {
    let clip = Clip {
        start: 312,
        end: 648,
    };
    let m = Message::Sample(SampleHeader { clip, ..sample() });
    let bytes = m.to_header_bytes();
    let f = fb::root_as_frame(&bytes).unwrap().msg_as_sample().unwrap();
    assert_eq!((f.clip_start(), f.clip_end()), (312, 648));
    assert_eq!(Message::decode(&bytes), Ok(m));
    // A sample without clipping writes neither field: what a peer of
    // minor 0 sends, and reads as no clipping.
    let plain = Message::Sample(sample()).to_header_bytes();
    assert!(plain.len() < bytes.len());
    // Capture samples never carry clipping.
    let cap = Message::CaptureSample(SampleHeader { clip, ..sample() });
    assert_eq!(
        Message::decode(&cap.to_header_bytes()),
        Ok(Message::CaptureSample(sample()))
    );
}

#[test]
fn time_none_is_absent() {
    let m = Message::Sample(SampleHeader {
        pts: None,
        dts: None,
        duration: None,
        ..sample()
    });
    let bytes = m.to_header_bytes();
    let f = fb::root_as_frame(&bytes).unwrap().msg_as_sample().unwrap();
    assert_eq!(
        (f.pts(), f.dts(), f.duration()),
        (TIME_NONE, TIME_NONE, TIME_NONE)
    );
    assert_eq!(Message::decode(&bytes), Ok(m));
    assert_eq!(
        Message::Sample(SampleHeader {
            pts: Some(TIME_NONE),
            ..sample()
        })
        .validate(),
        Err(WireError::Inconsistent {
            field: "Sample.pts",
            rule: "Some(TIME_NONE) is not a time; use None"
        })
    );
    assert!(matches!(
        Message::CaptureSample(SampleHeader {
            duration: Some(TIME_NONE),
            ..sample()
        })
        .validate(),
        Err(WireError::Inconsistent {
            field: "CaptureSample.duration",
            ..
        })
    ));
    // Explicit TIME_NONE on the wire decodes as None.
    let bytes = raw(|fbb| {
        let args = fb::SampleArgs {
            stream: 1,
            seq: 1,
            pts: 5,
            dts: 0,
            duration: TIME_NONE,
            flags: 0,
            ..Default::default()
        };
        (
            fb::Message::Sample,
            fb::Sample::create(fbb, &args).as_union_value(),
        )
    });
    assert_eq!(
        Message::decode(&bytes),
        Ok(Message::Sample(SampleHeader {
            clip: Default::default(),
            stream: 1,
            seq: 1,
            pts: Some(5),
            dts: Some(0),
            duration: None,
            flags: SampleFlags::empty()
        }))
    );
}

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
fn video_stream_rules() {
    let v = |f: fn(&mut CreateStream)| {
        let mut s = video_stream();
        f(&mut s);
        Message::CreateStream(s)
    };
    for m in [
        v(|s| (s.width, s.height) = (1, 1)),
        v(|s| (s.width, s.height) = (MAX_DIMENSION, MAX_DIMENSION)),
        v(|s| (s.fps_num, s.fps_den) = (0, 0)),
        v(|s| (s.fps_num, s.fps_den) = (0, 5)),
        v(|s| s.codec = Codec::Mjpeg),
    ] {
        assert_eq!(round_trip(&m).as_ref(), Ok(&m));
    }
    assert_eq!(
        err(v(|s| s.width = 0)),
        range("CreateStream.width", 0, 1, 16384)
    );
    assert_eq!(
        err(v(|s| s.width = MAX_DIMENSION + 1)),
        range("CreateStream.width", 16385, 1, 16384)
    );
    assert_eq!(
        err(v(|s| s.height = 0)),
        range("CreateStream.height", 0, 1, 16384)
    );
    assert_eq!(
        err(v(|s| s.height = MAX_DIMENSION + 1)),
        range("CreateStream.height", 16385, 1, 16384)
    );
    assert_eq!(
        err(v(|s| s.sample_rate = 48000)),
        range("CreateStream.sample_rate", 48000, 0, 0)
    );
    assert_eq!(
        err(v(|s| s.channels = 1)),
        range("CreateStream.channels", 1, 0, 0)
    );
    assert!(matches!(
        err(v(|s| s.fps_den = 0)),
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
        a(|s| (s.sample_rate, s.channels) = (1, 1)),
        a(|s| {
            (s.sample_rate, s.channels, s.codec) = (MAX_SAMPLE_RATE, MAX_CHANNELS, Codec::PcmS16le)
        }),
        a(|s| (s.channels, s.codec_data) = (6, b"OpusHead".to_vec())),
        a(|s| (s.channels, s.codec) = (6, Codec::Aac)),
        a(|s| (s.direction, s.source, s.channels) = (Direction::Capture, 1, 6)),
    ] {
        assert_eq!(round_trip(&m).as_ref(), Ok(&m));
    }
    assert_eq!(
        err(a(|s| s.sample_rate = 0)),
        range("CreateStream.sample_rate", 0, 1, 384_000)
    );
    assert_eq!(
        err(a(|s| s.sample_rate = MAX_SAMPLE_RATE + 1)),
        range("CreateStream.sample_rate", 384_001, 1, 384_000)
    );
    assert_eq!(
        err(a(|s| s.channels = 0)),
        range("CreateStream.channels", 0, 1, 8)
    );
    assert_eq!(
        err(a(|s| s.channels = 9)),
        range("CreateStream.channels", 9, 1, 8)
    );
    assert_eq!(
        err(a(|s| s.width = 1)),
        range("CreateStream.width", 1, 0, 0)
    );
    assert_eq!(
        err(a(|s| s.height = 1)),
        range("CreateStream.height", 1, 0, 0)
    );
    assert!(matches!(
        err(a(|s| s.channels = 3)),
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
            clip: Vec::new()
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

#[test]
fn unknown_enum_values_rejected() {
    for (codec, value) in [
        (0, 0),
        (0x0A, 0x0A),
        (0x100, 0x100),
        (0x10E, 0x10E),
        (u32::MAX, u32::MAX),
    ] {
        let mut args = stream_args(&video_stream());
        args.codec = fb::Codec(codec);
        assert_eq!(
            Message::decode(&raw_stream(args)),
            Err(WireError::UnknownEnum {
                field: "CreateStream.codec",
                value
            })
        );
    }
    let mut args = stream_args(&video_stream());
    args.direction = fb::Direction(2);
    assert_eq!(
        Message::decode(&raw_stream(args)),
        Err(WireError::UnknownEnum {
            field: "CreateStream.direction",
            value: 2
        })
    );
    let ack = raw(|fbb| {
        let args = fb::AckArgs {
            stream: 1,
            seq: 1,
            status: fb::Status(13),
        };
        (
            fb::Message::Ack,
            fb::Ack::create(fbb, &args).as_union_value(),
        )
    });
    assert_eq!(
        Message::decode(&ack),
        Err(WireError::UnknownEnum {
            field: "Ack.status",
            value: 13
        })
    );
    let state = raw(|fbb| {
        let args = fb::StateChangedArgs {
            presentation: 1,
            state: fb::PresentationState(3),
        };
        (
            fb::Message::StateChanged,
            fb::StateChanged::create(fbb, &args).as_union_value(),
        )
    });
    assert_eq!(
        Message::decode(&state),
        Err(WireError::UnknownEnum {
            field: "StateChanged.state",
            value: 3
        })
    );
    for (status, build) in [(99u32, 0u8), (14, 1), (20, 2)] {
        let bytes = raw(|fbb| match build {
            0 => {
                let args = fb::StreamErrorArgs {
                    stream: 1,
                    status: fb::Status(status),
                    message: None,
                };
                (
                    fb::Message::StreamError,
                    fb::StreamError::create(fbb, &args).as_union_value(),
                )
            }
            1 => {
                let args = fb::CallEndedArgs {
                    session: 1,
                    status: fb::Status(status),
                    reason: None,
                };
                (
                    fb::Message::CallEnded,
                    fb::CallEnded::create(fbb, &args).as_union_value(),
                )
            }
            _ => {
                let args = fb::ProtocolErrorArgs {
                    status: fb::Status(status),
                    fatal: false,
                    message: None,
                };
                (
                    fb::Message::ProtocolError,
                    fb::ProtocolError::create(fbb, &args).as_union_value(),
                )
            }
        });
        assert!(
            matches!(Message::decode(&bytes), Err(WireError::UnknownEnum { value, .. }) if value == status)
        );
    }
    // Inside Capabilities: codec, source kind.
    let caps_bytes = |codec: u32, kind: u8| {
        raw(move |fbb| {
            let cc = fb::CodecCap::create(
                fbb,
                &fb::CodecCapArgs {
                    codec: fb::Codec(codec),
                    flags: fb::CodecFlags::Decode,
                    max_width: 0,
                    max_height: 0,
                },
            );
            let name = fbb.create_string("x");
            let src = fb::CaptureSource::create(
                fbb,
                &fb::CaptureSourceArgs {
                    id: 1,
                    kind: fb::SourceKind(kind),
                    name: Some(name),
                },
            );
            let codecs = fbb.create_vector(&[cc]);
            let sources = fbb.create_vector(&[src]);
            let caps = fb::Capabilities::create(
                fbb,
                &fb::CapabilitiesArgs {
                    codecs: Some(codecs),
                    sources: Some(sources),
                    features: fb::ClientFeatures::empty(),
                },
            );
            let args = fb::CapabilitiesChangedArgs { caps: Some(caps) };
            (
                fb::Message::CapabilitiesChanged,
                fb::CapabilitiesChanged::create(fbb, &args).as_union_value(),
            )
        })
    };
    assert!(Message::decode(&caps_bytes(1, 0)).is_ok());
    assert_eq!(
        Message::decode(&caps_bytes(0, 0)),
        Err(WireError::UnknownEnum {
            field: "CodecCap.codec",
            value: 0
        })
    );
    assert_eq!(
        Message::decode(&caps_bytes(1, 3)),
        Err(WireError::UnknownEnum {
            field: "CaptureSource.kind",
            value: 3
        })
    );
}

#[test]
fn unknown_flag_bits_rejected() {
    let sample = |flags| {
        raw(move |fbb| {
            let args = fb::SampleArgs {
                stream: 1,
                seq: 1,
                pts: 0,
                dts: 0,
                duration: 0,
                flags,
                ..Default::default()
            };
            (
                fb::Message::Sample,
                fb::Sample::create(fbb, &args).as_union_value(),
            )
        })
    };
    assert!(Message::decode(&sample(31)).is_ok());
    assert_eq!(
        Message::decode(&sample(0x8000_0021)),
        Err(WireError::UnknownFlags {
            field: "Sample.flags",
            bits: 0x8000_0020
        })
    );
    let capture = raw(|fbb| {
        let args = fb::CaptureSampleArgs {
            stream: 1,
            seq: 1,
            pts: 0,
            dts: 0,
            duration: 0,
            flags: 64,
        };
        (
            fb::Message::CaptureSample,
            fb::CaptureSample::create(fbb, &args).as_union_value(),
        )
    });
    assert_eq!(
        Message::decode(&capture),
        Err(WireError::UnknownFlags {
            field: "CaptureSample.flags",
            bits: 64
        })
    );
    let pres = raw(|fbb| {
        let args = fb::CreatePresentationArgs { id: 1, flags: 3 };
        (
            fb::Message::CreatePresentation,
            fb::CreatePresentation::create(fbb, &args).as_union_value(),
        )
    });
    assert_eq!(
        Message::decode(&pres),
        Err(WireError::UnknownFlags {
            field: "CreatePresentation.flags",
            bits: 2
        })
    );
    let caps = |flags: u32, features: u32| {
        raw(move |fbb| {
            let cc = fb::CodecCap::create(
                fbb,
                &fb::CodecCapArgs {
                    codec: fb::Codec::H264,
                    flags: fb::CodecFlags::from_bits_retain(flags),
                    max_width: 0,
                    max_height: 0,
                },
            );
            let codecs = fbb.create_vector(&[cc]);
            let caps = fb::Capabilities::create(
                fbb,
                &fb::CapabilitiesArgs {
                    codecs: Some(codecs),
                    sources: None,
                    features: fb::ClientFeatures::from_bits_retain(features),
                },
            );
            let args = fb::CapabilitiesChangedArgs { caps: Some(caps) };
            (
                fb::Message::CapabilitiesChanged,
                fb::CapabilitiesChanged::create(fbb, &args).as_union_value(),
            )
        })
    };
    assert!(Message::decode(&caps(7, 7)).is_ok());
    assert_eq!(
        Message::decode(&caps(9, 0)),
        Err(WireError::UnknownFlags {
            field: "CodecCap.flags",
            bits: 8
        })
    );
    assert_eq!(
        Message::decode(&caps(1, 0x10)),
        Err(WireError::UnknownFlags {
            field: "Capabilities.features",
            bits: 0x10
        })
    );
}

#[test]
fn required_fields() {
    let hello = |name: bool, caps: bool| {
        raw(move |fbb| {
            let name = name.then(|| fbb.create_string("c"));
            let caps =
                caps.then(|| fb::Capabilities::create(fbb, &fb::CapabilitiesArgs::default()));
            let args = fb::HelloArgs {
                major: 1,
                minor: 0,
                name,
                caps,
            };
            (
                fb::Message::Hello,
                fb::Hello::create(fbb, &args).as_union_value(),
            )
        })
    };
    assert_eq!(
        Message::decode(&hello(true, true)),
        Ok(Message::Hello(Hello {
            major: 1,
            minor: 0,
            name: "c".into(),
            caps: Capabilities::default()
        }))
    );
    assert_eq!(
        Message::decode(&hello(false, true)),
        Err(WireError::MissingField("Hello.name"))
    );
    assert_eq!(
        Message::decode(&hello(true, false)),
        Err(WireError::MissingField("Hello.caps"))
    );

    let welcome = raw(|fbb| {
        let args = fb::WelcomeArgs {
            major: 1,
            minor: 0,
            server: None,
            session: 1,
        };
        (
            fb::Message::Welcome,
            fb::Welcome::create(fbb, &args).as_union_value(),
        )
    });
    assert_eq!(
        Message::decode(&welcome),
        Err(WireError::MissingField("Welcome.server"))
    );
    let changed = raw(|fbb| {
        let args = fb::CapabilitiesChangedArgs { caps: None };
        (
            fb::Message::CapabilitiesChanged,
            fb::CapabilitiesChanged::create(fbb, &args).as_union_value(),
        )
    });
    assert_eq!(
        Message::decode(&changed),
        Err(WireError::MissingField("CapabilitiesChanged.caps"))
    );
    let source = raw(|fbb| {
        let src = fb::CaptureSource::create(
            fbb,
            &fb::CaptureSourceArgs {
                id: 1,
                kind: fb::SourceKind::Camera,
                name: None,
            },
        );
        let sources = fbb.create_vector(&[src]);
        let caps = fb::Capabilities::create(
            fbb,
            &fb::CapabilitiesArgs {
                sources: Some(sources),
                ..Default::default()
            },
        );
        let args = fb::CapabilitiesChangedArgs { caps: Some(caps) };
        (
            fb::Message::CapabilitiesChanged,
            fb::CapabilitiesChanged::create(fbb, &args).as_union_value(),
        )
    });
    assert_eq!(
        Message::decode(&source),
        Err(WireError::MissingField("CaptureSource.name"))
    );
    let local = raw(|fbb| {
        let args = fb::CallLocalSdpArgs {
            session: 1,
            sdp: None,
        };
        (
            fb::Message::CallLocalSdp,
            fb::CallLocalSdp::create(fbb, &args).as_union_value(),
        )
    });
    assert_eq!(
        Message::decode(&local),
        Err(WireError::MissingField("CallLocalSdp.sdp"))
    );
    let remote = raw(|fbb| {
        let args = fb::CallRemoteSdpArgs {
            session: 1,
            sdp: None,
        };
        (
            fb::Message::CallRemoteSdp,
            fb::CallRemoteSdp::create(fbb, &args).as_union_value(),
        )
    });
    assert_eq!(
        Message::decode(&remote),
        Err(WireError::MissingField("CallRemoteSdp.sdp"))
    );
}

#[test]
fn union_problems() {
    // No message at all.
    let mut fbb = FlatBufferBuilder::new();
    let frame = fb::Frame::create(&mut fbb, &fb::FrameArgs::default());
    fb::finish_frame_buffer(&mut fbb, frame);
    assert_eq!(
        Message::decode(fbb.finished_data()),
        Err(WireError::MissingMessage)
    );
    // A type without its table (the verifier refuses it), and a table
    // without its type.
    let mut fbb = FlatBufferBuilder::new();
    let frame = fb::Frame::create(
        &mut fbb,
        &fb::FrameArgs {
            msg_type: fb::Message::Ping,
            msg: None,
        },
    );
    fb::finish_frame_buffer(&mut fbb, frame);
    assert!(matches!(
        Message::decode(fbb.finished_data()),
        Err(WireError::InvalidFlatBuffer(_))
    ));
    let bytes = raw(|fbb| {
        (
            fb::Message::NONE,
            fb::Ping::create(fbb, &fb::PingArgs { nonce: 1 }).as_union_value(),
        )
    });
    assert!(matches!(
        Message::decode(&bytes),
        Err(WireError::MissingMessage | WireError::InvalidFlatBuffer(_))
    ));
    // A union member of a later version.
    let bytes = raw(|fbb| {
        (
            fb::Message(35),
            fb::Ping::create(fbb, &fb::PingArgs { nonce: 1 }).as_union_value(),
        )
    });
    assert_eq!(Message::decode(&bytes), Err(WireError::UnknownMessage(35)));
    let bytes = raw(|fbb| {
        (
            fb::Message(255),
            fb::Ping::create(fbb, &fb::PingArgs { nonce: 1 }).as_union_value(),
        )
    });
    assert_eq!(Message::decode(&bytes), Err(WireError::UnknownMessage(255)));
}

#[test]
fn malformed_headers() {
    let good = Message::Ping { nonce: 7 }.to_header_bytes();
    assert_eq!(Message::decode(&[]), Err(WireError::HeaderLength(0)));
    assert_eq!(Message::decode(&good[..7]), Err(WireError::HeaderLength(7)));
    assert_eq!(
        Message::decode(&vec![0; MAX_HEADER_LEN + 1]),
        Err(WireError::HeaderLength(MAX_HEADER_LEN + 1))
    );
    // Wrong file identifier.
    let mut bad = good.clone();
    bad[4..8].copy_from_slice(b"MRW2");
    assert_eq!(Message::decode(&bad), Err(WireError::BadIdentifier));
    // Without identifier.
    let mut fbb = FlatBufferBuilder::new();
    let ping = fb::Ping::create(&mut fbb, &fb::PingArgs { nonce: 1 });
    let frame = fb::Frame::create(
        &mut fbb,
        &fb::FrameArgs {
            msg_type: fb::Message::Ping,
            msg: Some(ping.as_union_value()),
        },
    );
    fbb.finish(frame, None);
    assert_eq!(
        Message::decode(fbb.finished_data()),
        Err(WireError::BadIdentifier)
    );
    // Root offset out of bounds.
    let mut bad = good.clone();
    bad[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Message::decode(&bad),
        Err(WireError::InvalidFlatBuffer(_))
    ));
    // Truncated.
    assert!(matches!(
        Message::decode(&good[..good.len() - 4]),
        Err(WireError::InvalidFlatBuffer(_))
    ));
    // Every single-byte corruption yields a value or an error, never a panic.
    for i in 0..good.len() {
        for v in [0, 1, 0x7f, 0x80, 0xff] {
            let mut b = good.clone();
            b[i] = v;
            let _ = Message::decode(&b);
        }
    }
    // Invalid UTF-8 in a string.
    let hello = Message::Hello(Hello {
        major: 1,
        minor: 0,
        name: "abcd".into(),
        caps: Capabilities::default(),
    });
    let mut bytes = hello.to_header_bytes();
    let at = bytes.windows(4).position(|w| w == b"abcd").unwrap();
    bytes[at] = 0xff;
    assert!(matches!(
        Message::decode(&bytes),
        Err(WireError::InvalidFlatBuffer(_))
    ));
}

#[test]
fn verifier_bounds_table_count() {
    // 2000 references to one CodecCap table: small buffer, many tables.
    let bytes = raw(|fbb| {
        let cc = fb::CodecCap::create(
            fbb,
            &fb::CodecCapArgs {
                codec: fb::Codec::H264,
                flags: fb::CodecFlags::Decode,
                max_width: 0,
                max_height: 0,
            },
        );
        let codecs = fbb.create_vector(&vec![cc; 2000]);
        let caps = fb::Capabilities::create(
            fbb,
            &fb::CapabilitiesArgs {
                codecs: Some(codecs),
                ..Default::default()
            },
        );
        let args = fb::CapabilitiesChangedArgs { caps: Some(caps) };
        (
            fb::Message::CapabilitiesChanged,
            fb::CapabilitiesChanged::create(fbb, &args).as_union_value(),
        )
    });
    assert!(bytes.len() < MAX_HEADER_LEN);
    assert!(matches!(
        Message::decode(&bytes),
        Err(WireError::InvalidFlatBuffer(_))
    ));
}

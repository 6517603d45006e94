//! Tests of the decoder's own checks: unknown enumeration values and flag
//! bits, required fields, union members, malformed buffers and the
//! verifier's bounds.

use flatbuffers::FlatBufferBuilder;

use crate::wire::WireError;
use crate::wire::frame::MAX_HEADER_LEN;
use crate::wire::generated::mediaredir::wire as fb;
use crate::wire::message::encode::stream_args;
use crate::wire::message::fixtures::{raw, video_stream};
use crate::wire::message::{Capabilities, Hello, Message};

fn raw_stream(args: fb::CreateStreamArgs<'_>) -> Vec<u8> {
    raw(|fbb| {
        (
            fb::Message::CreateStream,
            fb::CreateStream::create(fbb, &args).as_union_value(),
        )
    })
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
        let mut args = stream_args(&video_stream(), None);
        args.codec = fb::Codec(codec);
        assert_eq!(
            Message::decode(&raw_stream(args)),
            Err(WireError::UnknownEnum {
                field: "CreateStream.codec",
                value
            })
        );
    }
    let mut args = stream_args(&video_stream(), None);
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

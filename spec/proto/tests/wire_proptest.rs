//! Property tests of the host-to-client wire module: decoders never panic on
//! any input, and every valid message survives encoding and framing.

use mediaredir_proto::wire::{
    CallAction, CallStats, Capabilities, CaptureSource, ClientFeatures, Codec, CodecCap,
    CodecFlags, CreateStream, Direction, FramePrefix, FrameReader, Hello, MAX_FRAME_LEN,
    MAX_HEADER_LEN, MAX_PAYLOAD_LEN, MediaMask, MediaParams, Message, PREFIX_LEN,
    PresentationFlags, PresentationState, Rect, SampleFlags, SampleHeader, SetGeometry, SourceKind,
    Status, TIME_NONE, Welcome, WireError, encode_frame,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Strategies for valid messages.

fn id() -> impl Strategy<Value = u32> {
    1..=u32::MAX
}

fn name() -> impl Strategy<Value = String> {
    // At most 64 chars of at most 4 bytes: within MAX_NAME_LEN.
    "\\PC{0,64}"
}

fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL.to_vec())
}

fn time() -> impl Strategy<Value = Option<u64>> {
    prop::option::of(0..TIME_NONE)
}

fn capabilities() -> impl Strategy<Value = Capabilities> {
    let codec = (
        prop::sample::select(Codec::ALL.to_vec()),
        0u32..8,
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(codec, flags, max_width, max_height)| CodecCap {
            codec,
            flags: CodecFlags::from_bits_truncate(flags),
            max_width,
            max_height,
        });
    let sources = prop::collection::btree_set(id(), 0..=32).prop_flat_map(|ids| {
        let n = ids.len();
        (
            Just(ids),
            prop::collection::vec((prop::sample::select(&SourceKind::ALL[..]), name()), n),
        )
            .prop_map(|(ids, rest)| {
                ids.into_iter()
                    .zip(rest)
                    .map(|(id, (kind, name))| CaptureSource { id, kind, name })
                    .collect::<Vec<_>>()
            })
    });
    (prop::collection::vec(codec, 0..=64), sources, 0u32..8).prop_map(
        |(codecs, sources, features)| Capabilities {
            codecs,
            sources,
            features: ClientFeatures::from_bits_truncate(features),
        },
    )
}

fn hello() -> impl Strategy<Value = Message> {
    (any::<u16>(), any::<u16>(), name(), capabilities()).prop_map(|(major, minor, name, caps)| {
        Message::Hello(Hello {
            major,
            minor,
            name,
            caps,
        })
    })
}

fn create_stream() -> impl Strategy<Value = Message> {
    (
        (
            id(),
            id(),
            prop::sample::select(Codec::ALL.to_vec()),
            any::<bool>(),
            id(),
        ),
        (1u32..=16384, 1u32..=16384, any::<u32>(), 1u32..=1000),
        (1u32..=384_000, 1u32..=8, any::<u32>()),
        prop::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(
            |(
                (id, presentation, codec, capture, source),
                (w, h, fps_num, fps_den),
                (rate, ch, bitrate),
                mut data,
            )| {
                let (direction, source) = if capture {
                    (Direction::Capture, source)
                } else {
                    (Direction::Playback, 0)
                };
                let video = codec.is_video();
                if codec == Codec::Opus && !capture && ch > 2 && data.is_empty() {
                    data.extend_from_slice(b"OpusHead");
                }
                Message::CreateStream(CreateStream {
                    id,
                    presentation,
                    direction,
                    codec,
                    media: MediaParams {
                        width: if video { w } else { 0 },
                        height: if video { h } else { 0 },
                        fps_num: if fps_num % 4 == 0 { 0 } else { fps_num },
                        fps_den,
                        sample_rate: if video { 0 } else { rate },
                        channels: if video { 0 } else { ch },
                        bitrate,
                    },
                    source,
                    codec_data: data,
                })
            },
        )
}

fn sample_header() -> impl Strategy<Value = SampleHeader> {
    (id(), 1..=u64::MAX, time(), time(), time(), any::<u32>()).prop_map(
        |(stream, seq, pts, dts, duration, flags)| SampleHeader {
            clip: Default::default(),
            stream,
            seq,
            pts,
            dts,
            duration,
            flags: SampleFlags::from_bits_truncate(flags),
        },
    )
}

fn sample() -> impl Strategy<Value = Message> {
    prop_oneof![
        sample_header().prop_map(Message::Sample),
        sample_header().prop_map(Message::CaptureSample),
    ]
}

fn ack() -> impl Strategy<Value = Message> {
    (id(), 1..=u64::MAX, status()).prop_map(|(stream, seq, status)| Message::Ack {
        stream,
        seq,
        status,
    })
}

fn rect(min_origin: i32) -> impl Strategy<Value = Rect> {
    (
        min_origin..=1_000_000,
        min_origin..=1_000_000,
        0u32..=100_000,
        0u32..=100_000,
    )
        .prop_map(|(x, y, w, h)| Rect::new(x, y, w, h))
}

fn set_geometry() -> impl Strategy<Value = Message> {
    (
        (id(), any::<u32>(), any::<bool>(), any::<i32>()),
        rect(-1_000_000),
        rect(0),
        prop::collection::vec(rect(-1_000_000), 0..=16),
        any::<bool>(),
    )
        .prop_map(
            |((presentation, display, visible, z), dest, source, clip, color_key)| {
                Message::SetGeometry(SetGeometry {
                    presentation,
                    display,
                    visible,
                    z,
                    dest,
                    source,
                    clip,
                    color_key,
                })
            },
        )
}

fn call_control() -> impl Strategy<Value = Message> {
    let mask = (1u32..=3).prop_map(MediaMask::from_bits_truncate);
    let action = prop_oneof![
        Just(CallAction::Start),
        Just(CallAction::Hold),
        Just(CallAction::Resume),
        Just(CallAction::End),
        mask.clone().prop_map(CallAction::Mute),
        mask.prop_map(CallAction::Unmute),
        (0u32..=15, 40u32..=5000)
            .prop_map(|(event, duration_ms)| CallAction::Dtmf { event, duration_ms }),
    ];
    (id(), action).prop_map(|(session, action)| Message::CallControl { session, action })
}

fn other() -> impl Strategy<Value = Message> {
    let error_status = prop::sample::select(&Status::ALL[1..]);
    prop_oneof![
        (any::<u16>(), any::<u16>(), name(), any::<u64>()).prop_map(
            |(major, minor, server, session)| Message::Welcome(Welcome {
                major,
                minor,
                server,
                session
            })
        ),
        capabilities().prop_map(Message::CapabilitiesChanged),
        (id(), 0u32..2).prop_map(|(id, f)| Message::CreatePresentation {
            id,
            flags: PresentationFlags::from_bits_truncate(f)
        }),
        (id(), any::<u64>()).prop_map(|(presentation, position_ns)| Message::Flush {
            presentation,
            position_ns
        }),
        (id(), 8192u32..=524_288).prop_map(|(presentation, rate_q16)| Message::SetRate {
            presentation,
            rate_q16
        }),
        (id(), 0u32..=262_144, any::<bool>()).prop_map(|(stream, volume_q16, mute)| {
            Message::SetVolume {
                stream,
                volume_q16,
                mute,
            }
        }),
        (id(), prop::sample::select(&PresentationState::ALL[..])).prop_map(
            |(presentation, state)| {
                Message::StateChanged {
                    presentation,
                    state,
                }
            }
        ),
        (id(), error_status.clone(), "\\PC{0,200}").prop_map(|(stream, status, message)| {
            Message::StreamError {
                stream,
                status,
                message,
            }
        }),
        (id(), any::<u64>(), any::<u64>(), any::<i64>()).prop_map(
            |(stream, rendered, dropped, jitter_ns)| Message::Qos {
                stream,
                rendered,
                dropped,
                jitter_ns
            }
        ),
        (id(), "\\PC{0,500}").prop_map(|(session, sdp)| Message::CallCreate { session, sdp }),
        (id(), "\\PC{1,500}").prop_map(|(session, sdp)| Message::CallLocalSdp { session, sdp }),
        (
            id(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            0u32..=500
        )
            .prop_map(
                |(session, jitter_us, packets_lost, packets_received, rtt_us, mos_x100)| {
                    Message::CallStats(CallStats {
                        session,
                        jitter_us,
                        packets_lost,
                        packets_received,
                        rtt_us,
                        mos_x100,
                    })
                }
            ),
        (id(), status(), "\\PC{0,200}").prop_map(|(session, status, reason)| Message::CallEnded {
            session,
            status,
            reason
        }),
        (id(), 0u32..=15).prop_map(|(session, event)| Message::CallDtmfReceived { session, event }),
        any::<u64>().prop_map(|nonce| Message::Ping { nonce }),
        any::<u64>().prop_map(|nonce| Message::Pong { nonce }),
        (error_status, any::<bool>(), "\\PC{0,200}").prop_map(|(status, fatal, message)| {
            Message::ProtocolError {
                status,
                fatal,
                message,
            }
        }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        hello(),
        create_stream(),
        sample(),
        ack(),
        set_geometry(),
        call_control(),
        other()
    ]
}

// ---------------------------------------------------------------------------
// Properties.

/// Feeds `r` the next at most `chunk` bytes of `rest` and moves `rest` past
/// the bytes it took (none on an error); how every reader test streams.
fn feed_chunk(r: &mut FrameReader, rest: &mut &[u8], chunk: usize) -> Result<usize, WireError> {
    let n = chunk.min(rest.len());
    let used = r.feed(&rest[..n])?;
    *rest = &rest[used..];
    Ok(used)
}

/// Named `wire::*` so that `cargo test wire` selects them.
mod wire {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn prefix_decode_never_panics(bytes in any::<[u8; PREFIX_LEN]>()) {
            if let Ok(p) = FramePrefix::decode(&bytes) {
                prop_assert_eq!(p.encode(), bytes);
                prop_assert!(p.header_len() <= MAX_HEADER_LEN);
                prop_assert!(p.payload_len() <= MAX_PAYLOAD_LEN);
            }
        }

        #[test]
        fn message_decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = Message::decode(&bytes);
        }

        #[test]
        fn message_decode_never_panics_on_identified_garbage(mut bytes in prop::collection::vec(any::<u8>(), 8..2048)) {
            // Pass the identifier check so the verifier sees the garbage.
            bytes[4..8].copy_from_slice(b"MRW1");
            let _ = Message::decode(&bytes);
        }

        #[test]
        fn corrupted_valid_headers_never_panic(
            msg in message(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = msg.to_header_bytes();
            for (at, v) in flips {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            if let Ok(m) = Message::decode(&bytes) {
                // Whatever decodes is valid and re-encodes to itself.
                prop_assert_eq!(m.validate(), Ok(()));
                prop_assert_eq!(Message::decode(&m.to_header_bytes()), Ok(m));
            }
        }

        #[test]
        fn reader_never_panics(
            bytes in prop::collection::vec(any::<u8>(), 0..4096),
            chunk in 1usize..64,
        ) {
            let mut r = FrameReader::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                match feed_chunk(&mut r, &mut rest, chunk) {
                    Ok(used) => {
                        if r.next_frame().is_none() && used == 0 {
                            break;
                        }
                    }
                    Err(_) => {
                        prop_assert!(r.is_failed());
                        prop_assert_eq!(r.feed(rest), Err(WireError::Desynchronized));
                        break;
                    }
                }
                prop_assert!(r.buffered() <= MAX_FRAME_LEN);
            }
        }

        #[test]
        fn reader_never_panics_behind_valid_prefix(
            header in prop::collection::vec(any::<u8>(), 8..1024),
            payload_len in 0usize..4096,
            chunk in 1usize..512,
        ) {
            let mut header = header;
            header[4..8].copy_from_slice(b"MRW1");
            let mut bytes = FramePrefix::new(header.len(), payload_len).unwrap().encode().to_vec();
            bytes.extend_from_slice(&header);
            bytes.resize(bytes.len() + payload_len, 0x5A);
            let mut r = FrameReader::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                if feed_chunk(&mut r, &mut rest, chunk).is_err() {
                    break;
                }
                if let Some((m, p)) = r.next_frame() {
                    prop_assert_eq!(p.len(), payload_len);
                    prop_assert!(payload_len == 0 || m.carries_payload());
                }
            }
        }

        #[test]
        fn valid_messages_round_trip(msg in message()) {
            prop_assert_eq!(msg.validate(), Ok(()));
            let header = msg.to_header_bytes();
            prop_assert!(header.len() <= MAX_HEADER_LEN);
            prop_assert_eq!(Message::decode(&header), Ok(msg));
        }

        #[test]
        fn framed_streams_round_trip(
            msgs in prop::collection::vec(
                (message(), prop::collection::vec(any::<u8>(), 0..300)),
                1..8,
            ),
            chunk in 1usize..700,
        ) {
            let mut bytes = Vec::new();
            let mut expect = Vec::new();
            for (m, payload) in msgs {
                let payload = if m.carries_payload() { payload } else { Vec::new() };
                bytes.extend_from_slice(&encode_frame(&m, payload.len()).unwrap());
                bytes.extend_from_slice(&payload);
                expect.push((m, payload));
            }
            let mut r = FrameReader::new();
            let mut got = Vec::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                feed_chunk(&mut r, &mut rest, chunk).unwrap();
                while let Some(f) = r.next_frame() {
                    got.push(f);
                }
            }
            prop_assert!(r.is_at_boundary());
            prop_assert_eq!(got, expect);
        }
    }
}

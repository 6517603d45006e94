//! Test values and helpers shared by the message tests: one valid example
//! of every message, builders for headers `Message::encode` would never
//! write, and the assertion that validation and decoding refuse alike.

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use super::{
    CallAction, CallStats, Capabilities, CaptureSource, CodecCap, CreateStream, Hello, Message,
    SampleHeader, SetGeometry, UNITY_Q16, Welcome,
};
use crate::control::StreamFormat;
use crate::media::MediaParams;
use crate::wire::WireError;
use crate::wire::generated::mediaredir::wire as fb;
use crate::wire::types::{
    ClientFeatures, Codec, CodecFlags, Direction, MediaMask, PresentationFlags, PresentationState,
    Rect, SampleFlags, SourceKind, Status,
};

pub(super) fn caps() -> Capabilities {
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

pub(super) fn video_stream() -> CreateStream {
    let mut format = StreamFormat {
        codec_data: vec![1, 0x64, 0, 0x28, 0xff, 0xe1],
        ..StreamFormat::video(Codec::H264, 0, 1920, 1080, 30000, 1001)
    };
    format.media.bitrate = 4_000_000;
    CreateStream::from_format(3, 1, &format)
}

pub(super) fn audio_stream() -> CreateStream {
    CreateStream::from_format(4, 1, &StreamFormat::audio(Codec::Opus, 0, 48000, 2))
}

pub(super) fn geometry() -> SetGeometry {
    SetGeometry {
        presentation: 1,
        display: 0,
        visible: true,
        z: -3,
        dest: Rect::new(-10, 20, 640, 360),
        source: Rect::default(),
        clip: vec![Rect::new(0, 0, 10, 10), Rect::new(100, 100, 5, 5)],
        color_key: false,
    }
}

pub(super) fn sample() -> SampleHeader {
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
pub(super) fn all_messages() -> Vec<Message> {
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
            color_key: true,
            ..geometry()
        }),
        Message::CreateStream(video_stream()),
        Message::CreateStream(audio_stream()),
        Message::CreateStream(CreateStream {
            direction: Direction::Capture,
            source: 7,
            codec: Codec::Vp8,
            media: MediaParams {
                fps_num: 0,
                fps_den: 0,
                ..video_stream().media
            },
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

pub(super) fn round_trip(m: &Message) -> Result<Message, WireError> {
    Message::decode(&m.to_header_bytes())
}

/// A header whose message is built by hand with the generated builders, so
/// tests can put on the wire what `Message::encode` never would.
pub(super) fn raw(
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

pub(super) fn err(m: Message) -> WireError {
    let e = m
        .validate()
        .expect_err("validate accepted an invalid message");
    // The decoder applies exactly the same rules.
    assert_eq!(round_trip(&m), Err(e.clone()), "{m:?}");
    e
}

pub(super) fn range(field: &'static str, value: u32, min: u32, max: u32) -> WireError {
    WireError::OutOfRange {
        field,
        value: i64::from(value),
        min: i64::from(min),
        max: i64::from(max),
    }
}

//! Typed messages: the union `Message` of `spec/schema/media_wire.fbs` as a
//! Rust enum, with its FlatBuffers encoding and a validating decoder.
//!
//! [`Message::decode`] runs the FlatBuffers verifier (bounded depth, table
//! count and apparent size) and then checks every field against the protocol:
//! known enumeration values and flag bits, required fields present, lengths
//! and counts within their limits, nonzero ids, ranges and cross-field rules.
//! [`Message::validate`] applies the same rules to a value built in Rust, so a
//! sender can never emit what its peer would reject.
//!
//! Rules that need state (which ids exist, which direction a message may
//! travel, what the current major version is) belong to the daemon and the
//! client engine, not here.

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, VerifierOptions, WIPOffset};

use super::WireError;
use super::frame::{MAX_HEADER_LEN, MIN_HEADER_LEN};
use super::generated::mediaredir::wire as fb;
use super::types::{
    CallOp, ClientFeatures, Codec, CodecFlags, Direction, MediaMask, PresentationFlags,
    PresentationState, Rect, SampleFlags, SourceKind, Status, TIME_NONE,
};
pub use crate::data::Clip;

/// Longest name (`Hello.name`, `Welcome.server`, `CaptureSource.name`), bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest human-readable text (`StreamError.message`, `CallEnded.reason`,
/// `ProtocolError.message`), bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Longest SDP, bytes (hard ceiling of the device's `max_sdp`).
pub const MAX_SDP_LEN: usize = crate::device::HARD_MAX_SDP as usize;
/// Longest codec data, bytes (hard ceiling of the device's `max_codec_data`).
pub const MAX_CODEC_DATA_LEN: usize = crate::device::HARD_MAX_CODEC_DATA as usize;
// Limits shared with the virtqueue requests: one definition each.
pub use crate::control::{
    MAX_CHANNELS, MAX_CLIP_RECTS, MAX_CODECS, MAX_DIMENSION, MAX_RATE_Q16, MAX_SAMPLE_RATE,
    MAX_SOURCES, MAX_VOLUME_Q16, MIN_RATE_Q16, UNITY_Q16,
};
/// Largest DTMF event code (RFC 4733).
pub const MAX_DTMF_EVENT: u32 = 15;
/// Shortest DTMF tone, milliseconds.
pub const MIN_DTMF_DURATION_MS: u32 = 40;
/// Longest DTMF tone, milliseconds.
pub const MAX_DTMF_DURATION_MS: u32 = 5000;
/// Largest mean opinion score x 100 (MOS 5.0); 0 means unknown.
pub const MAX_MOS_X100: u32 = 500;

/// Verifier limits: the deepest legal nesting is Frame > Hello >
/// Capabilities > vector > CaptureSource; the most tables a legal header has
/// is 3 + `MAX_CODECS` + `MAX_SOURCES`.
const VERIFIER_MAX_DEPTH: usize = 16;
const VERIFIER_MAX_TABLES: usize = 1024;
/// The verifier counts some bytes twice (offsets, then what they point to;
/// shared vtables once per table), so a legal header of `MAX_HEADER_LEN`
/// bytes can have a slightly larger apparent size; twice the header bounds
/// what a decoded message can occupy while leaving that headroom.
const VERIFIER_MAX_APPARENT_SIZE: usize = 2 * MAX_HEADER_LEN;

/// What a client can do with one codec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodecCap {
    /// The codec.
    pub codec: Codec,
    /// Decode, encode, RTP.
    pub flags: CodecFlags,
    /// Widest picture the client handles (0: not stated, or audio).
    pub max_width: u32,
    /// Tallest picture the client handles (0: not stated, or audio).
    pub max_height: u32,
}

/// A capture source of the client (microphone, camera, screen).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CaptureSource {
    /// Nonzero id, unique within one `Capabilities`.
    pub id: u32,
    /// Kind of source.
    pub kind: SourceKind,
    /// UTF-8 name, at most [`MAX_NAME_LEN`] bytes.
    pub name: String,
}

/// What the connected client can do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Capabilities {
    /// At most [`MAX_CODECS`] entries.
    pub codecs: Vec<CodecCap>,
    /// At most [`MAX_SOURCES`] entries with distinct ids.
    pub sources: Vec<CaptureSource>,
    /// Client features.
    pub features: ClientFeatures,
}

/// First frame, client to daemon.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hello {
    /// Client's major version (any value decodes; the daemon refuses a
    /// different major with a fatal `ProtocolError`).
    pub major: u16,
    /// Client's minor version.
    pub minor: u16,
    /// Client's name (required, at most [`MAX_NAME_LEN`] bytes).
    pub name: String,
    /// Client's capabilities (required).
    pub caps: Capabilities,
}

/// The daemon's answer to `Hello`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Welcome {
    /// Daemon's major version.
    pub major: u16,
    /// Daemon's minor version.
    pub minor: u16,
    /// Daemon's name (required, at most [`MAX_NAME_LEN`] bytes).
    pub server: String,
    /// Changes whenever the daemon restarts.
    pub session: u64,
}

/// Overlay geometry of a presentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetGeometry {
    /// Nonzero presentation id.
    pub presentation: u32,
    /// Guest display the coordinates refer to.
    pub display: u32,
    /// Whether the overlay is shown.
    pub visible: bool,
    /// Stacking order.
    pub z: i32,
    /// Where the picture goes, in display pixels (required on the wire).
    pub dest: Rect,
    /// Part of the picture shown, in picture pixels; all zero = whole
    /// picture. `x` and `y` are not negative.
    pub source: Rect,
    /// Visible parts of `dest`, at most [`MAX_CLIP_RECTS`]; empty = all.
    pub clip: Vec<Rect>,
}

/// Creation of a stream, with the rules of the virtqueue's `STREAM_CREATE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreateStream {
    /// Nonzero stream id.
    pub id: u32,
    /// Nonzero id of the presentation it belongs to.
    pub presentation: u32,
    /// Playback or capture.
    pub direction: Direction,
    /// The codec.
    pub codec: Codec,
    /// Video: 1..=[`MAX_DIMENSION`]; audio: 0.
    pub width: u32,
    /// Video: 1..=[`MAX_DIMENSION`]; audio: 0.
    pub height: u32,
    /// Frame rate numerator (0 = unknown).
    pub fps_num: u32,
    /// Frame rate denominator; nonzero when `fps_num` is.
    pub fps_den: u32,
    /// Audio: 1..=[`MAX_SAMPLE_RATE`]; video: 0.
    pub sample_rate: u32,
    /// Audio: 1..=[`MAX_CHANNELS`]; video: 0.
    pub channels: u32,
    /// Bits per second, a hint (playback) or target (capture); 0 = unset.
    pub bitrate: u32,
    /// Capture: nonzero client source id; playback: 0.
    pub source: u32,
    /// avcC, hvcC, OpusHead, ...; at most [`MAX_CODEC_DATA_LEN`] bytes.
    /// Required for Opus playback with more than 2 channels.
    pub codec_data: Vec<u8>,
}

/// Metadata of a media sample (`Sample` or `CaptureSample`); the sample's
/// bytes follow the header raw as the frame's payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SampleHeader {
    /// Nonzero stream id.
    pub stream: u32,
    /// Sequence number within the stream, from 1.
    pub seq: u64,
    /// Presentation time, ns.
    pub pts: Option<u64>,
    /// Decode time, ns.
    pub dts: Option<u64>,
    /// Duration, ns.
    pub duration: Option<u64>,
    /// Keyframe, discontinuity, ...
    pub flags: SampleFlags,
    /// Decoded samples to drop from this sample's audio (`Sample` only;
    /// always [`Clip::NONE`] in a `CaptureSample`).
    pub clip: Clip,
}

/// What a `CallControl` asks for; `arg` and `duration_ms` on the wire are
/// zero unless the operation uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallAction {
    /// Start the call's media.
    Start,
    /// Put the call on hold.
    Hold,
    /// Resume from hold.
    Resume,
    /// Mute the selected media (nonempty mask).
    Mute(MediaMask),
    /// Unmute the selected media (nonempty mask).
    Unmute(MediaMask),
    /// Send a DTMF tone.
    Dtmf {
        /// RFC 4733 event, 0..=[`MAX_DTMF_EVENT`].
        event: u32,
        /// [`MIN_DTMF_DURATION_MS`]..=[`MAX_DTMF_DURATION_MS`].
        duration_ms: u32,
    },
    /// End the call.
    End,
}

impl CallAction {
    /// The schema's operation code.
    pub const fn op(self) -> CallOp {
        match self {
            Self::Start => CallOp::Start,
            Self::Hold => CallOp::Hold,
            Self::Resume => CallOp::Resume,
            Self::Mute(_) => CallOp::Mute,
            Self::Unmute(_) => CallOp::Unmute,
            Self::Dtmf { .. } => CallOp::Dtmf,
            Self::End => CallOp::End,
        }
    }

    /// The wire's `(arg, duration_ms)`.
    const fn args(self) -> (u32, u32) {
        match self {
            Self::Mute(m) | Self::Unmute(m) => (m.bits(), 0),
            Self::Dtmf { event, duration_ms } => (event, duration_ms),
            Self::Start | Self::Hold | Self::Resume | Self::End => (0, 0),
        }
    }
}

/// Statistics of a call media session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallStats {
    /// Nonzero session id.
    pub session: u32,
    /// Interarrival jitter, microseconds.
    pub jitter_us: u32,
    /// Packets lost.
    pub packets_lost: u64,
    /// Packets received.
    pub packets_received: u64,
    /// Round-trip time, microseconds.
    pub rtt_us: u32,
    /// Mean opinion score x 100, 0..=[`MAX_MOS_X100`] (0 = unknown).
    pub mos_x100: u32,
}

/// One message of the host-to-client protocol: a member of the schema's
/// `Message` union. Ids named `id`, `presentation`, `stream` and `session`
/// are nonzero everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// Client to daemon, first frame.
    Hello(Hello),
    /// Daemon to client, answer to `Hello`.
    Welcome(Welcome),
    /// Client to daemon: capabilities changed.
    CapabilitiesChanged(Capabilities),
    /// Create a presentation.
    CreatePresentation {
        /// Presentation id.
        id: u32,
        /// Flags.
        flags: PresentationFlags,
    },
    /// Destroy a presentation and its streams.
    DestroyPresentation {
        /// Presentation id.
        id: u32,
    },
    /// Play a presentation.
    Play {
        /// Presentation id.
        presentation: u32,
    },
    /// Pause a presentation.
    Pause {
        /// Presentation id.
        presentation: u32,
    },
    /// Drop everything queued; next samples start a segment at `position_ns`.
    Flush {
        /// Presentation id.
        presentation: u32,
        /// New segment start, ns.
        position_ns: u64,
    },
    /// Set the playback rate.
    SetRate {
        /// Presentation id.
        presentation: u32,
        /// [`MIN_RATE_Q16`]..=[`MAX_RATE_Q16`], [`UNITY_Q16`] = normal.
        rate_q16: u32,
    },
    /// Set the overlay geometry.
    SetGeometry(SetGeometry),
    /// Create a stream.
    CreateStream(CreateStream),
    /// Destroy a stream.
    DestroyStream {
        /// Stream id.
        id: u32,
    },
    /// Set a stream's volume.
    SetVolume {
        /// Stream id.
        stream: u32,
        /// 0..=[`MAX_VOLUME_Q16`], [`UNITY_Q16`] = unity gain.
        volume_q16: u32,
        /// Muted.
        mute: bool,
    },
    /// A playback sample, daemon to client; its bytes are the payload.
    Sample(SampleHeader),
    /// Cumulative acknowledgement of samples up to `seq`.
    Ack {
        /// Stream id.
        stream: u32,
        /// Last sequence number consumed (nonzero).
        seq: u64,
        /// Ok, or why the samples were discarded.
        status: Status,
    },
    /// Start a capture stream.
    StartCapture {
        /// Stream id.
        stream: u32,
    },
    /// Stop a capture stream.
    StopCapture {
        /// Stream id.
        stream: u32,
    },
    /// A capture sample, client to daemon; its bytes are the payload.
    CaptureSample(SampleHeader),
    /// Next sample will be (or: please produce) a keyframe.
    RequestKeyframe {
        /// Stream id.
        stream: u32,
    },
    /// The client played the stream's last sample.
    EndOfStream {
        /// Stream id.
        stream: u32,
    },
    /// Playback position report.
    Position {
        /// Presentation id.
        presentation: u32,
        /// Position, ns.
        position_ns: u64,
    },
    /// A presentation changed state.
    StateChanged {
        /// Presentation id.
        presentation: u32,
        /// New state.
        state: PresentationState,
    },
    /// A stream failed.
    StreamError {
        /// Stream id.
        stream: u32,
        /// Why (never `Ok`).
        status: Status,
        /// Details, at most [`MAX_TEXT_LEN`] bytes (may be empty).
        message: String,
    },
    /// Quality of service of a stream.
    Qos {
        /// Stream id.
        stream: u32,
        /// Frames rendered.
        rendered: u64,
        /// Frames dropped.
        dropped: u64,
        /// Jitter, ns.
        jitter_ns: i64,
    },
    /// Create a call media session (empty `sdp`: client makes an offer).
    CallCreate {
        /// Session id.
        session: u32,
        /// Remote offer, at most [`MAX_SDP_LEN`] bytes, or empty.
        sdp: String,
    },
    /// Client to daemon: the local SDP of a session.
    CallLocalSdp {
        /// Session id.
        session: u32,
        /// Nonempty, at most [`MAX_SDP_LEN`] bytes.
        sdp: String,
    },
    /// Daemon to client: the remote answer to a local offer.
    CallRemoteSdp {
        /// Session id.
        session: u32,
        /// Nonempty, at most [`MAX_SDP_LEN`] bytes.
        sdp: String,
    },
    /// Control a call.
    CallControl {
        /// Session id.
        session: u32,
        /// The operation and its arguments.
        action: CallAction,
    },
    /// Call statistics.
    CallStats(CallStats),
    /// A call ended.
    CallEnded {
        /// Session id.
        session: u32,
        /// `Ok` for a normal end.
        status: Status,
        /// Details, at most [`MAX_TEXT_LEN`] bytes (may be empty).
        reason: String,
    },
    /// A DTMF event arrived from the remote peer.
    CallDtmfReceived {
        /// Session id.
        session: u32,
        /// RFC 4733 event, 0..=[`MAX_DTMF_EVENT`].
        event: u32,
    },
    /// Liveness probe.
    Ping {
        /// Echoed in the `Pong`.
        nonce: u64,
    },
    /// Answer to `Ping`.
    Pong {
        /// The `Ping`'s nonce.
        nonce: u64,
    },
    /// A protocol error; the sender closes the connection after it if `fatal`.
    ProtocolError {
        /// Why (never `Ok`).
        status: Status,
        /// Whether the connection ends.
        fatal: bool,
        /// Details, at most [`MAX_TEXT_LEN`] bytes (may be empty).
        message: String,
    },
}

// ---------------------------------------------------------------------------
// Field checks.

fn nonzero(v: u32, field: &'static str) -> Result<(), WireError> {
    if v == 0 {
        Err(WireError::ZeroId(field))
    } else {
        Ok(())
    }
}

fn max_len(len: usize, max: usize, field: &'static str) -> Result<(), WireError> {
    if len > max {
        Err(WireError::TooLong { field, len, max })
    } else {
        Ok(())
    }
}

fn max_count(count: usize, max: usize, field: &'static str) -> Result<(), WireError> {
    if count > max {
        Err(WireError::TooMany { field, count, max })
    } else {
        Ok(())
    }
}

fn in_range(v: u32, min: u32, max: u32, field: &'static str) -> Result<(), WireError> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(WireError::OutOfRange {
            field,
            value: i64::from(v),
            min: i64::from(min),
            max: i64::from(max),
        })
    }
}

fn rule(ok: bool, field: &'static str, rule: &'static str) -> Result<(), WireError> {
    if ok {
        Ok(())
    } else {
        Err(WireError::Inconsistent { field, rule })
    }
}

fn time(t: Option<u64>, field: &'static str) -> Result<(), WireError> {
    rule(
        t != Some(TIME_NONE),
        field,
        "Some(TIME_NONE) is not a time; use None",
    )
}

fn not_ok(s: Status, field: &'static str) -> Result<(), WireError> {
    rule(s != Status::Ok, field, "an error status must not be Ok")
}

fn rect(r: &Rect, field: &'static str) -> Result<(), WireError> {
    rule(
        r.extent_fits(),
        field,
        "x + width and y + height must fit in i32",
    )
}

impl Capabilities {
    /// Checks counts, names, ids and flags.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), WireError> {
        max_count(self.codecs.len(), MAX_CODECS, "Capabilities.codecs")?;
        max_count(self.sources.len(), MAX_SOURCES, "Capabilities.sources")?;
        for (i, s) in self.sources.iter().enumerate() {
            nonzero(s.id, "CaptureSource.id")?;
            max_len(s.name.len(), MAX_NAME_LEN, "CaptureSource.name")?;
            if self.sources[..i].iter().any(|t| t.id == s.id) {
                return Err(WireError::DuplicateId {
                    field: "CaptureSource.id",
                    id: s.id,
                });
            }
        }
        Ok(())
    }
}

impl SetGeometry {
    fn validate(&self) -> Result<(), WireError> {
        nonzero(self.presentation, "SetGeometry.presentation")?;
        rect(&self.dest, "SetGeometry.dest")?;
        rect(&self.source, "SetGeometry.source")?;
        rule(
            self.source.x >= 0 && self.source.y >= 0,
            "SetGeometry.source",
            "picture coordinates must not be negative",
        )?;
        max_count(self.clip.len(), MAX_CLIP_RECTS, "SetGeometry.clip")?;
        self.clip
            .iter()
            .try_for_each(|r| rect(r, "SetGeometry.clip"))
    }
}

impl CreateStream {
    fn validate(&self) -> Result<(), WireError> {
        nonzero(self.id, "CreateStream.id")?;
        nonzero(self.presentation, "CreateStream.presentation")?;
        if self.codec.is_video() {
            in_range(self.width, 1, MAX_DIMENSION, "CreateStream.width")?;
            in_range(self.height, 1, MAX_DIMENSION, "CreateStream.height")?;
            in_range(self.sample_rate, 0, 0, "CreateStream.sample_rate")?;
            in_range(self.channels, 0, 0, "CreateStream.channels")?;
        } else {
            in_range(self.width, 0, 0, "CreateStream.width")?;
            in_range(self.height, 0, 0, "CreateStream.height")?;
            in_range(
                self.sample_rate,
                1,
                MAX_SAMPLE_RATE,
                "CreateStream.sample_rate",
            )?;
            in_range(self.channels, 1, MAX_CHANNELS, "CreateStream.channels")?;
        }
        rule(
            self.fps_num == 0 || self.fps_den != 0,
            "CreateStream.fps_den",
            "must be nonzero when fps_num is",
        )?;
        match self.direction {
            Direction::Playback => rule(
                self.source == 0,
                "CreateStream.source",
                "must be 0 for playback",
            )?,
            Direction::Capture => nonzero(self.source, "CreateStream.source")?,
        }
        max_len(
            self.codec_data.len(),
            MAX_CODEC_DATA_LEN,
            "CreateStream.codec_data",
        )?;
        rule(
            !(self.codec == Codec::Opus
                && self.direction == Direction::Playback
                && self.channels > 2
                && self.codec_data.is_empty()),
            "CreateStream.codec_data",
            "Opus with more than 2 channels needs an OpusHead",
        )
    }
}

impl SampleHeader {
    fn validate(&self, capture: bool) -> Result<(), WireError> {
        let f = |sample: &'static str, capture_sample: &'static str| {
            if capture { capture_sample } else { sample }
        };
        nonzero(self.stream, f("Sample.stream", "CaptureSample.stream"))?;
        rule(
            self.seq != 0,
            f("Sample.seq", "CaptureSample.seq"),
            "sequence numbers start at 1",
        )?;
        time(self.pts, f("Sample.pts", "CaptureSample.pts"))?;
        time(self.dts, f("Sample.dts", "CaptureSample.dts"))?;
        time(
            self.duration,
            f("Sample.duration", "CaptureSample.duration"),
        )
    }
}

impl CallAction {
    fn validate(&self) -> Result<(), WireError> {
        match *self {
            Self::Mute(m) | Self::Unmute(m) => rule(
                !m.is_empty(),
                "CallControl.arg",
                "the media mask must not be empty",
            ),
            Self::Dtmf { event, duration_ms } => {
                in_range(event, 0, MAX_DTMF_EVENT, "CallControl.arg")?;
                in_range(
                    duration_ms,
                    MIN_DTMF_DURATION_MS,
                    MAX_DTMF_DURATION_MS,
                    "CallControl.duration_ms",
                )
            }
            Self::Start | Self::Hold | Self::Resume | Self::End => Ok(()),
        }
    }
}

impl Message {
    /// The schema name of the message (its union member).
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Hello(_) => "Hello",
            Self::Welcome(_) => "Welcome",
            Self::CapabilitiesChanged(_) => "CapabilitiesChanged",
            Self::CreatePresentation { .. } => "CreatePresentation",
            Self::DestroyPresentation { .. } => "DestroyPresentation",
            Self::Play { .. } => "Play",
            Self::Pause { .. } => "Pause",
            Self::Flush { .. } => "Flush",
            Self::SetRate { .. } => "SetRate",
            Self::SetGeometry(_) => "SetGeometry",
            Self::CreateStream(_) => "CreateStream",
            Self::DestroyStream { .. } => "DestroyStream",
            Self::SetVolume { .. } => "SetVolume",
            Self::Sample(_) => "Sample",
            Self::Ack { .. } => "Ack",
            Self::StartCapture { .. } => "StartCapture",
            Self::StopCapture { .. } => "StopCapture",
            Self::CaptureSample(_) => "CaptureSample",
            Self::RequestKeyframe { .. } => "RequestKeyframe",
            Self::EndOfStream { .. } => "EndOfStream",
            Self::Position { .. } => "Position",
            Self::StateChanged { .. } => "StateChanged",
            Self::StreamError { .. } => "StreamError",
            Self::Qos { .. } => "Qos",
            Self::CallCreate { .. } => "CallCreate",
            Self::CallLocalSdp { .. } => "CallLocalSdp",
            Self::CallRemoteSdp { .. } => "CallRemoteSdp",
            Self::CallControl { .. } => "CallControl",
            Self::CallStats(_) => "CallStats",
            Self::CallEnded { .. } => "CallEnded",
            Self::CallDtmfReceived { .. } => "CallDtmfReceived",
            Self::Ping { .. } => "Ping",
            Self::Pong { .. } => "Pong",
            Self::ProtocolError { .. } => "ProtocolError",
        }
    }

    /// Whether raw payload bytes may follow this message's header: only
    /// `Sample` and `CaptureSample` carry one.
    pub const fn carries_payload(&self) -> bool {
        matches!(self, Self::Sample(_) | Self::CaptureSample(_))
    }

    /// Checks every field against the protocol, as [`Message::decode`] does
    /// after parsing.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), WireError> {
        match self {
            Self::Hello(h) => {
                max_len(h.name.len(), MAX_NAME_LEN, "Hello.name")?;
                h.caps.validate()
            }
            Self::Welcome(w) => max_len(w.server.len(), MAX_NAME_LEN, "Welcome.server"),
            Self::CapabilitiesChanged(caps) => caps.validate(),
            Self::CreatePresentation { id, .. } => nonzero(*id, "CreatePresentation.id"),
            Self::DestroyPresentation { id } => nonzero(*id, "DestroyPresentation.id"),
            Self::Play { presentation } => nonzero(*presentation, "Play.presentation"),
            Self::Pause { presentation } => nonzero(*presentation, "Pause.presentation"),
            Self::Flush { presentation, .. } => nonzero(*presentation, "Flush.presentation"),
            Self::SetRate {
                presentation,
                rate_q16,
            } => {
                nonzero(*presentation, "SetRate.presentation")?;
                in_range(*rate_q16, MIN_RATE_Q16, MAX_RATE_Q16, "SetRate.rate_q16")
            }
            Self::SetGeometry(g) => g.validate(),
            Self::CreateStream(c) => c.validate(),
            Self::DestroyStream { id } => nonzero(*id, "DestroyStream.id"),
            Self::SetVolume {
                stream, volume_q16, ..
            } => {
                nonzero(*stream, "SetVolume.stream")?;
                in_range(*volume_q16, 0, MAX_VOLUME_Q16, "SetVolume.volume_q16")
            }
            Self::Sample(s) => s.validate(false),
            Self::Ack { stream, seq, .. } => {
                nonzero(*stream, "Ack.stream")?;
                rule(*seq != 0, "Ack.seq", "sequence numbers start at 1")
            }
            Self::StartCapture { stream } => nonzero(*stream, "StartCapture.stream"),
            Self::StopCapture { stream } => nonzero(*stream, "StopCapture.stream"),
            Self::CaptureSample(s) => s.validate(true),
            Self::RequestKeyframe { stream } => nonzero(*stream, "RequestKeyframe.stream"),
            Self::EndOfStream { stream } => nonzero(*stream, "EndOfStream.stream"),
            Self::Position { presentation, .. } => nonzero(*presentation, "Position.presentation"),
            Self::StateChanged { presentation, .. } => {
                nonzero(*presentation, "StateChanged.presentation")
            }
            Self::StreamError {
                stream,
                status,
                message,
            } => {
                nonzero(*stream, "StreamError.stream")?;
                not_ok(*status, "StreamError.status")?;
                max_len(message.len(), MAX_TEXT_LEN, "StreamError.message")
            }
            Self::Qos { stream, .. } => nonzero(*stream, "Qos.stream"),
            Self::CallCreate { session, sdp } => {
                nonzero(*session, "CallCreate.session")?;
                max_len(sdp.len(), MAX_SDP_LEN, "CallCreate.sdp")
            }
            Self::CallLocalSdp { session, sdp } => {
                nonzero(*session, "CallLocalSdp.session")?;
                rule(!sdp.is_empty(), "CallLocalSdp.sdp", "must not be empty")?;
                max_len(sdp.len(), MAX_SDP_LEN, "CallLocalSdp.sdp")
            }
            Self::CallRemoteSdp { session, sdp } => {
                nonzero(*session, "CallRemoteSdp.session")?;
                rule(!sdp.is_empty(), "CallRemoteSdp.sdp", "must not be empty")?;
                max_len(sdp.len(), MAX_SDP_LEN, "CallRemoteSdp.sdp")
            }
            Self::CallControl { session, action } => {
                nonzero(*session, "CallControl.session")?;
                action.validate()
            }
            Self::CallStats(s) => {
                nonzero(s.session, "CallStats.session")?;
                in_range(s.mos_x100, 0, MAX_MOS_X100, "CallStats.mos_x100")
            }
            Self::CallEnded {
                session, reason, ..
            } => {
                nonzero(*session, "CallEnded.session")?;
                max_len(reason.len(), MAX_TEXT_LEN, "CallEnded.reason")
            }
            Self::CallDtmfReceived { session, event } => {
                nonzero(*session, "CallDtmfReceived.session")?;
                in_range(*event, 0, MAX_DTMF_EVENT, "CallDtmfReceived.event")
            }
            Self::Ping { .. } | Self::Pong { .. } => Ok(()),
            Self::ProtocolError {
                status, message, ..
            } => {
                not_ok(*status, "ProtocolError.status")?;
                max_len(message.len(), MAX_TEXT_LEN, "ProtocolError.message")
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Encoding.

fn opt_time(t: Option<u64>) -> u64 {
    t.unwrap_or(TIME_NONE)
}

fn fb_rect(r: &Rect) -> fb::Rect {
    fb::Rect::new(r.x, r.y, r.width, r.height)
}

/// A string that is omitted from the buffer when empty.
fn opt_string<'f>(fbb: &mut FlatBufferBuilder<'f>, s: &str) -> Option<WIPOffset<&'f str>> {
    (!s.is_empty()).then(|| fbb.create_string(s))
}

fn build_caps<'f>(
    fbb: &mut FlatBufferBuilder<'f>,
    caps: &Capabilities,
) -> WIPOffset<fb::Capabilities<'f>> {
    let codecs: Vec<_> = caps
        .codecs
        .iter()
        .map(|c| {
            fb::CodecCap::create(
                fbb,
                &fb::CodecCapArgs {
                    codec: fb::Codec(c.codec.as_u32()),
                    flags: fb::CodecFlags::from_bits_retain(c.flags.bits()),
                    max_width: c.max_width,
                    max_height: c.max_height,
                },
            )
        })
        .collect();
    let sources: Vec<_> = caps
        .sources
        .iter()
        .map(|s| {
            let name = fbb.create_string(&s.name);
            fb::CaptureSource::create(
                fbb,
                &fb::CaptureSourceArgs {
                    id: s.id,
                    kind: fb::SourceKind(s.kind.raw()),
                    name: Some(name),
                },
            )
        })
        .collect();
    let codecs = fbb.create_vector(&codecs);
    let sources = fbb.create_vector(&sources);
    fb::Capabilities::create(
        fbb,
        &fb::CapabilitiesArgs {
            codecs: Some(codecs),
            sources: Some(sources),
            features: fb::ClientFeatures::from_bits_retain(caps.features.bits()),
        },
    )
}

fn sample_args(s: &SampleHeader) -> fb::SampleArgs {
    fb::SampleArgs {
        stream: s.stream,
        seq: s.seq,
        pts: opt_time(s.pts),
        dts: opt_time(s.dts),
        duration: opt_time(s.duration),
        flags: s.flags.bits(),
        clip_start: s.clip.start,
        clip_end: s.clip.end,
    }
}

impl Message {
    /// Encodes the message as a FlatBuffers header (root `Frame`, file
    /// identifier `"MRW1"`) in `fbb`, which is reset first, and returns the
    /// header's bytes.
    ///
    /// This does not validate the message and does not bound the header's
    /// size: [`encode_frame`](super::encode_frame) does both.
    pub fn encode<'b>(&self, fbb: &'b mut FlatBufferBuilder<'_>) -> &'b [u8] {
        fbb.reset();
        let (msg_type, msg) = self.build(fbb);
        let frame = fb::Frame::create(
            fbb,
            &fb::FrameArgs {
                msg_type,
                msg: Some(msg),
            },
        );
        fb::finish_frame_buffer(fbb, frame);
        fbb.finished_data()
    }

    /// Encodes the message into a new vector (see [`Message::encode`]).
    pub fn to_header_bytes(&self) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        self.encode(&mut fbb).to_vec()
    }

    fn build<'f>(
        &self,
        fbb: &mut FlatBufferBuilder<'f>,
    ) -> (fb::Message, WIPOffset<UnionWIPOffset>) {
        use fb::Message as T;
        match self {
            Self::Hello(h) => {
                let name = fbb.create_string(&h.name);
                let caps = build_caps(fbb, &h.caps);
                let args = fb::HelloArgs {
                    major: h.major,
                    minor: h.minor,
                    name: Some(name),
                    caps: Some(caps),
                };
                (T::Hello, fb::Hello::create(fbb, &args).as_union_value())
            }
            Self::Welcome(w) => {
                let server = fbb.create_string(&w.server);
                let args = fb::WelcomeArgs {
                    major: w.major,
                    minor: w.minor,
                    server: Some(server),
                    session: w.session,
                };
                (T::Welcome, fb::Welcome::create(fbb, &args).as_union_value())
            }
            Self::CapabilitiesChanged(caps) => {
                let caps = build_caps(fbb, caps);
                let args = fb::CapabilitiesChangedArgs { caps: Some(caps) };
                (
                    T::CapabilitiesChanged,
                    fb::CapabilitiesChanged::create(fbb, &args).as_union_value(),
                )
            }
            Self::CreatePresentation { id, flags } => {
                let args = fb::CreatePresentationArgs {
                    id: *id,
                    flags: flags.bits(),
                };
                (
                    T::CreatePresentation,
                    fb::CreatePresentation::create(fbb, &args).as_union_value(),
                )
            }
            Self::DestroyPresentation { id } => {
                let args = fb::DestroyPresentationArgs { id: *id };
                (
                    T::DestroyPresentation,
                    fb::DestroyPresentation::create(fbb, &args).as_union_value(),
                )
            }
            Self::Play { presentation } => {
                let args = fb::PlayArgs {
                    presentation: *presentation,
                };
                (T::Play, fb::Play::create(fbb, &args).as_union_value())
            }
            Self::Pause { presentation } => {
                let args = fb::PauseArgs {
                    presentation: *presentation,
                };
                (T::Pause, fb::Pause::create(fbb, &args).as_union_value())
            }
            Self::Flush {
                presentation,
                position_ns,
            } => {
                let args = fb::FlushArgs {
                    presentation: *presentation,
                    position_ns: *position_ns,
                };
                (T::Flush, fb::Flush::create(fbb, &args).as_union_value())
            }
            Self::SetRate {
                presentation,
                rate_q16,
            } => {
                let args = fb::SetRateArgs {
                    presentation: *presentation,
                    rate_q16: *rate_q16,
                };
                (T::SetRate, fb::SetRate::create(fbb, &args).as_union_value())
            }
            Self::SetGeometry(g) => {
                let clip: Vec<fb::Rect> = g.clip.iter().map(fb_rect).collect();
                let clip = (!clip.is_empty()).then(|| fbb.create_vector(&clip));
                let dest = fb_rect(&g.dest);
                let source = fb_rect(&g.source);
                let args = fb::SetGeometryArgs {
                    presentation: g.presentation,
                    display: g.display,
                    visible: g.visible,
                    z: g.z,
                    dest: Some(&dest),
                    source: Some(&source),
                    clip,
                };
                (
                    T::SetGeometry,
                    fb::SetGeometry::create(fbb, &args).as_union_value(),
                )
            }
            Self::CreateStream(c) => {
                let codec_data =
                    (!c.codec_data.is_empty()).then(|| fbb.create_vector(&c.codec_data));
                let args = fb::CreateStreamArgs {
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
                    codec_data,
                };
                (
                    T::CreateStream,
                    fb::CreateStream::create(fbb, &args).as_union_value(),
                )
            }
            Self::DestroyStream { id } => {
                let args = fb::DestroyStreamArgs { id: *id };
                (
                    T::DestroyStream,
                    fb::DestroyStream::create(fbb, &args).as_union_value(),
                )
            }
            Self::SetVolume {
                stream,
                volume_q16,
                mute,
            } => {
                let args = fb::SetVolumeArgs {
                    stream: *stream,
                    volume_q16: *volume_q16,
                    mute: *mute,
                };
                (
                    T::SetVolume,
                    fb::SetVolume::create(fbb, &args).as_union_value(),
                )
            }
            Self::Sample(s) => (
                T::Sample,
                fb::Sample::create(fbb, &sample_args(s)).as_union_value(),
            ),
            Self::Ack {
                stream,
                seq,
                status,
            } => {
                let args = fb::AckArgs {
                    stream: *stream,
                    seq: *seq,
                    status: fb::Status(status.as_u32()),
                };
                (T::Ack, fb::Ack::create(fbb, &args).as_union_value())
            }
            Self::StartCapture { stream } => {
                let args = fb::StartCaptureArgs { stream: *stream };
                (
                    T::StartCapture,
                    fb::StartCapture::create(fbb, &args).as_union_value(),
                )
            }
            Self::StopCapture { stream } => {
                let args = fb::StopCaptureArgs { stream: *stream };
                (
                    T::StopCapture,
                    fb::StopCapture::create(fbb, &args).as_union_value(),
                )
            }
            Self::CaptureSample(s) => {
                let a = sample_args(s);
                let args = fb::CaptureSampleArgs {
                    stream: a.stream,
                    seq: a.seq,
                    pts: a.pts,
                    dts: a.dts,
                    duration: a.duration,
                    flags: a.flags,
                };
                (
                    T::CaptureSample,
                    fb::CaptureSample::create(fbb, &args).as_union_value(),
                )
            }
            Self::RequestKeyframe { stream } => {
                let args = fb::RequestKeyframeArgs { stream: *stream };
                (
                    T::RequestKeyframe,
                    fb::RequestKeyframe::create(fbb, &args).as_union_value(),
                )
            }
            Self::EndOfStream { stream } => {
                let args = fb::EndOfStreamArgs { stream: *stream };
                (
                    T::EndOfStream,
                    fb::EndOfStream::create(fbb, &args).as_union_value(),
                )
            }
            Self::Position {
                presentation,
                position_ns,
            } => {
                let args = fb::PositionArgs {
                    presentation: *presentation,
                    position_ns: *position_ns,
                };
                (
                    T::Position,
                    fb::Position::create(fbb, &args).as_union_value(),
                )
            }
            Self::StateChanged {
                presentation,
                state,
            } => {
                let args = fb::StateChangedArgs {
                    presentation: *presentation,
                    state: fb::PresentationState(state.raw()),
                };
                (
                    T::StateChanged,
                    fb::StateChanged::create(fbb, &args).as_union_value(),
                )
            }
            Self::StreamError {
                stream,
                status,
                message,
            } => {
                let message = opt_string(fbb, message);
                let args = fb::StreamErrorArgs {
                    stream: *stream,
                    status: fb::Status(status.as_u32()),
                    message,
                };
                (
                    T::StreamError,
                    fb::StreamError::create(fbb, &args).as_union_value(),
                )
            }
            Self::Qos {
                stream,
                rendered,
                dropped,
                jitter_ns,
            } => {
                let args = fb::QosArgs {
                    stream: *stream,
                    rendered: *rendered,
                    dropped: *dropped,
                    jitter_ns: *jitter_ns,
                };
                (T::Qos, fb::Qos::create(fbb, &args).as_union_value())
            }
            Self::CallCreate { session, sdp } => {
                let sdp = opt_string(fbb, sdp);
                let args = fb::CallCreateArgs {
                    session: *session,
                    sdp,
                };
                (
                    T::CallCreate,
                    fb::CallCreate::create(fbb, &args).as_union_value(),
                )
            }
            Self::CallLocalSdp { session, sdp } => {
                let sdp = Some(fbb.create_string(sdp));
                let args = fb::CallLocalSdpArgs {
                    session: *session,
                    sdp,
                };
                (
                    T::CallLocalSdp,
                    fb::CallLocalSdp::create(fbb, &args).as_union_value(),
                )
            }
            Self::CallRemoteSdp { session, sdp } => {
                let sdp = Some(fbb.create_string(sdp));
                let args = fb::CallRemoteSdpArgs {
                    session: *session,
                    sdp,
                };
                (
                    T::CallRemoteSdp,
                    fb::CallRemoteSdp::create(fbb, &args).as_union_value(),
                )
            }
            Self::CallControl { session, action } => {
                let (arg, duration_ms) = action.args();
                let args = fb::CallControlArgs {
                    session: *session,
                    op: fb::CallOp(action.op().raw()),
                    arg,
                    duration_ms,
                };
                (
                    T::CallControl,
                    fb::CallControl::create(fbb, &args).as_union_value(),
                )
            }
            Self::CallStats(s) => {
                let args = fb::CallStatsArgs {
                    session: s.session,
                    jitter_us: s.jitter_us,
                    packets_lost: s.packets_lost,
                    packets_received: s.packets_received,
                    rtt_us: s.rtt_us,
                    mos_x100: s.mos_x100,
                };
                (
                    T::CallStats,
                    fb::CallStats::create(fbb, &args).as_union_value(),
                )
            }
            Self::CallEnded {
                session,
                status,
                reason,
            } => {
                let reason = opt_string(fbb, reason);
                let args = fb::CallEndedArgs {
                    session: *session,
                    status: fb::Status(status.as_u32()),
                    reason,
                };
                (
                    T::CallEnded,
                    fb::CallEnded::create(fbb, &args).as_union_value(),
                )
            }
            Self::CallDtmfReceived { session, event } => {
                let args = fb::CallDtmfReceivedArgs {
                    session: *session,
                    event: *event,
                };
                (
                    T::CallDtmfReceived,
                    fb::CallDtmfReceived::create(fbb, &args).as_union_value(),
                )
            }
            Self::Ping { nonce } => (
                T::Ping,
                fb::Ping::create(fbb, &fb::PingArgs { nonce: *nonce }).as_union_value(),
            ),
            Self::Pong { nonce } => (
                T::Pong,
                fb::Pong::create(fbb, &fb::PongArgs { nonce: *nonce }).as_union_value(),
            ),
            Self::ProtocolError {
                status,
                fatal,
                message,
            } => {
                let message = opt_string(fbb, message);
                let args = fb::ProtocolErrorArgs {
                    status: fb::Status(status.as_u32()),
                    fatal: *fatal,
                    message,
                };
                (
                    T::ProtocolError,
                    fb::ProtocolError::create(fbb, &args).as_union_value(),
                )
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding.

fn codec(v: fb::Codec, field: &'static str) -> Result<Codec, WireError> {
    Codec::from_u32(v.0)
        .ok()
        .ok_or(WireError::UnknownEnum { field, value: v.0 })
}

fn status(v: fb::Status, field: &'static str) -> Result<Status, WireError> {
    Status::from_u32(v.0)
        .ok()
        .ok_or(WireError::UnknownEnum { field, value: v.0 })
}

macro_rules! u8_enum {
    ($fn:ident, $fb:ty, $ty:ty) => {
        fn $fn(v: $fb, field: &'static str) -> Result<$ty, WireError> {
            <$ty>::from_raw(v.0).ok_or(WireError::UnknownEnum {
                field,
                value: u32::from(v.0),
            })
        }
    };
}
u8_enum!(direction, fb::Direction, Direction);
u8_enum!(source_kind, fb::SourceKind, SourceKind);
u8_enum!(presentation_state, fb::PresentationState, PresentationState);
u8_enum!(call_op, fb::CallOp, CallOp);

macro_rules! flags_of {
    ($fn:ident, $ty:ty) => {
        fn $fn(bits: u32, field: &'static str) -> Result<$ty, WireError> {
            <$ty>::from_bits(bits).ok_or(WireError::UnknownFlags {
                field,
                bits: bits & !<$ty>::ALL.bits(),
            })
        }
    };
}
flags_of!(codec_flags, CodecFlags);
flags_of!(client_features, ClientFeatures);
flags_of!(sample_flags, SampleFlags);
flags_of!(presentation_flags, PresentationFlags);
flags_of!(media_mask, MediaMask);

fn required<T>(v: Option<T>, field: &'static str) -> Result<T, WireError> {
    v.ok_or(WireError::MissingField(field))
}

fn time_of(t: u64) -> Option<u64> {
    (t != TIME_NONE).then_some(t)
}

fn rect_of(r: &fb::Rect) -> Rect {
    Rect::new(r.x(), r.y(), r.width(), r.height())
}

fn caps_of(c: fb::Capabilities<'_>) -> Result<Capabilities, WireError> {
    let codecs = c.codecs().unwrap_or_default();
    max_count(codecs.len(), MAX_CODECS, "Capabilities.codecs")?;
    let sources = c.sources().unwrap_or_default();
    max_count(sources.len(), MAX_SOURCES, "Capabilities.sources")?;
    Ok(Capabilities {
        codecs: codecs
            .iter()
            .map(|cc| {
                Ok(CodecCap {
                    codec: codec(cc.codec(), "CodecCap.codec")?,
                    flags: codec_flags(cc.flags().bits(), "CodecCap.flags")?,
                    max_width: cc.max_width(),
                    max_height: cc.max_height(),
                })
            })
            .collect::<Result<_, WireError>>()?,
        sources: sources
            .iter()
            .map(|s| {
                Ok(CaptureSource {
                    id: s.id(),
                    kind: source_kind(s.kind(), "CaptureSource.kind")?,
                    name: required(s.name(), "CaptureSource.name")?.to_owned(),
                })
            })
            .collect::<Result<_, WireError>>()?,
        features: client_features(c.features().bits(), "Capabilities.features")?,
    })
}

macro_rules! sample_of {
    ($s:expr, $table:literal) => {
        sample_of!($s, $table, |_| Clip::NONE)
    };
    ($s:expr, $table:literal, $clip:expr) => {{
        let s = $s;
        SampleHeader {
            clip: $clip(&s),
            stream: s.stream(),
            seq: s.seq(),
            pts: time_of(s.pts()),
            dts: time_of(s.dts()),
            duration: time_of(s.duration()),
            flags: sample_flags(s.flags(), concat!($table, ".flags"))?,
        }
    }};
}

fn verifier_options() -> VerifierOptions {
    VerifierOptions {
        max_depth: VERIFIER_MAX_DEPTH,
        max_tables: VERIFIER_MAX_TABLES,
        max_apparent_size: VERIFIER_MAX_APPARENT_SIZE,
        ignore_missing_null_terminator: false,
    }
}

impl Message {
    /// Parses and validates a header received from the peer.
    ///
    /// # Errors
    /// [`WireError::HeaderLength`] for a length outside
    /// `MIN_HEADER_LEN..=MAX_HEADER_LEN`, [`WireError::BadIdentifier`],
    /// [`WireError::InvalidFlatBuffer`] when the verifier rejects it,
    /// [`WireError::MissingMessage`] / [`WireError::UnknownMessage`] for the
    /// union, and any field error of [`Message::validate`].
    pub fn decode(header: &[u8]) -> Result<Self, WireError> {
        if !(MIN_HEADER_LEN..=MAX_HEADER_LEN).contains(&header.len()) {
            return Err(WireError::HeaderLength(header.len()));
        }
        if !fb::frame_buffer_has_identifier(header) {
            return Err(WireError::BadIdentifier);
        }
        let frame = fb::root_as_frame_with_opts(&verifier_options(), header)?;
        let msg = Self::parse(frame)?;
        msg.validate()?;
        Ok(msg)
    }

    fn parse(frame: fb::Frame<'_>) -> Result<Self, WireError> {
        use fb::Message as T;
        let missing = WireError::MissingMessage;
        Ok(match frame.msg_type() {
            T::NONE => return Err(missing),
            T::Hello => {
                let h = frame.msg_as_hello().ok_or(missing)?;
                Self::Hello(Hello {
                    major: h.major(),
                    minor: h.minor(),
                    name: required(h.name(), "Hello.name")?.to_owned(),
                    caps: caps_of(required(h.caps(), "Hello.caps")?)?,
                })
            }
            T::Welcome => {
                let w = frame.msg_as_welcome().ok_or(missing)?;
                Self::Welcome(Welcome {
                    major: w.major(),
                    minor: w.minor(),
                    server: required(w.server(), "Welcome.server")?.to_owned(),
                    session: w.session(),
                })
            }
            T::CapabilitiesChanged => {
                let c = frame.msg_as_capabilities_changed().ok_or(missing)?;
                Self::CapabilitiesChanged(caps_of(required(c.caps(), "CapabilitiesChanged.caps")?)?)
            }
            T::CreatePresentation => {
                let m = frame.msg_as_create_presentation().ok_or(missing)?;
                Self::CreatePresentation {
                    id: m.id(),
                    flags: presentation_flags(m.flags(), "CreatePresentation.flags")?,
                }
            }
            T::DestroyPresentation => {
                let m = frame.msg_as_destroy_presentation().ok_or(missing)?;
                Self::DestroyPresentation { id: m.id() }
            }
            T::Play => Self::Play {
                presentation: frame.msg_as_play().ok_or(missing)?.presentation(),
            },
            T::Pause => Self::Pause {
                presentation: frame.msg_as_pause().ok_or(missing)?.presentation(),
            },
            T::Flush => {
                let m = frame.msg_as_flush().ok_or(missing)?;
                Self::Flush {
                    presentation: m.presentation(),
                    position_ns: m.position_ns(),
                }
            }
            T::SetRate => {
                let m = frame.msg_as_set_rate().ok_or(missing)?;
                Self::SetRate {
                    presentation: m.presentation(),
                    rate_q16: m.rate_q16(),
                }
            }
            T::SetGeometry => {
                let m = frame.msg_as_set_geometry().ok_or(missing)?;
                let clip = m.clip().unwrap_or_default();
                max_count(clip.len(), MAX_CLIP_RECTS, "SetGeometry.clip")?;
                Self::SetGeometry(SetGeometry {
                    presentation: m.presentation(),
                    display: m.display(),
                    visible: m.visible(),
                    z: m.z(),
                    dest: rect_of(required(m.dest(), "SetGeometry.dest")?),
                    source: m.source().map(rect_of).unwrap_or_default(),
                    clip: clip.iter().map(rect_of).collect(),
                })
            }
            T::CreateStream => {
                let m = frame.msg_as_create_stream().ok_or(missing)?;
                let codec_data = m.codec_data().map(|v| v.bytes()).unwrap_or_default();
                max_len(
                    codec_data.len(),
                    MAX_CODEC_DATA_LEN,
                    "CreateStream.codec_data",
                )?;
                Self::CreateStream(CreateStream {
                    id: m.id(),
                    presentation: m.presentation(),
                    direction: direction(m.direction(), "CreateStream.direction")?,
                    codec: codec(m.codec(), "CreateStream.codec")?,
                    width: m.width(),
                    height: m.height(),
                    fps_num: m.fps_num(),
                    fps_den: m.fps_den(),
                    sample_rate: m.sample_rate(),
                    channels: m.channels(),
                    bitrate: m.bitrate(),
                    source: m.source(),
                    codec_data: codec_data.to_vec(),
                })
            }
            T::DestroyStream => Self::DestroyStream {
                id: frame.msg_as_destroy_stream().ok_or(missing)?.id(),
            },
            T::SetVolume => {
                let m = frame.msg_as_set_volume().ok_or(missing)?;
                Self::SetVolume {
                    stream: m.stream(),
                    volume_q16: m.volume_q16(),
                    mute: m.mute(),
                }
            }
            T::Sample => Self::Sample(sample_of!(
                frame.msg_as_sample().ok_or(missing)?,
                "Sample",
                |s: &fb::Sample| Clip {
                    start: s.clip_start(),
                    end: s.clip_end(),
                }
            )),
            T::Ack => {
                let m = frame.msg_as_ack().ok_or(missing)?;
                Self::Ack {
                    stream: m.stream(),
                    seq: m.seq(),
                    status: status(m.status(), "Ack.status")?,
                }
            }
            T::StartCapture => Self::StartCapture {
                stream: frame.msg_as_start_capture().ok_or(missing)?.stream(),
            },
            T::StopCapture => Self::StopCapture {
                stream: frame.msg_as_stop_capture().ok_or(missing)?.stream(),
            },
            T::CaptureSample => Self::CaptureSample(sample_of!(
                frame.msg_as_capture_sample().ok_or(missing)?,
                "CaptureSample"
            )),
            T::RequestKeyframe => Self::RequestKeyframe {
                stream: frame.msg_as_request_keyframe().ok_or(missing)?.stream(),
            },
            T::EndOfStream => Self::EndOfStream {
                stream: frame.msg_as_end_of_stream().ok_or(missing)?.stream(),
            },
            T::Position => {
                let m = frame.msg_as_position().ok_or(missing)?;
                Self::Position {
                    presentation: m.presentation(),
                    position_ns: m.position_ns(),
                }
            }
            T::StateChanged => {
                let m = frame.msg_as_state_changed().ok_or(missing)?;
                Self::StateChanged {
                    presentation: m.presentation(),
                    state: presentation_state(m.state(), "StateChanged.state")?,
                }
            }
            T::StreamError => {
                let m = frame.msg_as_stream_error().ok_or(missing)?;
                Self::StreamError {
                    stream: m.stream(),
                    status: status(m.status(), "StreamError.status")?,
                    message: m.message().unwrap_or_default().to_owned(),
                }
            }
            T::Qos => {
                let m = frame.msg_as_qos().ok_or(missing)?;
                Self::Qos {
                    stream: m.stream(),
                    rendered: m.rendered(),
                    dropped: m.dropped(),
                    jitter_ns: m.jitter_ns(),
                }
            }
            T::CallCreate => {
                let m = frame.msg_as_call_create().ok_or(missing)?;
                Self::CallCreate {
                    session: m.session(),
                    sdp: m.sdp().unwrap_or_default().to_owned(),
                }
            }
            T::CallLocalSdp => {
                let m = frame.msg_as_call_local_sdp().ok_or(missing)?;
                Self::CallLocalSdp {
                    session: m.session(),
                    sdp: required(m.sdp(), "CallLocalSdp.sdp")?.to_owned(),
                }
            }
            T::CallRemoteSdp => {
                let m = frame.msg_as_call_remote_sdp().ok_or(missing)?;
                Self::CallRemoteSdp {
                    session: m.session(),
                    sdp: required(m.sdp(), "CallRemoteSdp.sdp")?.to_owned(),
                }
            }
            T::CallControl => {
                let m = frame.msg_as_call_control().ok_or(missing)?;
                let (arg, duration_ms) = (m.arg(), m.duration_ms());
                let unused = |ok: bool| {
                    rule(
                        ok,
                        "CallControl.arg",
                        "arg and duration_ms must be 0 unless the operation uses them",
                    )
                };
                let plain =
                    |action: CallAction| unused(arg == 0 && duration_ms == 0).map(|()| action);
                let action = match call_op(m.op(), "CallControl.op")? {
                    CallOp::Start => plain(CallAction::Start)?,
                    CallOp::Hold => plain(CallAction::Hold)?,
                    CallOp::Resume => plain(CallAction::Resume)?,
                    CallOp::End => plain(CallAction::End)?,
                    CallOp::Mute => {
                        unused(duration_ms == 0)?;
                        CallAction::Mute(media_mask(arg, "CallControl.arg")?)
                    }
                    CallOp::Unmute => {
                        unused(duration_ms == 0)?;
                        CallAction::Unmute(media_mask(arg, "CallControl.arg")?)
                    }
                    CallOp::Dtmf => CallAction::Dtmf {
                        event: arg,
                        duration_ms,
                    },
                };
                Self::CallControl {
                    session: m.session(),
                    action,
                }
            }
            T::CallStats => {
                let m = frame.msg_as_call_stats().ok_or(missing)?;
                Self::CallStats(CallStats {
                    session: m.session(),
                    jitter_us: m.jitter_us(),
                    packets_lost: m.packets_lost(),
                    packets_received: m.packets_received(),
                    rtt_us: m.rtt_us(),
                    mos_x100: m.mos_x100(),
                })
            }
            T::CallEnded => {
                let m = frame.msg_as_call_ended().ok_or(missing)?;
                Self::CallEnded {
                    session: m.session(),
                    status: status(m.status(), "CallEnded.status")?,
                    reason: m.reason().unwrap_or_default().to_owned(),
                }
            }
            T::CallDtmfReceived => {
                let m = frame.msg_as_call_dtmf_received().ok_or(missing)?;
                Self::CallDtmfReceived {
                    session: m.session(),
                    event: m.event(),
                }
            }
            T::Ping => Self::Ping {
                nonce: frame.msg_as_ping().ok_or(missing)?.nonce(),
            },
            T::Pong => Self::Pong {
                nonce: frame.msg_as_pong().ok_or(missing)?.nonce(),
            },
            T::ProtocolError => {
                let m = frame.msg_as_protocol_error().ok_or(missing)?;
                Self::ProtocolError {
                    status: status(m.status(), "ProtocolError.status")?,
                    fatal: m.fatal(),
                    message: m.message().unwrap_or_default().to_owned(),
                }
            }
            other => return Err(WireError::UnknownMessage(other.0)),
        })
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;

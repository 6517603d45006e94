//! The structured bodies of messages: the members of [`Message`](super::Message)
//! that carry more than a few scalars (a client's capabilities, the
//! handshake, geometry, stream creation, sample metadata, call control and
//! statistics).
//!
//! They are plain data here; their rules are in `validate`, their wire form
//! in `encode` and `decode`.

use crate::control::StreamFormat;
use crate::data::Clip;
use crate::media::MediaParams;
use crate::wire::types::{
    CallOp, ClientFeatures, Codec, CodecFlags, Direction, MediaMask, Rect, SampleFlags, SourceKind,
};

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
    /// UTF-8 name, at most [`MAX_NAME_LEN`](super::MAX_NAME_LEN) bytes.
    pub name: String,
}

/// What the connected client can do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Capabilities {
    /// At most [`MAX_CODECS`](super::MAX_CODECS) entries.
    pub codecs: Vec<CodecCap>,
    /// At most [`MAX_SOURCES`](super::MAX_SOURCES) entries with distinct ids.
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
    /// Client's name (required, at most [`MAX_NAME_LEN`](super::MAX_NAME_LEN)
    /// bytes).
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
    /// Daemon's name (required, at most [`MAX_NAME_LEN`](super::MAX_NAME_LEN)
    /// bytes).
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
    /// Visible parts of `dest`, at most
    /// [`MAX_CLIP_RECTS`](super::MAX_CLIP_RECTS); empty = all.
    pub clip: Vec<Rect>,
    /// The guest paints `dest` in the colour key: the video shows only
    /// where the desktop shows the key (minor 2; absent = false).
    pub color_key: bool,
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
    /// Picture size, frame rate, sample rate, channels and bit rate; on the
    /// wire the frame rate denominator must be nonzero when the numerator
    /// is.
    pub media: MediaParams,
    /// Capture: nonzero client source id; playback: 0.
    pub source: u32,
    /// avcC, hvcC, OpusHead, ...; at most
    /// [`MAX_CODEC_DATA_LEN`](super::MAX_CODEC_DATA_LEN) bytes.
    /// Required for Opus playback with more than 2 channels.
    pub codec_data: Vec<u8>,
}

impl CreateStream {
    /// The wire's creation of stream `id` of `presentation` in `format`
    /// (what the device tells the client on a guest's `STREAM_CREATE`): the
    /// format's fields, its capture source as `source`; the playback data
    /// queue stays with the device.
    pub fn from_format(id: u32, presentation: u32, format: &StreamFormat) -> CreateStream {
        CreateStream {
            id,
            presentation,
            direction: format.direction,
            codec: format.codec,
            media: format.media,
            source: format.source_id,
            codec_data: format.codec_data.clone(),
        }
    }
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
        /// RFC 4733 event, 0..=[`MAX_DTMF_EVENT`](super::MAX_DTMF_EVENT).
        event: u32,
        /// [`MIN_DTMF_DURATION_MS`](super::MIN_DTMF_DURATION_MS)..=
        /// [`MAX_DTMF_DURATION_MS`](super::MAX_DTMF_DURATION_MS).
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
    /// Mean opinion score x 100, 0..=[`MAX_MOS_X100`](super::MAX_MOS_X100)
    /// (0 = unknown).
    pub mos_x100: u32,
}

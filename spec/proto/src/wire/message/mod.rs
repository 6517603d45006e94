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
//!
//! This file holds the [`Message`] enum and the protocol's limits; the rest
//! is split by job:
//!
//! - `bodies`: the structured message bodies ([`Hello`], [`CreateStream`],
//!   [`SampleHeader`], ...);
//! - `checks`: the per-field checks that validation and decoding share;
//! - `validate`: [`Message::validate`], every rule a message must follow;
//! - `encode`: [`Message::encode`], Rust value to FlatBuffers header;
//! - `decode`: [`Message::decode`], verified header to validated value.

mod bodies;
mod checks;
mod decode;
mod encode;
mod validate;

#[cfg(test)]
mod fixtures;

use super::types::{PresentationFlags, PresentationState, Status};
pub use crate::data::Clip;
pub use bodies::{
    CallAction, CallStats, Capabilities, CaptureSource, CodecCap, CreateStream, Hello,
    SampleHeader, SetGeometry, Welcome,
};

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
}

#[cfg(test)]
mod tests {
    use super::fixtures::all_messages;

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
}

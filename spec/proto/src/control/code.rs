//! Request codes: the number in a control header's `code` field, the
//! smallest writable part each request needs, and what its `target` names.

use crate::ProtoError;
use crate::enums::protocol_enum;

protocol_enum! {
    /// Request codes; the name is the spec's.
    pub enum RequestCode: u32 {
        /// What the connected client can decode and do.
        GetCaps = 0x0001 => "GET_CAPS",
        /// Whether the connected client can decode one exact format.
        CheckFormat = 0x0002 => "CHECK_FORMAT",
        /// The client's capture sources.
        EnumSources = 0x0003 => "ENUM_SOURCES",
        /// Create a presentation.
        PresCreate = 0x0100 => "PRES_CREATE",
        /// Destroy a presentation and its streams.
        PresDestroy = 0x0101 => "PRES_DESTROY",
        /// Play.
        PresPlay = 0x0102 => "PRES_PLAY",
        /// Pause.
        PresPause = 0x0103 => "PRES_PAUSE",
        /// Flush (seek).
        PresFlush = 0x0104 => "PRES_FLUSH",
        /// Set the playback rate.
        PresSetRate = 0x0105 => "PRES_SET_RATE",
        /// Set the overlay geometry.
        PresSetGeometry = 0x0106 => "PRES_SET_GEOMETRY",
        /// Query the position.
        PresQueryPosition = 0x0107 => "PRES_QUERY_POSITION",
        /// Create a stream in a presentation.
        StreamCreate = 0x0200 => "STREAM_CREATE",
        /// Destroy a stream.
        StreamDestroy = 0x0201 => "STREAM_DESTROY",
        /// Set a stream's volume and mute.
        StreamSetVolume = 0x0202 => "STREAM_SET_VOLUME",
        /// Start a capture stream.
        StreamStart = 0x0203 => "STREAM_START",
        /// Stop a capture stream.
        StreamStop = 0x0204 => "STREAM_STOP",
        /// Ask a capture stream for a keyframe.
        StreamRequestKeyframe = 0x0205 => "STREAM_REQUEST_KEYFRAME",
        /// Create a call media session.
        CallCreate = 0x0300 => "CALL_CREATE",
        /// Give a session the remote answer.
        CallSetRemote = 0x0301 => "CALL_SET_REMOTE",
        /// Start a session's media.
        CallStart = 0x0302 => "CALL_START",
        /// Hold or resume.
        CallHold = 0x0303 => "CALL_HOLD",
        /// Send a DTMF event.
        CallDtmf = 0x0304 => "CALL_DTMF",
        /// Mute or unmute media.
        CallMute = 0x0305 => "CALL_MUTE",
        /// Read statistics.
        CallStats = 0x0306 => "CALL_STATS",
        /// End a session.
        CallEnd = 0x0307 => "CALL_END",
    }
    unknown = ProtoError::UnknownRequest;
}

impl RequestCode {
    /// The smallest writable part a chain of this request must offer: the
    /// response header plus the largest fixed response body (lists may be
    /// truncated, an SDP may be `max_sdp` long). A device answers a shorter
    /// one `INVALID` without acting on the request.
    pub fn min_response_len(self, max_sdp: u32) -> usize {
        let body = match self {
            RequestCode::GetCaps => 16,
            RequestCode::EnumSources => 8,
            RequestCode::PresQueryPosition => 24,
            RequestCode::CallCreate => 8 + max_sdp as usize,
            RequestCode::CallStats => 32,
            _ => 0,
        };
        16 + body
    }

    /// What the header's `target` field names for this request.
    pub fn target_kind(self) -> TargetKind {
        use RequestCode::*;
        match self {
            GetCaps | CheckFormat | EnumSources | PresCreate | CallCreate => TargetKind::None,
            PresDestroy | PresPlay | PresPause | PresFlush | PresSetRate | PresSetGeometry
            | PresQueryPosition | StreamCreate => TargetKind::Presentation,
            StreamDestroy | StreamSetVolume | StreamStart | StreamStop | StreamRequestKeyframe => {
                TargetKind::Stream
            }
            CallSetRemote | CallStart | CallHold | CallDtmf | CallMute | CallStats | CallEnd => {
                TargetKind::Session
            }
        }
    }
}

/// What a request's `target` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Nothing: `target` must be 0.
    None,
    /// A presentation id.
    Presentation,
    /// A stream id.
    Stream,
    /// A call session id.
    Session,
}

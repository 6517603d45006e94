//! Request codes: the number in a control header's `code` field, the
//! smallest writable part each request needs, and what its `target` names.

use crate::ProtoError;

/// Request codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RequestCode {
    /// What the connected client can decode and do.
    GetCaps = 0x0001,
    /// Whether the connected client can decode one exact format.
    CheckFormat = 0x0002,
    /// The client's capture sources.
    EnumSources = 0x0003,
    /// Create a presentation.
    PresCreate = 0x0100,
    /// Destroy a presentation and its streams.
    PresDestroy = 0x0101,
    /// Play.
    PresPlay = 0x0102,
    /// Pause.
    PresPause = 0x0103,
    /// Flush (seek).
    PresFlush = 0x0104,
    /// Set the playback rate.
    PresSetRate = 0x0105,
    /// Set the overlay geometry.
    PresSetGeometry = 0x0106,
    /// Query the position.
    PresQueryPosition = 0x0107,
    /// Create a stream in a presentation.
    StreamCreate = 0x0200,
    /// Destroy a stream.
    StreamDestroy = 0x0201,
    /// Set a stream's volume and mute.
    StreamSetVolume = 0x0202,
    /// Start a capture stream.
    StreamStart = 0x0203,
    /// Stop a capture stream.
    StreamStop = 0x0204,
    /// Ask a capture stream for a keyframe.
    StreamRequestKeyframe = 0x0205,
    /// Create a call media session.
    CallCreate = 0x0300,
    /// Give a session the remote answer.
    CallSetRemote = 0x0301,
    /// Start a session's media.
    CallStart = 0x0302,
    /// Hold or resume.
    CallHold = 0x0303,
    /// Send a DTMF event.
    CallDtmf = 0x0304,
    /// Mute or unmute media.
    CallMute = 0x0305,
    /// Read statistics.
    CallStats = 0x0306,
    /// End a session.
    CallEnd = 0x0307,
}

impl RequestCode {
    /// Every request code.
    pub const ALL: [RequestCode; 25] = [
        RequestCode::GetCaps,
        RequestCode::CheckFormat,
        RequestCode::EnumSources,
        RequestCode::PresCreate,
        RequestCode::PresDestroy,
        RequestCode::PresPlay,
        RequestCode::PresPause,
        RequestCode::PresFlush,
        RequestCode::PresSetRate,
        RequestCode::PresSetGeometry,
        RequestCode::PresQueryPosition,
        RequestCode::StreamCreate,
        RequestCode::StreamDestroy,
        RequestCode::StreamSetVolume,
        RequestCode::StreamStart,
        RequestCode::StreamStop,
        RequestCode::StreamRequestKeyframe,
        RequestCode::CallCreate,
        RequestCode::CallSetRemote,
        RequestCode::CallStart,
        RequestCode::CallHold,
        RequestCode::CallDtmf,
        RequestCode::CallMute,
        RequestCode::CallStats,
        RequestCode::CallEnd,
    ];

    /// Decodes a request code.
    pub fn from_u32(value: u32) -> Result<RequestCode, ProtoError> {
        RequestCode::ALL
            .iter()
            .copied()
            .find(|c| *c as u32 == value)
            .ok_or(ProtoError::UnknownRequest(value))
    }

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

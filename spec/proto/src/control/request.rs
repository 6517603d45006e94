//! A decoded control request: its header fields and the request with its
//! validated body, one variant per request code.

use super::{Geometry, RequestCode, StreamFormat};

/// A decoded control request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRequest {
    /// Generation the driver believes the device has.
    pub generation: u32,
    /// Presentation, stream or session id (0 when the request has none).
    pub target: u32,
    /// The request itself.
    pub request: Request,
}

/// A request with its validated body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `GET_CAPS`.
    GetCaps,
    /// `CHECK_FORMAT`.
    CheckFormat(StreamFormat),
    /// `ENUM_SOURCES`.
    EnumSources,
    /// `PRES_CREATE`.
    PresCreate {
        /// Live source (no preroll).
        live: bool,
    },
    /// `PRES_DESTROY`.
    PresDestroy,
    /// `PRES_PLAY`.
    PresPlay,
    /// `PRES_PAUSE`.
    PresPause,
    /// `PRES_FLUSH`.
    PresFlush {
        /// Where the next buffers start.
        position_ns: u64,
    },
    /// `PRES_SET_RATE`.
    PresSetRate {
        /// Rate in 1/65536 units.
        rate_q16: u32,
    },
    /// `PRES_SET_GEOMETRY`.
    PresSetGeometry(Geometry),
    /// `PRES_QUERY_POSITION`.
    PresQueryPosition,
    /// `STREAM_CREATE`.
    StreamCreate(StreamFormat),
    /// `STREAM_DESTROY`.
    StreamDestroy,
    /// `STREAM_SET_VOLUME`.
    StreamSetVolume {
        /// Gain in 1/65536 units.
        volume_q16: u32,
        /// Muted.
        mute: bool,
    },
    /// `STREAM_START`.
    StreamStart,
    /// `STREAM_STOP`.
    StreamStop,
    /// `STREAM_REQUEST_KEYFRAME`.
    StreamRequestKeyframe,
    /// `CALL_CREATE`: `sdp` is `None` when the client must produce an offer.
    CallCreate {
        /// The remote offer, or `None` for a local offer.
        sdp: Option<String>,
    },
    /// `CALL_SET_REMOTE`.
    CallSetRemote {
        /// The remote answer.
        sdp: String,
    },
    /// `CALL_START`.
    CallStart,
    /// `CALL_HOLD`.
    CallHold {
        /// Hold (true) or resume (false).
        hold: bool,
    },
    /// `CALL_DTMF`.
    CallDtmf {
        /// RFC 4733 event code.
        event: u32,
        /// Duration in milliseconds.
        duration_ms: u32,
    },
    /// `CALL_MUTE`.
    CallMute {
        /// Media mask (audio 1, video 2).
        media: u32,
        /// Mute or unmute.
        mute: bool,
    },
    /// `CALL_STATS`.
    CallStats,
    /// `CALL_END`.
    CallEnd,
}

impl Request {
    /// The request's code.
    pub fn code(&self) -> RequestCode {
        match self {
            Request::GetCaps => RequestCode::GetCaps,
            Request::CheckFormat(_) => RequestCode::CheckFormat,
            Request::EnumSources => RequestCode::EnumSources,
            Request::PresCreate { .. } => RequestCode::PresCreate,
            Request::PresDestroy => RequestCode::PresDestroy,
            Request::PresPlay => RequestCode::PresPlay,
            Request::PresPause => RequestCode::PresPause,
            Request::PresFlush { .. } => RequestCode::PresFlush,
            Request::PresSetRate { .. } => RequestCode::PresSetRate,
            Request::PresSetGeometry(_) => RequestCode::PresSetGeometry,
            Request::PresQueryPosition => RequestCode::PresQueryPosition,
            Request::StreamCreate(_) => RequestCode::StreamCreate,
            Request::StreamDestroy => RequestCode::StreamDestroy,
            Request::StreamSetVolume { .. } => RequestCode::StreamSetVolume,
            Request::StreamStart => RequestCode::StreamStart,
            Request::StreamStop => RequestCode::StreamStop,
            Request::StreamRequestKeyframe => RequestCode::StreamRequestKeyframe,
            Request::CallCreate { .. } => RequestCode::CallCreate,
            Request::CallSetRemote { .. } => RequestCode::CallSetRemote,
            Request::CallStart => RequestCode::CallStart,
            Request::CallHold { .. } => RequestCode::CallHold,
            Request::CallDtmf { .. } => RequestCode::CallDtmf,
            Request::CallMute { .. } => RequestCode::CallMute,
            Request::CallStats => RequestCode::CallStats,
            Request::CallEnd => RequestCode::CallEnd,
        }
    }
}

//! The control queue: requests, their bodies and the device's responses
//! (spec, "Control requests").
//!
//! A control chain is `[readable: ctrl_hdr + body][writable: resp_hdr +
//! response body]`. [`ControlRequest::decode`] turns the readable bytes into a
//! validated request or a [`ProtoError`] whose [`ProtoError::status`] is what
//! the device answers. Which request is legal in which state is the daemon's
//! business, not this module's.

use zerocopy::little_endian::{I32, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::ProtoError;
use crate::codec::{Codec, MediaKind};
use crate::device::{DeviceConfig, HARD_MAX_CODEC_DATA, HARD_MAX_SDP};
use crate::status::Status;

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

/// `struct virtio_media_redir_ctrl_hdr` (16 bytes).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RawCtrlHdr {
    /// Request code.
    pub code: U32,
    /// Generation the driver read from the configuration space.
    pub generation: U32,
    /// Presentation, stream or session id; 0 when the request has none.
    pub target: U32,
    /// Reserved, zero.
    pub reserved: U32,
}

/// `struct virtio_media_redir_resp_hdr` (16 bytes).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RawRespHdr {
    /// Status code.
    pub status: U32,
    /// Created id, or the target echoed.
    pub id: U32,
    /// Reserved, zero.
    pub reserved: [U32; 2],
}

/// `struct virtio_media_redir_stream_format` (48 bytes); codec data follows.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RawStreamFormat {
    /// Codec number.
    pub codec: U32,
    /// 0 playback, 1 capture.
    pub direction: U32,
    /// Playback: txq index; capture: 0.
    pub txq: U32,
    /// Capture: the client's source id; playback: 0.
    pub source_id: U32,
    /// Video width (pixels); 0 for audio.
    pub width: U32,
    /// Video height (pixels); 0 for audio.
    pub height: U32,
    /// Frame rate numerator; 0 if unknown.
    pub fps_num: U32,
    /// Frame rate denominator; 0 if unknown.
    pub fps_den: U32,
    /// Audio sample rate (Hz); 0 for video.
    pub sample_rate: U32,
    /// Audio channels; 0 for video.
    pub channels: U32,
    /// Bit rate hint or capture target (bit/s); 0 if unset.
    pub bitrate: U32,
    /// Bytes of codec data that follow.
    pub codec_data_len: U32,
}

/// `struct virtio_media_redir_rect` (16 bytes).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RawRect {
    /// Left edge.
    pub x: I32,
    /// Top edge.
    pub y: I32,
    /// Width.
    pub width: U32,
    /// Height.
    pub height: U32,
}

/// `struct virtio_media_redir_geometry` (48 bytes); clip rects follow.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RawGeometry {
    /// Guest display (monitor) index.
    pub display_id: U32,
    /// Bit 0: visible.
    pub flags: U32,
    /// Stacking order; higher is nearer the viewer.
    pub z: I32,
    /// Number of clip rectangles that follow (at most 16).
    pub num_clip_rects: U32,
    /// Where the video goes, in display pixels.
    pub dest: RawRect,
    /// Part of the picture shown; all zero means the whole picture.
    pub source: RawRect,
}

/// Two 32-bit words: the body of several small requests.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RawPair {
    /// First word (flags, rate, volume, hold, event, media mask, sdp_len).
    pub a: U32,
    /// Second word (reserved, mute, duration, sdp_len).
    pub b: U32,
}

/// Body of `PRES_FLUSH` (16 bytes).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RawFlush {
    /// Where the next buffers start (ns).
    pub position_ns: U64,
    /// Reserved, zero.
    pub flags: U32,
    /// Reserved, zero.
    pub reserved: U32,
}

/// Most clip rectangles in a geometry.
pub const MAX_CLIP_RECTS: usize = 16;
/// Most codec entries in a capabilities response.
pub const MAX_CODECS: usize = 64;
/// Most capture sources in a sources response.
pub const MAX_SOURCES: usize = 32;
/// Largest video dimension.
pub const MAX_DIMENSION: u32 = 16384;
/// Largest audio sample rate.
pub const MAX_SAMPLE_RATE: u32 = 384_000;
/// Most audio channels.
pub const MAX_CHANNELS: u32 = 8;
/// Slowest rate, 1/8x, in 1/65536 units.
pub const MIN_RATE_Q16: u32 = 8192;
/// Fastest rate, 8x, in 1/65536 units.
pub const MAX_RATE_Q16: u32 = 524_288;
/// Unity rate or gain in 1/65536 units.
pub const UNITY_Q16: u32 = 65536;
/// Loudest volume, 4x, in 1/65536 units.
pub const MAX_VOLUME_Q16: u32 = 262_144;
/// Largest coordinate magnitude in a rectangle.
pub const MAX_COORDINATE: i32 = 65535;
/// `PRES_CREATE` flag: a live source (no preroll).
pub const PRES_FLAG_LIVE: u32 = 1;
/// Geometry flag: the overlay is visible.
pub const GEOMETRY_FLAG_VISIBLE: u32 = 1;
/// `CALL_CREATE` flag: the client produces the local offer.
pub const CALL_FLAG_OFFER: u32 = 1;
/// Call media mask bit: audio.
pub const CALL_MEDIA_AUDIO: u32 = 1;
/// Call media mask bit: video.
pub const CALL_MEDIA_VIDEO: u32 = 2;

/// Size limits a decoder enforces, from the device configuration (never
/// above the spec's hard ceilings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest codec data.
    pub max_codec_data: u32,
    /// Largest SDP.
    pub max_sdp: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_codec_data: HARD_MAX_CODEC_DATA,
            max_sdp: HARD_MAX_SDP,
        }
    }
}

impl From<&DeviceConfig> for Limits {
    fn from(config: &DeviceConfig) -> Self {
        Limits {
            max_codec_data: config.max_codec_data.min(HARD_MAX_CODEC_DATA),
            max_sdp: config.max_sdp.min(HARD_MAX_SDP),
        }
    }
}

impl Limits {
    /// The longest readable part a valid control chain can have: a device
    /// refuses longer chains with `LIMIT` before reading them.
    pub fn max_request_len(&self) -> usize {
        let variable = self.max_codec_data.max(self.max_sdp) as usize;
        size_of::<RawCtrlHdr>() + size_of::<RawStreamFormat>() + variable
    }
}

/// Direction of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Guest to client.
    Playback,
    /// Client to guest.
    Capture,
}

/// A validated stream format with its codec data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFormat {
    /// Codec.
    pub codec: Codec,
    /// Direction.
    pub direction: Direction,
    /// Playback data queue (playback only).
    pub txq: u32,
    /// Client capture source (capture only).
    pub source_id: u32,
    /// Video width; 0 for audio.
    pub width: u32,
    /// Video height; 0 for audio.
    pub height: u32,
    /// Frame rate numerator; 0 if unknown.
    pub fps_num: u32,
    /// Frame rate denominator; 0 if unknown.
    pub fps_den: u32,
    /// Audio sample rate; 0 for video.
    pub sample_rate: u32,
    /// Audio channels; 0 for video.
    pub channels: u32,
    /// Bit rate hint/target; 0 if unset.
    pub bitrate: u32,
    /// Codec configuration data (avcC, OpusHead, ...).
    pub codec_data: Vec<u8>,
}

/// A rectangle in display pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// Overlay geometry of a presentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// Guest display index.
    pub display_id: u32,
    /// Whether the overlay is shown.
    pub visible: bool,
    /// Stacking order.
    pub z: i32,
    /// Destination rectangle.
    pub dest: Rect,
    /// Source rectangle; all zero means the whole picture.
    pub source: Rect,
    /// Visible parts of `dest`; empty means all of it.
    pub clip: Vec<Rect>,
}

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

/// Reads a fixed-size structure from the front of `bytes`.
pub(crate) fn read_prefix<'a, T: FromBytes + KnownLayout + Immutable>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<(T, &'a [u8]), ProtoError> {
    T::read_from_prefix(bytes).map_err(|_| ProtoError::Truncated {
        what,
        need: size_of::<T>(),
        got: bytes.len(),
    })
}

/// Fails when bytes remain after a structure.
pub(crate) fn expect_end(rest: &[u8], what: &'static str) -> Result<(), ProtoError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(ProtoError::TrailingBytes {
            what,
            extra: rest.len(),
        })
    }
}

pub(crate) fn invalid(
    field: &'static str,
    value: impl Into<u64>,
    reason: &'static str,
) -> ProtoError {
    ProtoError::InvalidField {
        field,
        value: value.into(),
        reason,
    }
}

fn bool_field(field: &'static str, value: u32) -> Result<bool, ProtoError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(invalid(field, other, "must be 0 or 1")),
    }
}

/// Splits a `len`-byte variable part off `rest`, which must hold exactly it.
fn take_exact<'a>(
    rest: &'a [u8],
    len: u32,
    max: u32,
    what: &'static str,
) -> Result<&'a [u8], ProtoError> {
    if len > max {
        return Err(ProtoError::TooLarge {
            what,
            len: u64::from(len),
            max: u64::from(max),
        });
    }
    let len = len as usize;
    if rest.len() < len {
        return Err(ProtoError::Truncated {
            what,
            need: len,
            got: rest.len(),
        });
    }
    expect_end(&rest[len..], what)?;
    Ok(&rest[..len])
}

/// Decodes SDP text: UTF-8 without NUL.
pub(crate) fn sdp_text(bytes: &[u8]) -> Result<String, ProtoError> {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => Ok(text.to_owned()),
        _ => Err(ProtoError::BadText("sdp")),
    }
}

impl Rect {
    fn from_raw(raw: &RawRect, field: &'static str) -> Result<Rect, ProtoError> {
        let rect = Rect {
            x: raw.x.get(),
            y: raw.y.get(),
            width: raw.width.get(),
            height: raw.height.get(),
        };
        if rect.x.unsigned_abs() > MAX_COORDINATE.unsigned_abs()
            || rect.y.unsigned_abs() > MAX_COORDINATE.unsigned_abs()
        {
            return Err(invalid(
                field,
                rect.x.unsigned_abs().max(rect.y.unsigned_abs()),
                "coordinate beyond +-65535",
            ));
        }
        if rect.width > MAX_DIMENSION || rect.height > MAX_DIMENSION {
            return Err(invalid(
                field,
                rect.width.max(rect.height),
                "size beyond 16384",
            ));
        }
        Ok(rect)
    }

    fn to_raw(self) -> RawRect {
        RawRect {
            x: self.x.into(),
            y: self.y.into(),
            width: self.width.into(),
            height: self.height.into(),
        }
    }
}

impl StreamFormat {
    /// Decodes a stream format and its codec data; `rest` must hold exactly
    /// the format and `codec_data_len` bytes.
    pub fn decode(rest: &[u8], limits: &Limits) -> Result<StreamFormat, ProtoError> {
        let (raw, rest): (RawStreamFormat, _) = read_prefix(rest, "stream format")?;
        let codec = Codec::from_u32(raw.codec.get())?;
        let direction = match raw.direction.get() {
            0 => Direction::Playback,
            1 => Direction::Capture,
            other => return Err(invalid("direction", other, "must be 0 or 1")),
        };
        let codec_data = take_exact(
            rest,
            raw.codec_data_len.get(),
            limits.max_codec_data.min(HARD_MAX_CODEC_DATA),
            "codec data",
        )?;
        let format = StreamFormat {
            codec,
            direction,
            txq: raw.txq.get(),
            source_id: raw.source_id.get(),
            width: raw.width.get(),
            height: raw.height.get(),
            fps_num: raw.fps_num.get(),
            fps_den: raw.fps_den.get(),
            sample_rate: raw.sample_rate.get(),
            channels: raw.channels.get(),
            bitrate: raw.bitrate.get(),
            codec_data: codec_data.to_vec(),
        };
        format.validate()?;
        Ok(format)
    }

    /// Checks every field rule of the spec's stream format table.
    pub fn validate(&self) -> Result<(), ProtoError> {
        match self.direction {
            Direction::Playback if self.source_id != 0 => {
                return Err(invalid(
                    "source_id",
                    self.source_id,
                    "must be 0 for playback",
                ));
            }
            Direction::Capture if self.txq != 0 => {
                return Err(invalid("txq", self.txq, "must be 0 for capture"));
            }
            _ => {}
        }
        match self.codec.kind() {
            MediaKind::Video => {
                for (field, value) in [("width", self.width), ("height", self.height)] {
                    if value == 0 || value > MAX_DIMENSION {
                        return Err(invalid(field, value, "video needs 1..=16384"));
                    }
                }
                if self.sample_rate != 0 || self.channels != 0 {
                    return Err(invalid(
                        "sample_rate",
                        self.sample_rate,
                        "must be 0 for video",
                    ));
                }
                if (self.fps_den == 0) != (self.fps_num == 0) {
                    return Err(invalid(
                        "fps_den",
                        self.fps_den,
                        "0/0 (unknown) or both nonzero",
                    ));
                }
            }
            MediaKind::Audio => {
                if self.sample_rate == 0 || self.sample_rate > MAX_SAMPLE_RATE {
                    return Err(invalid(
                        "sample_rate",
                        self.sample_rate,
                        "audio needs 1..=384000",
                    ));
                }
                if self.channels == 0 || self.channels > MAX_CHANNELS {
                    return Err(invalid("channels", self.channels, "audio needs 1..=8"));
                }
                let video_fields = [self.width, self.height, self.fps_num, self.fps_den];
                if video_fields.iter().any(|v| *v != 0) {
                    return Err(invalid(
                        "width",
                        self.width,
                        "video fields must be 0 for audio",
                    ));
                }
            }
        }
        match self.direction {
            // A capture stream's codec data comes from the client, in the
            // first capture sample (spec, "Capture streams").
            Direction::Capture if !self.codec_data.is_empty() => Err(invalid(
                "codec_data_len",
                len_u32(self.codec_data.len()),
                "must be 0 for capture",
            )),
            Direction::Capture => Ok(()),
            Direction::Playback => self.codec.check_codec_data(&self.codec_data, self.channels),
        }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        let raw = RawStreamFormat {
            codec: self.codec.as_u32().into(),
            direction: u32::from(self.direction == Direction::Capture).into(),
            txq: self.txq.into(),
            source_id: self.source_id.into(),
            width: self.width.into(),
            height: self.height.into(),
            fps_num: self.fps_num.into(),
            fps_den: self.fps_den.into(),
            sample_rate: self.sample_rate.into(),
            channels: self.channels.into(),
            bitrate: self.bitrate.into(),
            codec_data_len: len_u32(self.codec_data.len()).into(),
        };
        out.extend_from_slice(raw.as_bytes());
        out.extend_from_slice(&self.codec_data);
    }
}

/// Length of an encoder-side buffer as a `u32` field; encoders only ever see
/// validated values, so saturation never happens in a correct program.
pub(crate) fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Geometry {
    fn decode(rest: &[u8]) -> Result<Geometry, ProtoError> {
        let (raw, mut rest): (RawGeometry, _) = read_prefix(rest, "geometry")?;
        let flags = raw.flags.get();
        if flags & !GEOMETRY_FLAG_VISIBLE != 0 {
            return Err(invalid("flags", flags, "unknown geometry flag"));
        }
        let count = raw.num_clip_rects.get();
        if count as usize > MAX_CLIP_RECTS {
            return Err(invalid("num_clip_rects", count, "at most 16"));
        }
        let mut clip = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let (rect, next): (RawRect, _) = read_prefix(rest, "clip rect")?;
            clip.push(Rect::from_raw(&rect, "clip")?);
            rest = next;
        }
        expect_end(rest, "geometry")?;
        Ok(Geometry {
            display_id: raw.display_id.get(),
            visible: flags & GEOMETRY_FLAG_VISIBLE != 0,
            z: raw.z.get(),
            dest: Rect::from_raw(&raw.dest, "dest")?,
            source: Rect::from_raw(&raw.source, "source")?,
            clip,
        })
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        let raw = RawGeometry {
            display_id: self.display_id.into(),
            flags: if self.visible {
                GEOMETRY_FLAG_VISIBLE
            } else {
                0
            }
            .into(),
            z: self.z.into(),
            num_clip_rects: len_u32(self.clip.len()).into(),
            dest: self.dest.to_raw(),
            source: self.source.to_raw(),
        };
        out.extend_from_slice(raw.as_bytes());
        for rect in &self.clip {
            out.extend_from_slice(rect.to_raw().as_bytes());
        }
    }
}

impl ControlRequest {
    /// Decodes the readable part of a control chain.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<ControlRequest, ProtoError> {
        let (hdr, rest): (RawCtrlHdr, _) = read_prefix(bytes, "control header")?;
        let code = RequestCode::from_u32(hdr.code.get())?;
        let target = hdr.target.get();
        match (code.target_kind(), target) {
            (TargetKind::None, 0) => {}
            (TargetKind::None, other) => {
                return Err(invalid("target", other, "must be 0 for this request"));
            }
            (_, 0) => return Err(invalid("target", 0u32, "this request needs an id")),
            _ => {}
        }
        let request = Self::decode_body(code, rest, limits)?;
        Ok(ControlRequest {
            generation: hdr.generation.get(),
            target,
            request,
        })
    }

    fn decode_body(code: RequestCode, rest: &[u8], limits: &Limits) -> Result<Request, ProtoError> {
        let pair = |what| -> Result<RawPair, ProtoError> {
            let (pair, tail): (RawPair, _) = read_prefix(rest, what)?;
            expect_end(tail, what)?;
            Ok(pair)
        };
        let empty = |request| expect_end(rest, "request body").map(|()| request);
        Ok(match code {
            RequestCode::GetCaps => empty(Request::GetCaps)?,
            RequestCode::CheckFormat => Request::CheckFormat(StreamFormat::decode(rest, limits)?),
            RequestCode::EnumSources => empty(Request::EnumSources)?,
            RequestCode::PresCreate => {
                let body = pair("presentation create")?;
                let flags = body.a.get();
                if flags & !PRES_FLAG_LIVE != 0 {
                    return Err(invalid("flags", flags, "unknown presentation flag"));
                }
                Request::PresCreate {
                    live: flags & PRES_FLAG_LIVE != 0,
                }
            }
            RequestCode::PresDestroy => empty(Request::PresDestroy)?,
            RequestCode::PresPlay => empty(Request::PresPlay)?,
            RequestCode::PresPause => empty(Request::PresPause)?,
            RequestCode::PresFlush => {
                let (body, tail): (RawFlush, _) = read_prefix(rest, "flush")?;
                expect_end(tail, "flush")?;
                let position_ns = body.position_ns.get();
                if position_ns == crate::time::TIME_NONE {
                    return Err(invalid("position_ns", position_ns, "must be a time"));
                }
                if body.flags.get() != 0 {
                    return Err(invalid(
                        "flags",
                        body.flags.get(),
                        "no flush flag is defined",
                    ));
                }
                Request::PresFlush { position_ns }
            }
            RequestCode::PresSetRate => {
                let rate_q16 = pair("rate")?.a.get();
                if !(MIN_RATE_Q16..=MAX_RATE_Q16).contains(&rate_q16) {
                    return Err(invalid("rate_q16", rate_q16, "must be 8192..=524288"));
                }
                Request::PresSetRate { rate_q16 }
            }
            RequestCode::PresSetGeometry => Request::PresSetGeometry(Geometry::decode(rest)?),
            RequestCode::PresQueryPosition => empty(Request::PresQueryPosition)?,
            RequestCode::StreamCreate => Request::StreamCreate(StreamFormat::decode(rest, limits)?),
            RequestCode::StreamDestroy => empty(Request::StreamDestroy)?,
            RequestCode::StreamSetVolume => {
                let body = pair("volume")?;
                let volume_q16 = body.a.get();
                if volume_q16 > MAX_VOLUME_Q16 {
                    return Err(invalid("volume_q16", volume_q16, "must be <= 262144"));
                }
                Request::StreamSetVolume {
                    volume_q16,
                    mute: bool_field("mute", body.b.get())?,
                }
            }
            RequestCode::StreamStart => empty(Request::StreamStart)?,
            RequestCode::StreamStop => empty(Request::StreamStop)?,
            RequestCode::StreamRequestKeyframe => empty(Request::StreamRequestKeyframe)?,
            RequestCode::CallCreate => {
                let (body, tail): (RawPair, _) = read_prefix(rest, "call create")?;
                let flags = body.a.get();
                if flags & !CALL_FLAG_OFFER != 0 {
                    return Err(invalid("flags", flags, "unknown call flag"));
                }
                let sdp = take_exact(tail, body.b.get(), limits.max_sdp, "sdp")?;
                let offer = flags & CALL_FLAG_OFFER != 0;
                match (offer, sdp.is_empty()) {
                    (true, true) => Request::CallCreate { sdp: None },
                    (false, false) => Request::CallCreate {
                        sdp: Some(sdp_text(sdp)?),
                    },
                    (true, false) => {
                        return Err(invalid("sdp_len", body.b.get(), "must be 0 with OFFER"));
                    }
                    (false, true) => {
                        return Err(invalid(
                            "sdp_len",
                            0u32,
                            "a remote offer is required without OFFER",
                        ));
                    }
                }
            }
            RequestCode::CallSetRemote => {
                let (body, tail): (RawPair, _) = read_prefix(rest, "call remote")?;
                let sdp = take_exact(tail, body.a.get(), limits.max_sdp, "sdp")?;
                if sdp.is_empty() {
                    return Err(invalid("sdp_len", 0u32, "must not be 0"));
                }
                Request::CallSetRemote {
                    sdp: sdp_text(sdp)?,
                }
            }
            RequestCode::CallStart => empty(Request::CallStart)?,
            RequestCode::CallHold => Request::CallHold {
                hold: bool_field("hold", pair("hold")?.a.get())?,
            },
            RequestCode::CallDtmf => {
                let body = pair("dtmf")?;
                let (event, duration_ms) = (body.a.get(), body.b.get());
                if event > 15 {
                    return Err(invalid("event", event, "RFC 4733 DTMF events are 0..=15"));
                }
                if !(40..=5000).contains(&duration_ms) {
                    return Err(invalid("duration_ms", duration_ms, "must be 40..=5000"));
                }
                Request::CallDtmf { event, duration_ms }
            }
            RequestCode::CallMute => {
                let body = pair("mute")?;
                let media = body.a.get();
                if media == 0 || media & !(CALL_MEDIA_AUDIO | CALL_MEDIA_VIDEO) != 0 {
                    return Err(invalid("media", media, "must be a nonzero mask of 1|2"));
                }
                Request::CallMute {
                    media,
                    mute: bool_field("mute", body.b.get())?,
                }
            }
            RequestCode::CallStats => empty(Request::CallStats)?,
            RequestCode::CallEnd => empty(Request::CallEnd)?,
        })
    }

    /// Encodes the readable part of a control chain (the driver's side).
    pub fn encode(&self) -> Vec<u8> {
        let hdr = RawCtrlHdr {
            code: (self.request.code() as u32).into(),
            generation: self.generation.into(),
            target: self.target.into(),
            reserved: 0.into(),
        };
        let mut out = hdr.as_bytes().to_vec();
        let pair = |out: &mut Vec<u8>, a: u32, b: u32| {
            out.extend_from_slice(
                RawPair {
                    a: a.into(),
                    b: b.into(),
                }
                .as_bytes(),
            );
        };
        match &self.request {
            Request::GetCaps
            | Request::EnumSources
            | Request::PresDestroy
            | Request::PresPlay
            | Request::PresPause
            | Request::PresQueryPosition
            | Request::StreamDestroy
            | Request::StreamStart
            | Request::StreamStop
            | Request::StreamRequestKeyframe
            | Request::CallStart
            | Request::CallStats
            | Request::CallEnd => {}
            Request::CheckFormat(format) | Request::StreamCreate(format) => {
                format.encode_into(&mut out)
            }
            Request::PresCreate { live } => pair(&mut out, u32::from(*live), 0),
            Request::PresFlush { position_ns } => {
                let body = RawFlush {
                    position_ns: (*position_ns).into(),
                    flags: 0.into(),
                    reserved: 0.into(),
                };
                out.extend_from_slice(body.as_bytes());
            }
            Request::PresSetRate { rate_q16 } => pair(&mut out, *rate_q16, 0),
            Request::PresSetGeometry(geometry) => geometry.encode_into(&mut out),
            Request::StreamSetVolume { volume_q16, mute } => {
                pair(&mut out, *volume_q16, u32::from(*mute))
            }
            Request::CallCreate { sdp } => {
                let text = sdp.as_deref().unwrap_or("");
                let flags = if sdp.is_none() { CALL_FLAG_OFFER } else { 0 };
                pair(&mut out, flags, len_u32(text.len()));
                out.extend_from_slice(text.as_bytes());
            }
            Request::CallSetRemote { sdp } => {
                pair(&mut out, len_u32(sdp.len()), 0);
                out.extend_from_slice(sdp.as_bytes());
            }
            Request::CallHold { hold } => pair(&mut out, u32::from(*hold), 0),
            Request::CallDtmf { event, duration_ms } => pair(&mut out, *event, *duration_ms),
            Request::CallMute { media, mute } => pair(&mut out, *media, u32::from(*mute)),
        }
        out
    }
}

/// A decoded response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// Status of the request.
    pub status: Status,
    /// Created id, or the target echoed.
    pub id: u32,
}

impl ResponseHeader {
    /// Size of the response header.
    pub const SIZE: usize = size_of::<RawRespHdr>();

    /// The 16 header bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let raw = RawRespHdr {
            status: self.status.as_u32().into(),
            id: self.id.into(),
            reserved: [0.into(), 0.into()],
        };
        let mut out = [0u8; Self::SIZE];
        out.copy_from_slice(raw.as_bytes());
        out
    }

    /// Decodes a response header (the driver's side).
    pub fn decode(bytes: &[u8]) -> Result<(ResponseHeader, &[u8]), ProtoError> {
        let (raw, rest): (RawRespHdr, _) = read_prefix(bytes, "response header")?;
        Ok((
            ResponseHeader {
                status: Status::from_u32(raw.status.get())?,
                id: raw.id.get(),
            },
            rest,
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn video_format() -> StreamFormat {
        StreamFormat {
            codec: Codec::H264,
            direction: Direction::Playback,
            txq: 1,
            source_id: 0,
            width: 642,
            height: 362,
            fps_num: 30,
            fps_den: 1,
            sample_rate: 0,
            channels: 0,
            bitrate: 5_000_000,
            codec_data: vec![1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 0],
        }
    }

    fn audio_format() -> StreamFormat {
        StreamFormat {
            codec: Codec::Opus,
            direction: Direction::Playback,
            txq: 0,
            source_id: 0,
            width: 0,
            height: 0,
            fps_num: 0,
            fps_den: 0,
            sample_rate: 48000,
            channels: 2,
            bitrate: 0,
            codec_data: vec![],
        }
    }

    /// One example of every request, with a target of the right kind.
    pub(crate) fn every_request() -> Vec<ControlRequest> {
        let geometry = Geometry {
            display_id: 1,
            visible: true,
            z: -3,
            dest: Rect {
                x: -10,
                y: 20,
                width: 640,
                height: 360,
            },
            source: Rect::default(),
            clip: vec![
                Rect {
                    x: 0,
                    y: 0,
                    width: 100,
                    height: 50
                };
                3
            ],
        };
        let requests = vec![
            Request::GetCaps,
            Request::CheckFormat(video_format()),
            Request::EnumSources,
            Request::PresCreate { live: true },
            Request::PresDestroy,
            Request::PresPlay,
            Request::PresPause,
            Request::PresFlush {
                position_ns: 5_000_000_000,
            },
            Request::PresSetRate {
                rate_q16: 2 * UNITY_Q16,
            },
            Request::PresSetGeometry(geometry),
            Request::PresQueryPosition,
            Request::StreamCreate(audio_format()),
            Request::StreamDestroy,
            Request::StreamSetVolume {
                volume_q16: UNITY_Q16 / 2,
                mute: true,
            },
            Request::StreamStart,
            Request::StreamStop,
            Request::StreamRequestKeyframe,
            Request::CallCreate { sdp: None },
            Request::CallSetRemote {
                sdp: "v=0\r\n".into(),
            },
            Request::CallStart,
            Request::CallHold { hold: true },
            Request::CallDtmf {
                event: 11,
                duration_ms: 160,
            },
            Request::CallMute {
                media: CALL_MEDIA_AUDIO,
                mute: true,
            },
            Request::CallStats,
            Request::CallEnd,
        ];
        requests
            .into_iter()
            .map(|request| ControlRequest {
                generation: 7,
                target: if request.code().target_kind() == TargetKind::None {
                    0
                } else {
                    42
                },
                request,
            })
            .collect()
    }

    #[test]
    fn every_request_round_trips() {
        let all = every_request();
        let codes: std::collections::HashSet<_> = all.iter().map(|r| r.request.code()).collect();
        assert_eq!(
            codes.len(),
            RequestCode::ALL.len(),
            "a request code has no example"
        );
        for request in all {
            let bytes = request.encode();
            assert_eq!(
                ControlRequest::decode(&bytes, &Limits::default()),
                Ok(request)
            );
        }
        let offer = ControlRequest {
            generation: 1,
            target: 0,
            request: Request::CallCreate {
                sdp: Some("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n".into()),
            },
        };
        assert_eq!(
            ControlRequest::decode(&offer.encode(), &Limits::default()),
            Ok(offer)
        );
    }

    #[test]
    fn header_layout() {
        let bytes = every_request()[4].encode();
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[0..4], &[0x01, 0x01, 0, 0]);
        assert_eq!(&bytes[4..8], &[7, 0, 0, 0]);
        assert_eq!(&bytes[8..12], &[42, 0, 0, 0]);
        assert_eq!(size_of::<RawStreamFormat>(), 48);
        assert_eq!(size_of::<RawGeometry>(), 48);
    }

    fn decode(request: &Request, target: u32) -> Result<ControlRequest, ProtoError> {
        let bytes = ControlRequest {
            generation: 1,
            target,
            request: request.clone(),
        }
        .encode();
        ControlRequest::decode(&bytes, &Limits::default())
    }

    #[test]
    fn unknown_code_and_targets() {
        let mut bytes = every_request()[0].encode();
        bytes[0] = 0x99;
        let err = ControlRequest::decode(&bytes, &Limits::default()).unwrap_err();
        assert_eq!(err.status(), Status::UnknownRequest);
        assert!(decode(&Request::GetCaps, 3).is_err());
        assert!(decode(&Request::PresPlay, 0).is_err());
    }

    #[test]
    fn truncated_and_trailing_bodies() {
        let bytes = every_request()[7].encode();
        for cut in 0..bytes.len() {
            assert!(ControlRequest::decode(&bytes[..cut], &Limits::default()).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            ControlRequest::decode(&long, &Limits::default()),
            Err(ProtoError::TrailingBytes { .. })
        ));
    }

    #[test]
    fn field_rules() {
        let bad_formats = [
            StreamFormat {
                width: 0,
                ..video_format()
            },
            StreamFormat {
                height: 16385,
                ..video_format()
            },
            StreamFormat {
                sample_rate: 48000,
                ..video_format()
            },
            StreamFormat {
                fps_den: 0,
                ..video_format()
            },
            StreamFormat {
                source_id: 2,
                ..video_format()
            },
            StreamFormat {
                direction: Direction::Capture,
                ..video_format()
            },
            StreamFormat {
                channels: 9,
                ..audio_format()
            },
            StreamFormat {
                sample_rate: 0,
                ..audio_format()
            },
            StreamFormat {
                width: 4,
                ..audio_format()
            },
            StreamFormat {
                channels: 6,
                ..audio_format()
            },
            StreamFormat {
                codec_data: vec![0; 3],
                ..video_format()
            },
        ];
        for format in bad_formats {
            assert!(
                decode(&Request::StreamCreate(format.clone()), 1).is_err(),
                "{format:?}"
            );
        }
        let bad = [
            Request::PresSetRate {
                rate_q16: MIN_RATE_Q16 - 1,
            },
            Request::PresSetRate {
                rate_q16: MAX_RATE_Q16 + 1,
            },
            Request::StreamSetVolume {
                volume_q16: MAX_VOLUME_Q16 + 1,
                mute: false,
            },
            Request::CallDtmf {
                event: 16,
                duration_ms: 100,
            },
            Request::CallDtmf {
                event: 1,
                duration_ms: 39,
            },
            Request::CallMute {
                media: 4,
                mute: true,
            },
            Request::CallSetRemote { sdp: String::new() },
            Request::CallSetRemote { sdp: "a\0b".into() },
        ];
        for request in bad {
            assert!(decode(&request, 1).is_err(), "{request:?}");
        }
    }

    #[test]
    fn size_limits_answer_limit() {
        let limits = Limits {
            max_codec_data: 4,
            max_sdp: 8,
        };
        let request = ControlRequest {
            generation: 1,
            target: 1,
            request: Request::StreamCreate(video_format()),
        };
        let err = ControlRequest::decode(&request.encode(), &limits).unwrap_err();
        assert_eq!(err.status(), Status::Limit);
        let request = ControlRequest {
            generation: 1,
            target: 0,
            request: Request::CallCreate {
                sdp: Some("v=0 too long".into()),
            },
        };
        assert_eq!(
            ControlRequest::decode(&request.encode(), &limits)
                .unwrap_err()
                .status(),
            Status::Limit
        );
        assert!(limits.max_request_len() >= 16 + 48 + 8);
    }

    #[test]
    fn geometry_limits() {
        let mut geometry = Geometry {
            display_id: 0,
            visible: false,
            z: 0,
            dest: Rect::default(),
            source: Rect::default(),
            clip: vec![Rect::default(); MAX_CLIP_RECTS],
        };
        assert!(decode(&Request::PresSetGeometry(geometry.clone()), 1).is_ok());
        geometry.clip.push(Rect::default());
        assert!(decode(&Request::PresSetGeometry(geometry.clone()), 1).is_err());
        geometry.clip.clear();
        geometry.dest.x = 70000;
        assert!(decode(&Request::PresSetGeometry(geometry), 1).is_err());
    }

    #[test]
    fn response_header_round_trip() {
        let hdr = ResponseHeader {
            status: Status::BadState,
            id: 9,
        };
        let bytes = hdr.to_bytes();
        assert_eq!(&bytes[0..4], &[3, 0, 0, 0]);
        assert_eq!(ResponseHeader::decode(&bytes), Ok((hdr, &[][..])));
    }
}

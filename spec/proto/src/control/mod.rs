//! The control queue: requests, their bodies and the device's responses
//! (spec, "Control requests").
//!
//! A control chain is `[readable: ctrl_hdr + body][writable: resp_hdr +
//! response body]`. [`ControlRequest::decode`] turns the readable bytes into a
//! validated request or a [`ProtoError`](crate::ProtoError) whose
//! [`ProtoError::status`](crate::ProtoError::status) is what the device
//! answers. Which request is legal in which state is the daemon's business,
//! not this module's.
//!
//! This file holds the spec's numbers (limits, flag bits) and the size
//! [`Limits`] a decoder enforces; the rest is split by job:
//!
//! - `code`: [`RequestCode`] and what each request's target names;
//! - `raw`: the `#[repr(C)]` little-endian layouts of the spec;
//! - `request`: the typed [`ControlRequest`] and [`Request`];
//! - `bodies`: the two structured bodies, [`StreamFormat`] and [`Geometry`],
//!   with their field rules;
//! - `decode` and `encode`: a [`ControlRequest`] from and to the readable
//!   bytes of a chain;
//! - `response_header`: the [`ResponseHeader`] every answer starts with;
//! - `bytes`: byte-reading helpers every decoder of the crate shares.

mod bodies;
mod bytes;
mod code;
mod decode;
mod encode;
mod raw;
mod request;
mod response_header;

#[cfg(test)]
pub(crate) mod fixtures;

pub use crate::media::MediaParams;
pub use bodies::{Direction, Geometry, Rect, StreamFormat};
pub(crate) use bytes::{expect_end, invalid, len_u32, read_prefix, sdp_text};
pub use code::{RequestCode, TargetKind};
pub use raw::{RawCtrlHdr, RawFlush, RawGeometry, RawPair, RawRect, RawRespHdr, RawStreamFormat};
pub use request::{ControlRequest, Request};
pub use response_header::ResponseHeader;

use crate::device::{DeviceConfig, DeviceLimits, HARD_MAX_CODEC_DATA, HARD_MAX_SDP};

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
/// Geometry flag: the guest paints `dest` in [`COLOR_KEY_RGB`] and the
/// client shows the video only where the desktop shows that key (7.14).
pub const GEOMETRY_FLAG_COLORKEY: u32 = 2;
/// The colour key of [`GEOMETRY_FLAG_COLORKEY`] as `0xRRGGBB`: magenta.
pub const COLOR_KEY_RGB: u32 = 0x00FF_00FF;
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

impl From<&DeviceLimits> for Limits {
    fn from(limits: &DeviceLimits) -> Self {
        Limits {
            max_codec_data: limits.max_codec_data.min(HARD_MAX_CODEC_DATA),
            max_sdp: limits.max_sdp.min(HARD_MAX_SDP),
        }
    }
}

impl From<&DeviceConfig> for Limits {
    fn from(config: &DeviceConfig) -> Self {
        Limits::from(&config.limits)
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

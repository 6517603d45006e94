//! The `#[repr(C)]` mirrors of `include/mediaredir.h`'s structs, and their
//! conversions to and from the player API's Rust types.

use std::ffi::c_int;

use mediaredir_player::{BufferInfo, Capabilities};
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::{
    Direction, Geometry, MAX_CLIP_RECTS, MediaParams, Rect, StreamFormat,
};
use mediaredir_proto::data::Clip;
use mediaredir_proto::event::{EVENT_SIZE, Event};
use mediaredir_proto::response::{CodecCap, PositionInfo};

use crate::errors::CapiError;

/// "No time": a pts, dts or duration that is not known.
pub const TIME_NONE: u64 = u64::MAX;

/// What the connected client decodes (struct v4l2_fmtdesc).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CCodecCap {
    /// MEDIAREDIR_CODEC_*
    pub codec: u32,
    /// MEDIAREDIR_CODEC_FLAG_*
    pub flags: u32,
    /// 0: not stated
    pub max_width: u32,
    /// 0: not stated
    pub max_height: u32,
}

impl From<&CodecCap> for CCodecCap {
    fn from(cap: &CodecCap) -> Self {
        CCodecCap {
            codec: cap.codec.as_u32(),
            flags: cap.flags,
            max_width: cap.max_width,
            max_height: cap.max_height,
        }
    }
}

/// The device and its client (struct v4l2_capability).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CCaps {
    /// device generation (changes on restart)
    pub generation: u32,
    /// 1 when a client is connected
    pub client_connected: u32,
    /// the client's feature bits
    pub client_features: u32,
    /// codecs the client reported (all of them, even when fewer fit the caller's array)
    pub num_codecs: u32,
}

impl From<&Capabilities> for CCaps {
    fn from(caps: &Capabilities) -> Self {
        CCaps {
            generation: caps.generation,
            client_connected: u32::from(caps.client_connected),
            client_features: caps.client_features,
            num_codecs: u32::try_from(caps.codecs.len()).unwrap_or(u32::MAX),
        }
    }
}

/// A stream format (struct v4l2_format). Unused fields are 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CStreamFormat {
    /// MEDIAREDIR_CODEC_*
    pub codec: u32,
    /// MEDIAREDIR_DIRECTION_*
    pub direction: u32,
    /// playback queue: one per stream of a presentation (0, 1, ...)
    pub txq: u32,
    /// capture source (capture only)
    pub source_id: u32,
    /// video; 0 for audio
    pub width: u32,
    /// video; 0 for audio
    pub height: u32,
    /// frame rate; 0/0 if unknown
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
    /// audio; 0 for video
    pub sample_rate: u32,
    /// audio; 0 for video
    pub channels: u32,
    /// hint; 0 if unset
    pub bitrate: u32,
    /// 0
    pub reserved: u32,
    /// codec configuration (avcC, OpusHead...); borrowed for the call; NULL iff codec_data_len is 0
    pub codec_data: *const u8,
    /// Bytes of codec data.
    pub codec_data_len: usize,
}

impl CStreamFormat {
    /// The media fields, which the C struct keeps flat (C ABI) and the Rust
    /// format groups: the one place they are mapped.
    pub fn media(&self) -> MediaParams {
        MediaParams {
            width: self.width,
            height: self.height,
            fps_num: self.fps_num,
            fps_den: self.fps_den,
            sample_rate: self.sample_rate,
            channels: self.channels,
            bitrate: self.bitrate,
        }
    }

    /// The Rust format; `codec_data` is the bytes `self.codec_data` points
    /// to (the caller reads them from the raw pointer).
    pub fn to_format(&self, codec_data: &[u8]) -> Result<StreamFormat, CapiError> {
        let codec = Codec::from_u32(self.codec).map_err(|_| CapiError::Invalid("unknown codec"))?;
        let direction = Direction::from_u32(self.direction)
            .map_err(|_| CapiError::Invalid("unknown direction"))?;
        Ok(StreamFormat {
            codec,
            direction,
            txq: self.txq,
            source_id: self.source_id,
            media: self.media(),
            codec_data: codec_data.to_vec(),
        })
    }
}

/// Timing and flags of a queued buffer (struct v4l2_buffer).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CBufferInfo {
    /// payload bytes at the start of the buffer
    pub bytes_used: u32,
    /// MEDIAREDIR_FLAG_*
    pub flags: u32,
    /// presentation time, or MEDIAREDIR_TIME_NONE
    pub pts: u64,
    /// decoding time, or MEDIAREDIR_TIME_NONE
    pub dts: u64,
    /// or MEDIAREDIR_TIME_NONE
    pub duration: u64,
}

fn time(t: u64) -> Option<u64> {
    (t != TIME_NONE).then_some(t)
}

impl From<&CBufferInfo> for BufferInfo {
    fn from(info: &CBufferInfo) -> Self {
        BufferInfo {
            bytes_used: info.bytes_used,
            pts: time(info.pts),
            dts: time(info.dts),
            duration: time(info.duration),
            flags: info.flags,
            clip: Clip::NONE,
        }
    }
}

/// A rectangle in display pixels.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CRect {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl From<&CRect> for Rect {
    fn from(r: &CRect) -> Self {
        Rect {
            x: r.x,
            y: r.y,
            width: r.width,
            height: r.height,
        }
    }
}

/// Where the client shows a presentation's video (V4L2 selection).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CGeometry {
    /// guest display index
    pub display_id: u32,
    /// 1: shown, 0: hidden
    pub visible: u32,
    /// stacking order
    pub z: i32,
    /// 1: the caller paints dest in MEDIAREDIR_COLOR_KEY and the client shows
    /// the video only where the desktop shows that colour (spec 7.14,
    /// COLORKEY); 0: in all of dest (this was `reserved`, 0, before)
    pub color_key: u32,
    /// destination on the display
    pub dest: CRect,
    /// part of the picture; all 0: whole
    pub source: CRect,
    /// visible parts of dest; borrowed for the call; NULL iff num_clip is 0 (all of dest)
    pub clip: *const CRect,
    /// at most MEDIAREDIR_MAX_CLIP_RECTS
    pub num_clip: usize,
}

impl CGeometry {
    /// The Rust geometry with `clip` (read by the caller from `self.clip`).
    pub fn to_geometry(&self, clip: &[CRect]) -> Result<Geometry, CapiError> {
        if clip.len() > MAX_CLIP_RECTS {
            return Err(CapiError::Invalid("more than MEDIAREDIR_MAX_CLIP_RECTS"));
        }
        Ok(Geometry {
            display_id: self.display_id,
            visible: self.visible != 0,
            color_key: self.color_key != 0,
            z: self.z,
            dest: Rect::from(&self.dest),
            source: Rect::from(&self.source),
            clip: clip.iter().map(Rect::from).collect(),
        })
    }
}

/// Where playback is.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CPosition {
    /// stream time being shown
    pub position_ns: u64,
    /// media buffered at the client
    pub buffered_ns: u64,
    /// MEDIAREDIR_STATE_*
    pub state: u32,
    /// 0.
    pub reserved: u32,
}

impl From<&PositionInfo> for CPosition {
    fn from(p: &PositionInfo) -> Self {
        CPosition {
            position_ns: p.position_ns,
            buffered_ns: p.buffered_ns,
            state: p.state.as_u32(),
            reserved: 0,
        }
    }
}

/// An event (struct v4l2_event), as the device sends it.
///
/// ```text
/// kind                  id            status   values
/// CLIENT_CONNECTED      0             -        [0] client features
/// CLIENT_DISCONNECTED   0             -        -
/// EOS                   stream        -        -
/// POSITION              presentation  -        [0] position_ns,
///                                              [1] buffered_ns
/// STREAM_ERROR          stream        why      -
/// QOS                   stream        -        [0] rendered, [1] dropped,
///                                              [2] jitter_ns (int64_t)
/// STATE_CHANGED         presentation  -        [0] MEDIAREDIR_STATE_*
/// KEYFRAME_NEEDED       stream        -        -
/// EVENTS_LOST           0             -        [0] how many
/// DEVICE_STARTED        0             -        - (mediaredir_hello()
///                                              gives the generation)
/// LINK_QUALITY          0             -        [0] rtt_ns, [1] goodput
///                       (bytes/s), [2] flags (1: rtt pending, a lower
///                       bound), [3] inflight_bytes, [4] interval_ns
/// CALL_STATS            session       -        [0] jitter_us,
///                       [1] packets_lost, [2] rtt_us, [3] mos_x100,
///                       [4] packets_received
/// CALL_ENDED            session       why      -
/// CALL_DTMF             session       -        [0] RFC 4733 event
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CEvent {
    /// MEDIAREDIR_EVENT_*
    pub kind: u32,
    /// presentation, stream or session; 0 if none
    pub id: u32,
    /// 0
    pub reserved: u32,
    /// MEDIAREDIR_STATUS_* (errors), else 0
    pub status: u32,
    /// Kind-specific values.
    pub values: [u64; 6],
}

impl From<&Event> for CEvent {
    /// Through the wire encoding, so the C layout follows the protocol's
    /// (spec, "Events") without a second table of fields per kind.
    fn from(event: &Event) -> Self {
        let raw = event.encode(0);
        let u32_at = |o: usize| u32::from_le_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
        let mut values = [0u64; 6];
        for (i, v) in values.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[16 + 8 * i..24 + 8 * i]);
            *v = u64::from_le_bytes(b);
        }
        CEvent {
            kind: u32_at(0),
            id: u32_at(4),
            reserved: u32_at(8),
            status: u32_at(12),
            values,
        }
    }
}

// The header's `_Static_assert`s check the same sizes on the C side.
const _: () = assert!(size_of::<CEvent>() == EVENT_SIZE);
const _: () = assert!(size_of::<CEvent>() == 64);
const _: () = assert!(size_of::<CBufferInfo>() == 32);
const _: () = assert!(size_of::<CCodecCap>() == 16);
const _: () = assert!(size_of::<CCaps>() == 16);
const _: () = assert!(size_of::<CRect>() == 16);
const _: () = assert!(size_of::<CPosition>() == 24);

/// A C boolean argument.
pub fn flag(value: c_int) -> bool {
    value != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediaredir_proto::status::Status;

    #[test]
    fn events_keep_the_wire_fields() {
        let e = CEvent::from(&Event::Qos {
            stream: 7,
            rendered: 30,
            dropped: 2,
            jitter_ns: -5,
        });
        assert_eq!((e.kind, e.id, e.status), (0x06, 7, 0));
        assert_eq!(&e.values[..3], &[30, 2, (-5i64).cast_unsigned()]);
        let e = CEvent::from(&Event::StreamError {
            stream: 3,
            status: Status::Io,
        });
        assert_eq!((e.kind, e.id, e.status), (0x05, 3, 9));
    }

    #[test]
    fn geometry_booleans_become_the_flags() {
        let c = CGeometry {
            display_id: 1,
            visible: 1,
            z: 2,
            color_key: 1,
            dest: CRect {
                x: 10,
                y: 20,
                width: 320,
                height: 240,
            },
            source: CRect::default(),
            clip: std::ptr::null(),
            num_clip: 0,
        };
        let g = c.to_geometry(&[]).expect("valid");
        assert!(g.visible && g.color_key);
        assert_eq!(
            (g.display_id, g.z, g.dest),
            (1, 2, Rect::new(10, 20, 320, 240))
        );
        let g = CGeometry {
            visible: 0,
            color_key: 0,
            ..c
        }
        .to_geometry(&[])
        .expect("valid");
        assert!(!g.visible && !g.color_key);
    }

    #[test]
    fn time_none_means_unknown() {
        let info = BufferInfo::from(&CBufferInfo {
            bytes_used: 10,
            flags: 1,
            pts: 5,
            dts: TIME_NONE,
            duration: 0,
        });
        assert_eq!(
            (info.pts, info.dts, info.duration),
            (Some(5), None, Some(0))
        );
    }
}

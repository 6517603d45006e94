//! The two structured request bodies: a stream format (`CHECK_FORMAT`,
//! `STREAM_CREATE`) and an overlay geometry (`PRES_SET_GEOMETRY`), with
//! their field rules (spec, "Control requests") and their conversions from
//! and to the raw layouts.

use zerocopy::IntoBytes;

use super::bytes::{expect_end, invalid, len_u32, read_prefix, take_exact};
use super::{
    GEOMETRY_FLAG_COLORKEY, GEOMETRY_FLAG_VISIBLE, Limits, MAX_CLIP_RECTS, MAX_COORDINATE,
    MAX_DIMENSION, RawGeometry, RawRect, RawStreamFormat,
};
use crate::ProtoError;
use crate::codec::{Codec, MediaKind};
use crate::device::HARD_MAX_CODEC_DATA;
pub use crate::enums::Direction;
use crate::media::MediaParams;
/// A rectangle in display pixels: the wire's own type, so a geometry goes
/// from the controlq to the client without a conversion.
pub use crate::wire::Rect;

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
    /// Picture size, frame rate, sample rate, channels and bit rate.
    pub media: MediaParams,
    /// Codec configuration data (avcC, OpusHead, ...).
    pub codec_data: Vec<u8>,
}

/// Overlay geometry of a presentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// Guest display index.
    pub display_id: u32,
    /// Whether the overlay is shown.
    pub visible: bool,
    /// Whether the guest paints `dest` in the colour key, so that the
    /// video shows only where the desktop shows the key (`COLORKEY`).
    pub color_key: bool,
    /// Stacking order.
    pub z: i32,
    /// Destination rectangle.
    pub dest: Rect,
    /// Source rectangle; all zero means the whole picture.
    pub source: Rect,
    /// Visible parts of `dest`; empty means all of it.
    pub clip: Vec<Rect>,
}

impl Rect {
    fn from_raw(raw: &RawRect, field: &'static str) -> Result<Rect, ProtoError> {
        let rect = Rect::new(raw.x.get(), raw.y.get(), raw.width.get(), raw.height.get());
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
    /// A playback format of `codec` on data queue `txq` with every media
    /// field 0 (unknown or unset) and no codec data: the one place a format
    /// is spelled out field by field. Set what the codec's kind needs with
    /// struct update syntax, or start from [`StreamFormat::video`] or
    /// [`StreamFormat::audio`].
    pub fn playback(codec: Codec, txq: u32) -> StreamFormat {
        StreamFormat {
            codec,
            direction: Direction::Playback,
            txq,
            source_id: 0,
            media: MediaParams::default(),
            codec_data: Vec::new(),
        }
    }

    /// A video playback format: `width`x`height` pixels at
    /// `fps_num`/`fps_den` frames a second (0/0 if unknown).
    pub fn video(
        codec: Codec,
        txq: u32,
        width: u32,
        height: u32,
        fps_num: u32,
        fps_den: u32,
    ) -> StreamFormat {
        StreamFormat {
            media: MediaParams::video(width, height, fps_num, fps_den),
            ..StreamFormat::playback(codec, txq)
        }
    }

    /// An audio playback format: `channels` channels at `sample_rate` Hz.
    pub fn audio(codec: Codec, txq: u32, sample_rate: u32, channels: u32) -> StreamFormat {
        StreamFormat {
            media: MediaParams::audio(sample_rate, channels),
            ..StreamFormat::playback(codec, txq)
        }
    }

    /// The same format captured from the client's source `source_id`
    /// instead of played: no data queue and no codec data (the client sends
    /// it with the first capture sample).
    pub fn captured_from(self, source_id: u32) -> StreamFormat {
        StreamFormat {
            direction: Direction::Capture,
            txq: 0,
            source_id,
            codec_data: Vec::new(),
            ..self
        }
    }

    /// Decodes a stream format and its codec data; `rest` must hold exactly
    /// the format and `codec_data_len` bytes.
    pub fn decode(rest: &[u8], limits: &Limits) -> Result<StreamFormat, ProtoError> {
        let (raw, rest): (RawStreamFormat, _) = read_prefix(rest, "stream format")?;
        let codec = Codec::from_u32(raw.codec.get())?;
        let direction = Direction::from_u32(raw.direction.get())?;
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
            media: MediaParams {
                width: raw.width.get(),
                height: raw.height.get(),
                fps_num: raw.fps_num.get(),
                fps_den: raw.fps_den.get(),
                sample_rate: raw.sample_rate.get(),
                channels: raw.channels.get(),
                bitrate: raw.bitrate.get(),
            },
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
        let media = &self.media;
        if let Err(e) = media.check_kind(self.codec.kind()) {
            return Err(invalid(e.field.name(), e.value, e.range.rule));
        }
        // The frame rate: 0/0 (unknown) or both set for video, 0/0 for
        // audio. The wire only asks for a denominator with a numerator.
        match self.codec.kind() {
            MediaKind::Video if (media.fps_den == 0) != (media.fps_num == 0) => Err(invalid(
                "fps_den",
                media.fps_den,
                "0/0 (unknown) or both nonzero",
            )),
            MediaKind::Audio if media.fps_num != 0 || media.fps_den != 0 => Err(invalid(
                "fps_num",
                media.fps_num,
                "video fields must be 0 for audio",
            )),
            _ => Ok(()),
        }?;
        match self.direction {
            // A capture stream's codec data comes from the client, in the
            // first capture sample (spec, "Capture streams").
            Direction::Capture if !self.codec_data.is_empty() => Err(invalid(
                "codec_data_len",
                len_u32(self.codec_data.len()),
                "must be 0 for capture",
            )),
            Direction::Capture => Ok(()),
            Direction::Playback => self
                .codec
                .check_codec_data(&self.codec_data, self.media.channels),
        }
    }

    pub(super) fn encode_into(&self, out: &mut Vec<u8>) {
        let raw = RawStreamFormat {
            codec: self.codec.as_u32().into(),
            direction: self.direction.as_u32().into(),
            txq: self.txq.into(),
            source_id: self.source_id.into(),
            width: self.media.width.into(),
            height: self.media.height.into(),
            fps_num: self.media.fps_num.into(),
            fps_den: self.media.fps_den.into(),
            sample_rate: self.media.sample_rate.into(),
            channels: self.media.channels.into(),
            bitrate: self.media.bitrate.into(),
            codec_data_len: len_u32(self.codec_data.len()).into(),
        };
        out.extend_from_slice(raw.as_bytes());
        out.extend_from_slice(&self.codec_data);
    }
}

impl Geometry {
    pub(super) fn decode(rest: &[u8]) -> Result<Geometry, ProtoError> {
        let (raw, mut rest): (RawGeometry, _) = read_prefix(rest, "geometry")?;
        let flags = raw.flags.get();
        if flags & !(GEOMETRY_FLAG_VISIBLE | GEOMETRY_FLAG_COLORKEY) != 0 {
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
            color_key: flags & GEOMETRY_FLAG_COLORKEY != 0,
            z: raw.z.get(),
            dest: Rect::from_raw(&raw.dest, "dest")?,
            source: Rect::from_raw(&raw.source, "source")?,
            clip,
        })
    }

    /// The `flags` word: `VISIBLE` and `COLORKEY`.
    fn flags(&self) -> u32 {
        let mut flags = 0;
        if self.visible {
            flags |= GEOMETRY_FLAG_VISIBLE;
        }
        if self.color_key {
            flags |= GEOMETRY_FLAG_COLORKEY;
        }
        flags
    }

    pub(super) fn encode_into(&self, out: &mut Vec<u8>) {
        let raw = RawGeometry {
            display_id: self.display_id.into(),
            flags: self.flags().into(),
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

#[cfg(test)]
mod tests {
    use super::{Direction, Geometry, MediaParams, Rect, StreamFormat};
    use crate::control::fixtures::{audio_format, decode, video_format};
    use crate::control::{
        ControlRequest, GEOMETRY_FLAG_COLORKEY, GEOMETRY_FLAG_VISIBLE, Limits, MAX_CLIP_RECTS,
        MAX_RATE_Q16, MAX_VOLUME_Q16, MIN_RATE_Q16, Request,
    };
    use crate::status::Status;

    #[test]
    fn field_rules() {
        let bad_formats = [
            StreamFormat {
                media: MediaParams {
                    channels: 2,
                    ..video_format().media
                },
                ..video_format()
            },
            StreamFormat {
                media: MediaParams {
                    fps_den: 1,
                    ..audio_format().media
                },
                ..audio_format()
            },
            StreamFormat {
                media: MediaParams {
                    width: 0,
                    ..video_format().media
                },
                ..video_format()
            },
            StreamFormat {
                media: MediaParams {
                    height: 16385,
                    ..video_format().media
                },
                ..video_format()
            },
            StreamFormat {
                media: MediaParams {
                    sample_rate: 48000,
                    ..video_format().media
                },
                ..video_format()
            },
            StreamFormat {
                media: MediaParams {
                    fps_den: 0,
                    ..video_format().media
                },
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
                media: MediaParams {
                    channels: 9,
                    ..audio_format().media
                },
                ..audio_format()
            },
            StreamFormat {
                media: MediaParams {
                    sample_rate: 0,
                    ..audio_format().media
                },
                ..audio_format()
            },
            StreamFormat {
                media: MediaParams {
                    width: 4,
                    ..audio_format().media
                },
                ..audio_format()
            },
            StreamFormat {
                media: MediaParams {
                    channels: 6,
                    ..audio_format().media
                },
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
            color_key: false,
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
    fn geometry_flags() {
        let geometry = |visible, color_key| Geometry {
            display_id: 0,
            visible,
            color_key,
            z: 0,
            dest: Rect::new(0, 0, 320, 240),
            source: Rect::default(),
            clip: Vec::new(),
        };
        // The flags word follows the 16-byte header and `display_id`.
        let flags_at = 16 + 4;
        for (visible, color_key, flags) in [
            (false, false, 0u32),
            (true, false, GEOMETRY_FLAG_VISIBLE),
            (false, true, GEOMETRY_FLAG_COLORKEY),
            (true, true, GEOMETRY_FLAG_VISIBLE | GEOMETRY_FLAG_COLORKEY),
        ] {
            let request = ControlRequest {
                generation: 1,
                target: 1,
                request: Request::PresSetGeometry(geometry(visible, color_key)),
            };
            let mut bytes = request.encode();
            assert_eq!(bytes[flags_at..flags_at + 4], flags.to_le_bytes());
            assert_eq!(
                ControlRequest::decode(&bytes, &Limits::default()),
                Ok(request)
            );
            // Bit 2 and above are undefined.
            bytes[flags_at..flags_at + 4].copy_from_slice(&(flags | 4).to_le_bytes());
            assert_eq!(
                ControlRequest::decode(&bytes, &Limits::default())
                    .unwrap_err()
                    .status(),
                Status::Invalid
            );
        }
    }
}

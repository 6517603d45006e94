//! Data buffers: the header that precedes every playback payload on a txq
//! and every capture payload on the capq, and the status a playback buffer
//! completes with (spec, "Data buffers").
//!
//! Only the 48-byte header is ever decoded here. The payload stays in guest
//! memory: the device hands its descriptors' addresses on to the uplink
//! without copying them.

use zerocopy::IntoBytes;
use zerocopy::little_endian::{U32, U64};

use crate::ProtoError;
use crate::control::{invalid, read_prefix};
use crate::device::HARD_MAX_BUFFER_BYTES;
use crate::layout::virtio_struct;
use crate::status::Status;
use crate::time;

virtio_struct! {
    /// `struct virtio_media_redir_data_hdr` (48 bytes).
    pub struct RawDataHdr {
        /// Stream id.
        pub stream_id: U32,
        /// Device generation.
        pub generation: U32,
        /// `FLAG_*` bits.
        pub flags: U32,
        /// Payload bytes after the header.
        pub payload_len: U32,
        /// Presentation time, ns (`TIME_NONE`: none).
        pub pts: U64,
        /// Decode time, ns (`TIME_NONE`: none).
        pub dts: U64,
        /// Duration, ns (`TIME_NONE`: none).
        pub duration: U64,
        /// With `F_CLIPPING`: decoded samples to drop at the start of this
        /// buffer; otherwise reserved, zero.
        pub clip_start: U32,
        /// With `F_CLIPPING`: decoded samples to drop at the end of this
        /// buffer; otherwise reserved, zero.
        pub clip_end: U32,
    }
}

/// Size of the data header.
pub const DATA_HDR_SIZE: usize = size_of::<RawDataHdr>();

virtio_struct! {
    /// `struct virtio_media_redir_data_status` (8 bytes).
    pub struct RawDataStatus {
        /// Status code.
        pub status: U32,
        /// Reserved, zero.
        pub reserved: U32,
    }
}

/// Size of the data status.
pub const DATA_STATUS_SIZE: usize = size_of::<RawDataStatus>();

/// The buffer starts a keyframe (random access point).
pub const FLAG_KEYFRAME: u32 = 1 << 0;
/// A discontinuity precedes this buffer.
pub const FLAG_DISCONT: u32 = 1 << 1;
/// The payload is in-band codec configuration (e.g. SPS/PPS).
pub const FLAG_CODEC_CONFIG: u32 = 1 << 2;
/// Last buffer of the stream; its payload may be empty.
pub const FLAG_EOS: u32 = 1 << 3;
/// Decode but do not render (after a seek to a non-keyframe position).
pub const FLAG_DECODE_ONLY: u32 = 1 << 4;
/// Every defined flag.
pub const ALL_FLAGS: u32 =
    FLAG_KEYFRAME | FLAG_DISCONT | FLAG_CODEC_CONFIG | FLAG_EOS | FLAG_DECODE_ONLY;

/// Decoded audio samples (per channel, at the stream's sample rate) to drop
/// from one buffer's output: encoder delay / Opus pre-skip at the start of
/// a stream, padding at its end (spec, "Playback data", `F_CLIPPING`). The
/// same numbers as GStreamer's `GstAudioClippingMeta` in format `DEFAULT`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Clip {
    /// Samples to drop at the start of the buffer's output.
    pub start: u32,
    /// Samples to drop at the end of the buffer's output.
    pub end: u32,
}

impl Clip {
    /// Nothing to drop.
    pub const NONE: Clip = Clip { start: 0, end: 0 };

    /// A clip of `start` and `end` samples, saturating at `u32::MAX`.
    pub fn saturating(start: u64, end: u64) -> Clip {
        Clip {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    /// Whether nothing is dropped.
    pub fn is_none(&self) -> bool {
        *self == Clip::NONE
    }
}

/// A validated data header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHeader {
    /// Stream id.
    pub stream_id: u32,
    /// Device generation.
    pub generation: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Payload bytes.
    pub payload_len: u32,
    /// Presentation time.
    pub pts: Option<u64>,
    /// Decode time.
    pub dts: Option<u64>,
    /// Duration.
    pub duration: Option<u64>,
    /// Samples to drop from the decoded audio (`F_CLIPPING`; else
    /// [`Clip::NONE`]: a device without the feature ignores the bytes).
    pub clip: Clip,
}

impl DataHeader {
    /// Decodes a header; `max_payload` is the device's `max_buffer_bytes`.
    pub fn decode(bytes: &[u8], max_payload: u32) -> Result<DataHeader, ProtoError> {
        let (raw, _): (RawDataHdr, _) = read_prefix(bytes, "data header")?;
        let flags = raw.flags.get();
        if flags & !ALL_FLAGS != 0 {
            return Err(invalid("flags", flags, "unknown data flag"));
        }
        let payload_len = raw.payload_len.get();
        let max = max_payload.min(HARD_MAX_BUFFER_BYTES);
        if payload_len > max {
            return Err(ProtoError::TooLarge {
                what: "payload",
                len: u64::from(payload_len),
                max: u64::from(max),
            });
        }
        if payload_len == 0 && flags & FLAG_EOS == 0 {
            return Err(invalid(
                "payload_len",
                0u32,
                "only an EOS buffer may be empty",
            ));
        }
        let header = DataHeader {
            stream_id: raw.stream_id.get(),
            generation: raw.generation.get(),
            flags,
            payload_len,
            pts: time::from_raw(raw.pts.get()),
            dts: time::from_raw(raw.dts.get()),
            duration: time::from_raw(raw.duration.get()),
            clip: Clip {
                start: raw.clip_start.get(),
                end: raw.clip_end.get(),
            },
        };
        if header.stream_id == 0 {
            return Err(invalid("stream_id", 0u32, "stream ids are nonzero"));
        }
        if let (Some(pts), Some(duration)) = (header.pts, header.duration)
            && pts
                .checked_add(duration)
                .is_none_or(|end| end == time::TIME_NONE)
        {
            return Err(invalid("duration", duration, "pts + duration overflows"));
        }
        Ok(header)
    }

    /// The 48 header bytes.
    pub fn to_bytes(&self) -> [u8; DATA_HDR_SIZE] {
        let raw = RawDataHdr {
            stream_id: self.stream_id.into(),
            generation: self.generation.into(),
            flags: self.flags.into(),
            payload_len: self.payload_len.into(),
            pts: time::to_raw(self.pts).into(),
            dts: time::to_raw(self.dts).into(),
            duration: time::to_raw(self.duration).into(),
            clip_start: self.clip.start.into(),
            clip_end: self.clip.end.into(),
        };
        let mut out = [0u8; DATA_HDR_SIZE];
        out.copy_from_slice(raw.as_bytes());
        out
    }

    /// Whether the buffer is a keyframe.
    pub fn is_keyframe(&self) -> bool {
        self.flags & FLAG_KEYFRAME != 0
    }

    /// Whether the buffer ends the stream.
    pub fn is_eos(&self) -> bool {
        self.flags & FLAG_EOS != 0
    }
}

/// The 8 status bytes the device writes at the end of a playback chain.
pub fn status_bytes(status: Status) -> [u8; DATA_STATUS_SIZE] {
    let raw = RawDataStatus {
        status: status.as_u32().into(),
        reserved: 0.into(),
    };
    let mut out = [0u8; DATA_STATUS_SIZE];
    out.copy_from_slice(raw.as_bytes());
    out
}

/// Decodes a data status (the driver's side).
pub fn decode_status(bytes: &[u8]) -> Result<Status, ProtoError> {
    let (raw, _): (RawDataStatus, _) = read_prefix(bytes, "data status")?;
    Status::from_u32(raw.status.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> DataHeader {
        DataHeader {
            stream_id: 5,
            generation: 9,
            flags: FLAG_KEYFRAME | FLAG_DISCONT,
            payload_len: 1000,
            pts: Some(33_333_333),
            dts: None,
            duration: Some(33_333_333),
            clip: Clip {
                start: 312,
                end: 0x0102_0304,
            },
        }
    }

    #[test]
    fn round_trip_and_layout() {
        assert_eq!(DATA_HDR_SIZE, 48);
        assert_eq!(DATA_STATUS_SIZE, 8);
        let bytes = header().to_bytes();
        assert_eq!(&bytes[0..4], &[5, 0, 0, 0]);
        assert_eq!(&bytes[24..32], &[0xff; 8]);
        assert_eq!(&bytes[40..48], &[0x38, 1, 0, 0, 4, 3, 2, 1]);
        assert_eq!(DataHeader::decode(&bytes, 1 << 20), Ok(header()));
        assert_eq!(
            decode_status(&status_bytes(Status::Cancelled)),
            Ok(Status::Cancelled)
        );
    }

    #[test]
    fn field_rules() {
        let check = |h: DataHeader, max| DataHeader::decode(&h.to_bytes(), max);
        assert_eq!(check(header(), 999).unwrap_err().status(), Status::Limit);
        let with = |change: fn(&mut DataHeader)| {
            let mut h = header();
            change(&mut h);
            h
        };
        let cases = [
            ("unknown flag", with(|h| h.flags = 1 << 9), false),
            ("stream 0", with(|h| h.stream_id = 0), false),
            ("empty payload", with(|h| h.payload_len = 0), false),
            (
                "empty payload at EOS",
                with(|h| {
                    h.payload_len = 0;
                    h.flags = FLAG_EOS;
                }),
                true,
            ),
            ("pts overflow", with(|h| h.pts = Some(u64::MAX - 10)), false),
        ];
        for (what, h, ok) in cases {
            assert_eq!(check(h, 1 << 20).is_ok(), ok, "{what}");
        }
        assert!(DataHeader::decode(&header().to_bytes()[..47], 1 << 20).is_err());
    }
}

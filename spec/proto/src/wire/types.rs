//! Scalar types of the wire messages: enumerations, bit flags, rectangles.
//!
//! The numbers are those of `spec/schema/media_wire.fbs`, which equal the
//! virtqueue's numbers for codecs and status codes.

use crate::enums::protocol_enum;

/// "No time": the value of an absent timestamp or duration on the wire.
pub const TIME_NONE: u64 = u64::MAX;

// Codecs, status codes and the enumerations the virtqueue also carries are
// the crate's own types: one definition, the same numbers on both sides of
// the daemon. Their conversions to and from the generated FlatBuffers
// types are in `convert`.
pub use crate::codec::Codec;
pub use crate::enums::{Direction, PresentationState, SourceKind};
pub use crate::status::Status;

protocol_enum! {
    /// Operation of a `CallControl` message (see [`CallAction`](super::CallAction)).
    pub enum CallOp: u8 {
        /// Start media.
        Start = 0 => "start",
        /// Put on hold.
        Hold = 1 => "hold",
        /// Resume from hold.
        Resume = 2 => "resume",
        /// Mute media.
        Mute = 3 => "mute",
        /// Unmute media.
        Unmute = 4 => "unmute",
        /// Send a DTMF event.
        Dtmf = 5 => "dtmf",
        /// End the call.
        End = 6 => "end",
    }
}

macro_rules! wire_flags {
    (
        $(#[$meta:meta])*
        $name:ident {
            $($(#[$fmeta:meta])* $flag:ident = $value:expr;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(u32);

        impl $name {
            $($(#[$fmeta])* pub const $flag: Self = Self($value);)*

            /// Every bit this protocol version defines.
            pub const ALL: Self = Self(0 $(| $value)*);

            /// No flag set.
            pub const fn empty() -> Self {
                Self(0)
            }

            /// The flags of `bits`, or `None` if it has an undefined bit set.
            pub const fn from_bits(bits: u32) -> Option<Self> {
                if bits & !Self::ALL.0 == 0 { Some(Self(bits)) } else { None }
            }

            /// The flags of `bits` with undefined bits dropped.
            pub const fn from_bits_truncate(bits: u32) -> Self {
                Self(bits & Self::ALL.0)
            }

            /// The wire value.
            pub const fn bits(self) -> u32 {
                self.0
            }

            /// Whether every flag of `other` is set.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether no flag is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }
        }

        impl core::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                Self(self.0 | rhs.0)
            }
        }

        impl core::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                self.0 |= rhs.0;
            }
        }
    };
}

wire_flags! {
    /// What a client can do with a codec (`CodecCap.flags`).
    CodecFlags {
        /// The client decodes it.
        DECODE = 1;
        /// The client encodes it (capture).
        ENCODE = 2;
        /// The client carries it over RTP (calls).
        RTP = 4;
    }
}

wire_flags! {
    /// Client features (`Capabilities.features`); same bits as the
    /// virtqueue's `client_features`.
    ClientFeatures {
        /// The client renders overlays.
        OVERLAY = 1;
        /// The client has capture sources.
        CAPTURE = 2;
        /// The client runs call media.
        CALL = 4;
    }
}

wire_flags! {
    /// Flags of a `Sample` or `CaptureSample`; same bits as the data
    /// buffer header's `flags`.
    SampleFlags {
        /// A keyframe (random access point).
        KEYFRAME = 1;
        /// A discontinuity precedes this sample.
        DISCONT = 2;
        /// The payload is in-band codec configuration.
        CODEC_CONFIG = 4;
        /// The last sample of the stream; the payload may be empty.
        EOS = 8;
        /// Decode but do not render.
        DECODE_ONLY = 16;
    }
}

wire_flags! {
    /// Flags of `CreatePresentation`; same bits as `PRES_CREATE`.
    PresentationFlags {
        /// A live source: no preroll (calls, capture).
        LIVE = 1;
    }
}

wire_flags! {
    /// Media selected by a call `Mute`/`Unmute`; same bits as `CALL_MUTE`.
    MediaMask {
        /// The call's audio.
        AUDIO = 1;
        /// The call's video.
        VIDEO = 2;
    }
}

/// A rectangle in pixels: origin `x`, `y`, size `width` x `height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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

impl Rect {
    /// A rectangle.
    pub const fn new(x: i32, y: i32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    /// Whether `x + width` and `y + height` stay within `i32`, so that a
    /// receiver can compute the far edges without overflow.
    pub const fn extent_fits(&self) -> bool {
        (self.x as i64) + (self.width as i64) <= i32::MAX as i64
            && (self.y as i64) + (self.height as i64) <= i32::MAX as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_numbers_match_layouts() {
        let expect = [
            (Codec::H264, 1),
            (Codec::H265, 2),
            (Codec::Vp8, 3),
            (Codec::Vp9, 4),
            (Codec::Av1, 5),
            (Codec::Mjpeg, 6),
            (Codec::Theora, 7),
            (Codec::Mpeg2Video, 8),
            (Codec::Mpeg4Part2, 9),
            (Codec::Opus, 0x101),
            (Codec::Vorbis, 0x102),
            (Codec::Aac, 0x103),
            (Codec::Mp3, 0x104),
            (Codec::Flac, 0x105),
            (Codec::PcmS16le, 0x106),
            (Codec::Ac3, 0x107),
            (Codec::Eac3, 0x108),
            (Codec::Mp2, 0x109),
            (Codec::PcmS24le, 0x10A),
            (Codec::PcmS32le, 0x10B),
            (Codec::PcmF32le, 0x10C),
            (Codec::PcmU8, 0x10D),
        ];
        assert_eq!(Codec::ALL.len(), expect.len());
        for (c, n) in expect {
            assert_eq!(c.as_u32(), n);
            assert_eq!(Codec::from_u32(n).ok(), Some(c));
            assert_eq!(c.is_video(), n < 0x100);
        }
        assert_eq!(Codec::from_u32(0).ok(), None);
        assert_eq!(Codec::from_u32(0x0A).ok(), None);
        assert_eq!(Codec::from_u32(0x10E).ok(), None);
    }

    #[test]
    fn status_numbers_match_layouts() {
        assert_eq!(Status::ALL.len(), 13);
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(s.as_u32() as usize, i);
        }
        assert_eq!(Status::Dropped.as_u32(), 12);
        assert_eq!(Status::from_u32(13).ok(), None);
    }

    #[test]
    fn flags() {
        assert_eq!(SampleFlags::ALL.bits(), 31);
        assert_eq!(SampleFlags::from_bits(32), None);
        assert_eq!(
            SampleFlags::from_bits(9),
            Some(SampleFlags::KEYFRAME | SampleFlags::EOS)
        );
        assert!(SampleFlags::from_bits_truncate(0xff).contains(SampleFlags::DECODE_ONLY));
        assert!(MediaMask::empty().is_empty());
    }

    #[test]
    fn rect_extent() {
        assert!(Rect::new(0, 0, i32::MAX as u32, 0).extent_fits());
        assert!(!Rect::new(1, 0, i32::MAX as u32, 0).extent_fits());
        assert!(Rect::new(i32::MIN, -5, u32::MAX, 0).extent_fits());
        assert!(!Rect::new(i32::MIN + 1, 0, u32::MAX, 0).extent_fits());
        assert!(!Rect::new(0, 0, 0, u32::MAX).extent_fits());
    }
}

//! Where the Rust types of the wire meet the FlatBuffers types generated
//! from `spec/schema/media_wire.fbs`: every conversion between the two, in
//! both directions, and the test that they agree.
//!
//! Why one module: the schema and the Rust enums each carry the protocol's
//! numbers. Converting by hand at each field (`fb::Codec(c.as_u32())` in
//! the encoder, a `from_u32` and an error in the decoder) spread the
//! correspondence over many places; here each enum is paired with its
//! generated twin once ([`generated_enums!`]), the encoder calls
//! [`Generated::to_fb`], the decoder [`enum_of`], and a test walks every
//! variant both ways and compares names, so a value added to one side only
//! fails the build's tests, not a peer at run time.

use super::WireError;
use super::generated::mediaredir::wire as fb;
use super::types::{
    CallOp, ClientFeatures, Codec, CodecFlags, Direction, MediaMask, PresentationFlags,
    PresentationState, Rect, SampleFlags, SourceKind, Status, TIME_NONE,
};

/// A Rust enumeration of the protocol paired with the type flatc generated
/// for it (a newtype over the number); the lists and names serve the test.
pub(crate) trait Generated: Copy + Sized + 'static {
    /// The generated type.
    type Fb: Copy + 'static;
    #[cfg(test)]
    /// Every Rust value.
    const ALL: &'static [Self];
    #[cfg(test)]
    /// Every value the schema names.
    const FB_VALUES: &'static [Self::Fb];
    /// The generated value of the same number.
    fn to_fb(self) -> Self::Fb;
    /// The Rust value of a generated one, if the protocol defines it.
    fn from_fb(v: Self::Fb) -> Option<Self>;
    /// The number a generated value holds.
    fn fb_number(v: Self::Fb) -> u32;
    #[cfg(test)]
    /// The schema's name of a generated value.
    fn fb_name(v: Self::Fb) -> Option<&'static str>;
    #[cfg(test)]
    /// The Rust variant's identifier.
    fn name_of(self) -> &'static str;
}

/// Pairs each enum with its generated twin; `except [X]` names values of
/// the schema the Rust type leaves out on purpose (`Codec::Invalid`, the
/// FlatBuffers default that no sender may write).
macro_rules! generated_enums {
    ($($ours:ident => $fb:ident $(except [$($extra:literal),*])?;)*) => {
        $(
            impl Generated for $ours {
                type Fb = fb::$fb;
                #[cfg(test)]
                const ALL: &'static [Self] = &$ours::ALL;
                #[cfg(test)]
                const FB_VALUES: &'static [fb::$fb] = fb::$fb::ENUM_VALUES;
                fn to_fb(self) -> fb::$fb {
                    fb::$fb(self.raw())
                }
                fn from_fb(v: fb::$fb) -> Option<Self> {
                    Self::from_raw(v.0)
                }
                fn fb_number(v: fb::$fb) -> u32 {
                    u32::from(v.0)
                }
                #[cfg(test)]
                fn fb_name(v: fb::$fb) -> Option<&'static str> {
                    v.variant_name()
                }
                #[cfg(test)]
                fn name_of(self) -> &'static str {
                    self.variant_name()
                }
            }
        )*

        /// Checks every pair (see [`agree`]).
        #[cfg(test)]
        fn every_pair_agrees() {
            $(agree::<$ours>(&[$($($extra),*)?]);)*
        }
    };
}

generated_enums! {
    Codec => Codec except ["Invalid"];
    Status => Status;
    Direction => Direction;
    SourceKind => SourceKind;
    PresentationState => PresentationState;
    CallOp => CallOp;
}

/// The Rust value of a received enumeration; `field` names it in the error.
pub(crate) fn enum_of<T: Generated>(v: T::Fb, field: &'static str) -> Result<T, WireError> {
    T::from_fb(v).ok_or(WireError::UnknownEnum {
        field,
        value: T::fb_number(v),
    })
}

/// Flag sets: the Rust type of a received `uint32` of flags, refusing bits
/// the protocol does not define.
macro_rules! flags_of {
    ($($fn:ident: $ty:ty;)*) => {
        $(
            pub(crate) fn $fn(bits: u32, field: &'static str) -> Result<$ty, WireError> {
                <$ty>::from_bits(bits).ok_or(WireError::UnknownFlags {
                    field,
                    bits: bits & !<$ty>::ALL.bits(),
                })
            }
        )*
    };
}

flags_of! {
    codec_flags: CodecFlags;
    client_features: ClientFeatures;
    sample_flags: SampleFlags;
    presentation_flags: PresentationFlags;
    media_mask: MediaMask;
}

impl From<CodecFlags> for fb::CodecFlags {
    fn from(f: CodecFlags) -> Self {
        fb::CodecFlags::from_bits_retain(f.bits())
    }
}

impl From<ClientFeatures> for fb::ClientFeatures {
    fn from(f: ClientFeatures) -> Self {
        fb::ClientFeatures::from_bits_retain(f.bits())
    }
}

impl From<&Rect> for fb::Rect {
    fn from(r: &Rect) -> Self {
        fb::Rect::new(r.x, r.y, r.width, r.height)
    }
}

impl From<&fb::Rect> for Rect {
    fn from(r: &fb::Rect) -> Self {
        Rect::new(r.x(), r.y(), r.width(), r.height())
    }
}

/// A time on the wire: [`TIME_NONE`] when absent.
pub(crate) fn time_to_wire(t: Option<u64>) -> u64 {
    t.unwrap_or(TIME_NONE)
}

/// A received time: `None` for [`TIME_NONE`].
pub(crate) fn time_from_wire(t: u64) -> Option<u64> {
    (t != TIME_NONE).then_some(t)
}

/// Every Rust value maps to the generated value of the same number and
/// name and back; every value the schema names maps back to the Rust value
/// of the same name, except the `extra` ones.
#[cfg(test)]
fn agree<T: Generated + PartialEq + std::fmt::Debug>(extra: &[&str]) {
    for &v in T::ALL {
        let f = v.to_fb();
        assert_eq!(T::fb_name(f), Some(v.name_of()), "{v:?} to the schema");
        assert_eq!(T::from_fb(f), Some(v), "{v:?} back from the schema");
    }
    for &f in T::FB_VALUES {
        let name = T::fb_name(f).expect("a schema value has a name");
        match T::from_fb(f) {
            Some(v) => assert_eq!(v.name_of(), name, "schema value {name}"),
            None => assert!(
                extra.contains(&name),
                "schema value {name} has no Rust value"
            ),
        }
    }
    assert_eq!(T::FB_VALUES.len(), T::ALL.len() + extra.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_enums_agree() {
        every_pair_agrees();
        assert_eq!(fb::CodecFlags::all().bits(), CodecFlags::ALL.bits());
        assert_eq!(fb::ClientFeatures::all().bits(), ClientFeatures::ALL.bits());
    }

    #[test]
    fn unknown_numbers_are_refused_with_their_field() {
        assert_eq!(
            enum_of::<Codec>(fb::Codec::Invalid, "CodecCap.codec"),
            Err(WireError::UnknownEnum {
                field: "CodecCap.codec",
                value: 0
            })
        );
        assert_eq!(
            enum_of::<CallOp>(fb::CallOp(7), "CallControl.op"),
            Err(WireError::UnknownEnum {
                field: "CallControl.op",
                value: 7
            })
        );
        assert_eq!(
            codec_flags(8, "CodecCap.flags"),
            Err(WireError::UnknownFlags {
                field: "CodecCap.flags",
                bits: 8
            })
        );
        assert_eq!(time_from_wire(time_to_wire(None)), None);
        assert_eq!(time_from_wire(time_to_wire(Some(5))), Some(5));
    }
}

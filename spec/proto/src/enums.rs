//! The one way this crate defines a protocol enumeration.
//!
//! Why: codecs, status codes, request codes and the wire's small
//! enumerations each need the same things: the Rust enum with the spec's
//! numbers, the list of every value, decoding from and encoding to the
//! number, a name for logs and tools. Written by hand for each, the same
//! lists stood three times (the enum, `ALL`, `from_u32`, the names) and a
//! new codec had to be added in every one of them. [`protocol_enum!`]
//! takes one table (variant, number, name) and makes all of it; the
//! conversions to and from the FlatBuffers types generated from the schema
//! are made from the same enums in [`crate::wire::convert`], which also
//! checks that both sides agree, variant by variant.

/// Defines a protocol enumeration from one table.
///
/// ```text
/// protocol_enum! {
///     /// Doc of the enum.
///     pub enum Name: u32 {
///         /// Doc of the variant.
///         Variant = 0x001 => "name",
///         ...
///     }
///     unknown = ProtoError::UnknownThing;   // optional
/// }
/// ```
///
/// makes the `#[repr]` enum, `ALL` (every value, in table order),
/// `from_raw`/`raw` (the number in the enum's own width), `name` (the
/// table's name, also its `Display`), `variant_name` (the identifier, as
/// the FlatBuffers schema spells it) and `From<Name> for` the repr type.
/// With `unknown = f`, where `f(u32)` makes the crate's error for a number
/// the table does not have, it adds `from_u32`, `as_u32` and
/// `TryFrom<u32>`: the form the virtqueue's 32-bit fields use.
macro_rules! protocol_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ty {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal => $label:literal,)*
        }
        $(unknown = $unknown:expr;)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr($repr)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $value,)*
        }

        impl $name {
            /// Every value, in the order of the spec's table.
            pub const ALL: [Self; [$($value),*].len()] = [$(Self::$variant,)*];

            /// The value numbered `v`, if the spec defines one.
            pub const fn from_raw(v: $repr) -> Option<Self> {
                match v {
                    $($value => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// Its number.
            pub const fn raw(self) -> $repr {
                self as $repr
            }

            /// Its name, as logs and tools print it.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)*
                }
            }

            /// The identifier of the variant, as the schema spells it.
            pub const fn variant_name(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant),)*
                }
            }
        }

        impl From<$name> for $repr {
            fn from(v: $name) -> $repr {
                v.raw()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        $(
            impl $name {
                /// Decodes a 32-bit field.
                pub fn from_u32(value: u32) -> Result<Self, $crate::ProtoError> {
                    <$repr>::try_from(value)
                        .ok()
                        .and_then(Self::from_raw)
                        .ok_or_else(|| ($unknown)(value))
                }

                /// Its number in a 32-bit field.
                pub const fn as_u32(self) -> u32 {
                    self as u32
                }
            }

            impl TryFrom<u32> for $name {
                type Error = $crate::ProtoError;

                fn try_from(value: u32) -> Result<Self, Self::Error> {
                    Self::from_u32(value)
                }
            }
        )?
    };
}

pub(crate) use protocol_enum;

// The enumerations both the virtqueue (32-bit fields) and the wire
// (FlatBuffers `ubyte`) carry: one type each, re-exported where the spec
// places them (`control`, `response`, `event`, `wire`).

protocol_enum! {
    /// Direction of a stream.
    pub enum Direction: u8 {
        /// Guest to client: the client decodes and renders.
        Playback = 0 => "playback",
        /// Client to guest: the client captures and encodes.
        Capture = 1 => "capture",
    }
    unknown = |v| crate::control::invalid("direction", v, "must be 0 or 1");
}

protocol_enum! {
    /// Kind of a client capture source.
    pub enum SourceKind: u8 {
        /// A microphone.
        Microphone = 0 => "microphone",
        /// A camera.
        Camera = 1 => "camera",
        /// A screen.
        Screen = 2 => "screen",
    }
    unknown = |v| crate::control::invalid("kind", v, "must be 0, 1 or 2");
}

protocol_enum! {
    /// State of a presentation, as the client reports it and the device
    /// answers `PRES_QUERY_POSITION`.
    pub enum PresentationState: u8 {
        /// Created, not yet played.
        Idle = 0 => "idle",
        /// Playing (preroll done).
        Playing = 1 => "playing",
        /// Paused.
        Paused = 2 => "paused",
    }
    unknown = |v| crate::control::invalid("state", v, "must be 0, 1 or 2");
}

//! The one set of derives every virtqueue and broker structure carries.
//!
//! Why a macro: each structure the spec lays out in guest memory is
//! `#[repr(C)]` with little-endian fields and is read and written with
//! `zerocopy`, so each needs the same eleven derives; written out on every
//! structure they were the most repeated lines of the crate, and a
//! structure missing one (say `Unaligned`) would read differently from its
//! neighbours. [`virtio_struct!`] adds them and `#[repr(C)]`.

/// Defines a `#[repr(C)]` structure of the spec's layouts with the derives
/// `zerocopy` needs to read and write it in place.
macro_rules! virtio_struct {
    ($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Copy,
            Default,
            PartialEq,
            Eq,
            ::zerocopy::FromBytes,
            ::zerocopy::IntoBytes,
            ::zerocopy::KnownLayout,
            ::zerocopy::Immutable,
            ::zerocopy::Unaligned,
        )]
        #[repr(C)]
        pub struct $name { $($body)* }
    };
}

pub(crate) use virtio_struct;

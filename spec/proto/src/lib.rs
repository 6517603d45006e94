//! Types of the media-redirection virtio device and of its wire protocol.
//!
//! `spec/README.md` is the normative text (with `spec/broker.md` for the
//! guest broker's messages and `spec/wire.md` for the wire protocol); this
//! crate implements exactly its layouts and per-field checks, and nothing
//! more: state machines and flow control belong to the daemon. Two families of types live here:
//!
//! - virtqueue structures (`#[repr(C)]`, explicit little-endian fields), which
//!   the guest driver writes into guest memory and the device reads: see
//!   [`device`], [`control`], [`event`], [`data`], and the guest broker's
//!   messages in [`broker`];
//! - host-to-client wire frames ([`wire`]): a fixed prefix, a FlatBuffers
//!   header generated from `spec/schema/media_wire.fbs`, and raw payload bytes.
//!
//! Every decoder takes untrusted bytes and returns either a validated value or
//! a typed error; none of them panics on any input (property-tested).

pub mod broker;
pub mod codec;
pub mod control;
pub mod data;
pub mod device;
mod enums;
pub mod error;
pub mod event;
mod layout;
pub mod media;
pub mod response;
pub mod status;
pub mod time;
pub mod wire;

pub use error::ProtoError;
pub use media::MediaParams;

#[cfg(test)]
mod proptests;

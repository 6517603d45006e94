//! `libmediaredir`: the C ABI of the guest player API
//! ([`mediaredir_player`]), for players that are not written in
//! Rust (GStreamer elements, FFmpeg hwaccels, VLC modules, browsers).
//!
//! Why a separate crate: the player API is a Rust API with Rust types; C
//! needs flat `#[repr(C)]` structs, integer error codes, opaque handles
//! and a guarantee that no panic unwinds into the caller. This crate is
//! only that translation: every export checks its pointers, runs inside
//! `catch_unwind` ([`ffi`]), and maps errors to the convention that
//! `include/mediaredir.h` documents — 0 on success, `-errno` for local
//! failures, a positive protocol status when the broker or device refused.
//!
//! The header is generated: `cargo xtask cbindgen-regen` runs cbindgen on
//! this crate (configuration in `cbindgen.toml`), so the C declarations and
//! their comments are the doc comments written here (each function names
//! the V4L2 call it corresponds to), and the constants come from the
//! protocol's tables in `mediaredir-proto`; the header is committed, and
//! `cargo xtask cbindgen-check` (a step of `cargo xtask test`) fails when
//! it is stale. `tests/header_sync.rs` still checks it against the exports
//! of the built library and the protocol's numbers, and
//! `tests/c_player.rs` compiles `examples/play_ivf.c` against it and plays
//! a clip through the real daemon and broker.
//!
//! Files: [`handle`] (open, close, fd, settings, messages), [`control`]
//! (caps, formats, presentations, streams, playback control), [`buffers`]
//! (request, fill in place, queue, dequeue), [`events`], [`types`] (the C
//! structs), [`errors`] (the return convention), [`ffi`] (the boundary).

pub mod buffers;
pub mod control;
pub mod errors;
pub mod events;
pub mod ffi;
pub mod handle;
pub mod types;

pub use ffi::Handle;

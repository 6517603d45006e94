//! The client media engine: what runs on the user's device.
//!
//! It receives the guest's original compressed streams over the wire protocol
//! of `spec/schema/` and plays them with GStreamer, one pipeline per
//! presentation and one `appsrc` per stream, so that the streams of a
//! presentation share one clock. It plays audio on the machine's sound
//! device and hands decoded video, with the geometry the guest reports, to
//! the integrator that draws it (the viewer; the engine opens no window),
//! applies transport controls and volume, and sends back acknowledgements
//! (which bound what it buffers), EOS, position, errors and QoS.
//!
//! The daemon's in-process uplink and the `media-client` binary (a socket
//! client, in its own crate) drive the same [`Engine`]: [`Engine::handle`]
//! takes the control messages, [`Engine::push_sample`] the media samples as
//! `gst::Buffer`s that wrap the sender's memory (no copy), and an
//! [`EngineEvents`] sink receives what goes back. The engine knows no
//! transport: no socket, TLS, Spice or command line here.
//!
//! With the `verify` feature (not default: the bit-exact oracle of tests
//! and tools), `OutputMode::Verify` hashes every decoded frame and sample
//! (`VerificationReport`) so that tests can prove the output bit-exact
//! with a local decode of the original file (`verify::reference_decode`).
//!
//! Modules, one job each:
//! - [`config`]: engine configuration (output mode, watermarks);
//! - [`error`]: the library's error type;
//! - [`events`]: the event sink trait;
//! - [`caps`]: GStreamer caps from a stream's codec, format and codec data;
//! - [`registry`]: which codecs this machine can decode;
//! - [`flow`]: the acknowledgement / watermark policy (pure logic);
//! - [`frames`]: decoded pictures and geometry for an integrator that
//!   draws them (the viewer);
//! - [`kind`]: video or audio;
//! - [`sinks`]: the explicit, ordered audio sink list (never autoplugged)
//!   and the Debian package of each sink;
//! - `verify` (feature `verify`): frame hashes, verification reports and
//!   the reference decoder;
//! - `output`, `stream`, `presentation`, `engine`: the pipelines;
//! - [`capture`]: capture streams (sources, encoding pipelines, samples to
//!   the daemon);
//! - [`call`]: call media sessions (SDP, RTP session, statistics).

pub mod call;
pub mod caps;
pub mod capture;
pub mod config;
mod decode_only;
mod engine;
pub mod error;
pub mod events;
pub mod flow;
pub mod frames;
pub mod kind;
mod output;
mod presentation;
pub mod registry;
pub mod sinks;
mod stream;
mod trim;
#[cfg(feature = "verify")]
pub mod verify;

pub use capture::CaptureStats;
pub use config::{CallConfig, CaptureSources, EngineConfig, OutputMode, Watermarks};
pub use engine::{Engine, StreamStats};
pub use error::EngineError;
pub use events::EngineEvents;
pub use frames::{VideoFrame, VideoOutput, VideoOutputHandle};
pub use kind::MediaKind;
#[cfg(feature = "verify")]
pub use verify::{StreamReport, VerificationReport};

/// Re-export of the GStreamer crate the API uses (`gst::Buffer`).
pub use gstreamer as gst;
/// The GStreamer audio bindings the engine uses (GstAudioClippingMeta).
pub use gstreamer_audio as gst_audio;
/// Re-export of the wire protocol types the API uses.
pub use mediaredir_proto::wire;

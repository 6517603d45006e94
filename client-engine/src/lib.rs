//! The client media engine: what runs on the user's device.
//!
//! It receives the guest's original compressed streams over the wire protocol
//! of `spec/schema/` and plays them with GStreamer, one pipeline per
//! presentation and one `appsrc` per stream, so that the streams of a
//! presentation share one clock. It renders video as an overlay at the
//! geometry the guest reports, applies transport controls and volume, and
//! sends back acknowledgements (which bound what it buffers), EOS, position,
//! errors and QoS.
//!
//! This crate will hold (see the client engine issue): the engine library,
//! the `media-client` binary, and a verification mode that hashes every
//! decoded frame and sample so that tests can prove the output bit-exact with
//! a local decode of the original file.

//! Errors of the engine library: one enum for the whole crate, since its
//! layers (caps, pipelines, reference decode) fail in the same few ways and a
//! caller only needs to tell them apart for reporting.

use mediaredir_proto::codec::Codec;

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// GStreamer could not be initialised.
    #[error("GStreamer initialisation failed: {0}")]
    Init(String),
    /// A GStreamer element is missing from the registry.
    #[error("missing GStreamer element {0}")]
    MissingElement(String),
    /// The codec is not decodable here (no decoder, or disabled).
    #[error("codec {0:?} is not supported by this client")]
    Unsupported(Codec),
    /// The stream's codec data or format is malformed.
    #[error("invalid stream format: {0}")]
    InvalidFormat(String),
    /// Linking or state change of a pipeline failed.
    #[error("pipeline error: {0}")]
    Pipeline(String),
    /// No sink of the environment's list is usable (see [`crate::sinks`]).
    #[error(transparent)]
    NoSink(#[from] crate::sinks::NoSink),
    /// A reference decode failed.
    #[error("reference decode failed: {0}")]
    Reference(String),
}

impl From<gstreamer::glib::BoolError> for EngineError {
    fn from(e: gstreamer::glib::BoolError) -> Self {
        EngineError::Pipeline(e.to_string())
    }
}

impl From<gstreamer::StateChangeError> for EngineError {
    fn from(e: gstreamer::StateChangeError) -> Self {
        EngineError::Pipeline(e.to_string())
    }
}

//! Video or audio: the one distinction the output chain, the sink lists and
//! the statistics make between decoded streams. Its own module because the
//! pipelines, the sinks and the (optional) verification oracle all use it,
//! and none of them should have to import another for it.

/// Kind of a decoded stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Pictures.
    Video,
    /// Sound.
    Audio,
}

//! The one error type of the crate.
//!
//! A player shows these messages to a user, so each says what went wrong
//! with which file instead of exposing parser internals.

use std::path::PathBuf;

/// Why a file cannot be demuxed.
#[derive(Debug, thiserror::Error)]
pub enum DemuxError {
    /// The file could not be opened or read.
    #[error("cannot read {path}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading failed in the middle of the file.
    #[error("read error")]
    Io(#[from] std::io::Error),
    /// The first bytes match no container this crate knows.
    #[error(
        "{path}: unknown container format (expected IVF, Annex-B H.264/H.265, Matroska/WebM, MP4, Ogg, MP3, ADTS AAC, FLAC, WAV, AVI, MPEG-TS or MPEG-PS)"
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A stream uses a codec this crate cannot hand to the device.
    #[error("{container}: unsupported codec {codec:?}")]
    UnsupportedCodec {
        /// Container name.
        container: &'static str,
        /// The container's name for the codec.
        codec: String,
    },
    /// A stream uses a codec the device protocol has no number for.
    #[error("{container}: codec not supported by the device: {codec}")]
    NotDeviceCodec {
        /// Container name.
        container: &'static str,
        /// The codec's common name.
        codec: &'static str,
    },
    /// A track is encrypted (DRM): its bytes mean nothing to a decoder
    /// without the keys, which never reach the guest's player.
    #[error(
        "{container}: DRM-protected track (encryption scheme {scheme:?}, original format {original:?}): protected media cannot be redirected"
    )]
    Protected {
        /// Container name.
        container: &'static str,
        /// The protection scheme (`cenc`, `cbcs`, ...; empty if unnamed).
        scheme: String,
        /// The codec the track had before encryption (`avc1`, `mp4a`, ...).
        original: String,
    },
    /// The container uses a feature this crate does not implement.
    #[error("{container}: unsupported feature: {feature}")]
    Unsupported {
        /// Container name.
        container: &'static str,
        /// What is missing.
        feature: &'static str,
    },
    /// The file is damaged or truncated.
    #[error("corrupt or truncated {container} file: {reason}")]
    Corrupt {
        /// Container name.
        container: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl DemuxError {
    /// A [`DemuxError::Corrupt`].
    pub(crate) fn corrupt(container: &'static str, reason: impl Into<String>) -> Self {
        DemuxError::Corrupt {
            container,
            reason: reason.into(),
        }
    }
}

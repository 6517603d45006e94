//! The viewer's errors.

/// What stops the viewer.
#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    /// The command line or a connection file is wrong.
    #[error("{0}")]
    Options(String),
    /// GTK could not start (no display).
    #[error("GTK: {0}")]
    Gtk(String),
    /// The desktop's Spice session failed.
    #[error("Spice: {0}")]
    Spice(String),
    /// The media connection could not start.
    #[error("media: {0}")]
    Media(String),
}

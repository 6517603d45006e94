//! `mediaredir`: GStreamer elements for guests that have GStreamer, so the
//! rest of the guest side needs none.
//!
//! - `mediaredirsink` ([`sink::MediaRedirSink`]): takes compressed audio or
//!   video and redirects it to the client through the broker; its caps are
//!   the formats the connected client decodes, so `playbin` with it as
//!   audio/video sink stops autoplugging before the decoder, and refuses
//!   everything (so playbin decodes locally) when no client is connected.
//! - `mediaredirvideosink` / `mediarediraudiosink` ([`autosink`]): what to
//!   hand `playbin` or `gst-play-1.0`: `mediaredirsink` when the client
//!   decodes the stream, a local sink (`autovideosink`/`autoaudiosink`, or
//!   the `fallback-sink` property) fed by a local decoder when not.
//!
//! Build the `cdylib` and point `GST_PLUGIN_PATH` at it, or register the
//! elements of the `rlib` with [`plugin_register_static`].

use gstreamer as gst;
use gstreamer::glib;

// Before the elements: its macro is theirs.
#[macro_use]
mod element;

pub mod autosink;
pub mod caps;
pub mod decoder;
mod group;
pub mod sink;

/// Locks `m`, poisoned or not: a panic caught at a pad function's
/// boundary must not wedge the element for good.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    sink::register(Some(plugin))?;
    autosink::register(Some(plugin))?;
    decoder::register(Some(plugin))?;
    Ok(())
}

#[allow(missing_docs, unreachable_pub)]
mod plugin {
    use super::plugin_init;

    gstreamer::plugin_define!(
        mediaredir,
        "Media redirection to the client of a virtual desktop",
        plugin_init,
        "0.1.0",
        "BSD",
        "gst-plugin-mediaredir",
        "gst-plugin-mediaredir",
        "https://example.invalid/vhost-device-media"
    );
}

pub use plugin::plugin_register_static;

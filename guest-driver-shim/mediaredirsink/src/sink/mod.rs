//! `mediaredirsink`: a sink that takes compressed audio or video and
//! redirects it to the client through the media-redirection device.
//!
//! Its sink pad answers caps queries with the compressed formats the
//! connected client decodes (none when the broker is unreachable or no
//! client is connected), so `playbin`/`decodebin` stop autoplugging before
//! the decoder when the client can decode the stream, and decode locally
//! otherwise (see `mediaredirautosink` for a sink that then renders
//! locally).

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

mod buffer;
mod clip;
mod imp;
mod settings;
mod stream;
mod submit;

glib::wrapper! {
    /// The `mediaredirsink` element.
    pub struct MediaRedirSink(ObjectSubclass<imp::MediaRedirSink>)
        @extends gstreamer_base::BaseSink, gst::Element, gst::Object,
        @implements gstreamer_audio::StreamVolume;
}

/// Registers `mediaredirsink` with `plugin` (or statically with `None`).
pub fn register(plugin: Option<&gst::Plugin>) -> Result<(), glib::BoolError> {
    gst::Element::register(
        plugin,
        "mediaredirsink",
        gst::Rank::NONE,
        MediaRedirSink::static_type(),
    )
}

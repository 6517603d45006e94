//! `mediaredirvideosink` / `mediarediraudiosink`: redirect when the client
//! can decode the stream, play locally otherwise.
//!
//! `mediaredirsink` alone refuses caps without a client, so a `playbin`
//! with it as video sink decodes locally and then has nowhere to send the
//! raw video (`not-linked`). These bins are what a user hands to
//! `playbin`/`gst-play-1.0` instead: their sink pad accepts what the
//! redirect sink accepts (the client's compressed formats) plus what a
//! local sink accepts (raw video or audio), so playbin stops autoplugging
//! before the decoder when the client decodes the stream and decodes
//! locally when not; at the first caps the bin keeps the sink that takes
//! them and drops the other.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

mod choice;
mod imp;
mod shared;

glib::wrapper! {
    /// The `mediaredirvideosink` element (local fallback: `autovideosink`).
    pub struct MediaRedirVideoSink(ObjectSubclass<imp::video::Sink>)
        @extends gst::Bin, gst::Element, gst::Object,
        @implements gst::ChildProxy;
}

glib::wrapper! {
    /// The `mediarediraudiosink` element (local fallback: `autoaudiosink`).
    pub struct MediaRedirAudioSink(ObjectSubclass<imp::audio::Sink>)
        @extends gst::Bin, gst::Element, gst::Object,
        @implements gst::ChildProxy;
}

/// Registers `mediaredirvideosink` and `mediarediraudiosink` with `plugin`
/// (or statically with `None`).
pub fn register(plugin: Option<&gst::Plugin>) -> Result<(), glib::BoolError> {
    gst::Element::register(
        plugin,
        "mediaredirvideosink",
        gst::Rank::NONE,
        MediaRedirVideoSink::static_type(),
    )?;
    gst::Element::register(
        plugin,
        "mediarediraudiosink",
        gst::Rank::NONE,
        MediaRedirAudioSink::static_type(),
    )
}

//! `mediaredirvideodec` / `mediarediraudiodec`: redirecting decoders, the
//! elements through which unmodified GStreamer applications redirect
//! (design and reasons: docs/players.md).
//!
//! `decodebin`, `decodebin3` (so `playbin`, `playbin3`, `gst-play-1.0`)
//! and applications that set their own sink all choose a decoder by rank;
//! these rank above the system's decoders (PRIMARY + 1). Each accepts the
//! compressed formats the device carries that the guest can also decode
//! locally, and at the stream's caps becomes one of two branches:
//!
//! - redirect ([`forward`]): the compressed stream goes to the client
//!   through the broker (a `mediaredirsink` of its own, driven by the
//!   element), and the element outputs placeholders ([`placeholder`]): the
//!   spec's key colour at the stream's size for video, silence for audio,
//!   with the stream's times, so that the application's own sink and clock
//!   run as before;
//! - local ([`local`]): a parser and the best system decoder for the caps,
//!   never one of ours, so that the application sees what it would see
//!   without this plugin.
//!
//! Redirect when the connected client decodes the caps and the stream can
//! be created; local in every other case (no broker, no client, a codec the
//! client lacks, any error at the start), with no error to the application.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

mod choice;
mod device;
mod forward;
mod imp;
mod local;
mod placeholder;

glib::wrapper! {
    /// The `mediaredirvideodec` element.
    pub struct MediaRedirVideoDec(ObjectSubclass<imp::video::Dec>)
        @extends gst::Bin, gst::Element, gst::Object,
        @implements gst::ChildProxy;
}

glib::wrapper! {
    /// The `mediarediraudiodec` element.
    pub struct MediaRedirAudioDec(ObjectSubclass<imp::audio::Dec>)
        @extends gst::Bin, gst::Element, gst::Object,
        @implements gst::ChildProxy;
}

/// Answers a caps query with `caps`, filtered as the query asks.
fn answer_caps(q: &mut gst::query::Caps, caps: &gst::Caps) {
    let caps = match q.filter() {
        Some(f) => f.intersect_with_mode(caps, gst::CapsIntersectMode::First),
        None => caps.clone(),
    };
    q.set_result(&caps);
}

/// The pad templates of a decoder: an always `sink` pad of `sink` caps
/// and an always `src` pad of `src` caps.
fn pad_templates(sink: &gst::Caps, src: &gst::Caps) -> Vec<gst::PadTemplate> {
    [
        ("sink", gst::PadDirection::Sink, sink),
        ("src", gst::PadDirection::Src, src),
    ]
    .into_iter()
    .map(|(name, direction, caps)| {
        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, caps)
            .expect("a valid pad template")
    })
    .collect()
}

/// The decoders' rank: above the system's software decoders (PRIMARY), so
/// that autoplugging tries them first.
pub fn rank() -> gst::Rank {
    gst::Rank::PRIMARY + 1
}

/// Registers `mediaredirvideodec` and `mediarediraudiodec` with `plugin`
/// (or statically with `None`).
pub fn register(plugin: Option<&gst::Plugin>) -> Result<(), glib::BoolError> {
    gst::Element::register(
        plugin,
        "mediaredirvideodec",
        rank(),
        MediaRedirVideoDec::static_type(),
    )?;
    gst::Element::register(
        plugin,
        "mediarediraudiodec",
        rank(),
        MediaRedirAudioDec::static_type(),
    )
}

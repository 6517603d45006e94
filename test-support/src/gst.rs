//! GStreamer helpers (feature `gst`) for the tests of crates that link
//! GStreamer already (the client engine, the daemon's local uplink). Off by
//! default, so that test-support links no system library for the others.

use gstreamer as gst;
use gstreamer::prelude::*;

/// The sink pad of `element` if it is a decoder itself (made by a decoder
/// factory, not a bin such as `decodebin`): where a test watches what
/// reaches the decoder, from a pipeline's `deep-element-added`.
pub fn decoder_sink_pad(element: &gst::Element) -> Option<gst::Pad> {
    let decoder = element
        .factory()
        .is_some_and(|f| f.has_type(gst::ElementFactoryType::DECODER))
        && !element.is::<gst::Bin>();
    element.static_pad("sink").filter(|_| decoder)
}

//! The local branch: the parser and decoder the system would have used
//! without this plugin, chosen from the registry as `decodebin` chooses
//! (by caps, then rank), never an element of this plugin (no recursion:
//! a pipeline never holds two redirecting elements).

use gstreamer as gst;
use gstreamer::prelude::*;

/// The plugin whose elements are never chosen here.
const OURS: &str = "mediaredir";

fn is_ours(factory: &gst::ElementFactory) -> bool {
    factory.plugin_name().is_some_and(|p| p == OURS)
}

/// Factories of `kind` (decoders or parsers) of `media` that take `caps`,
/// best first, ours left out.
fn candidates(
    kind: gst::ElementFactoryType,
    media: gst::ElementFactoryType,
    caps: &gst::Caps,
) -> Vec<gst::ElementFactory> {
    let all = gst::ElementFactory::factories_with_type(kind | media, gst::Rank::MARGINAL);
    let mut list: Vec<gst::ElementFactory> = all
        .into_iter()
        .filter(|f| !is_ours(f) && f.can_sink_any_caps(caps))
        .collect();
    list.sort_by(|a, b| {
        b.rank()
            .cmp(&a.rank())
            .then_with(|| a.name().cmp(&b.name()))
    });
    list
}

fn media(video: bool) -> gst::ElementFactoryType {
    if video {
        gst::ElementFactoryType::MEDIA_VIDEO
    } else {
        gst::ElementFactoryType::MEDIA_AUDIO
    }
}

/// Whether the system can decode `caps` without us.
pub(super) fn decodable(caps: &gst::Caps, video: bool) -> bool {
    !candidates(gst::ElementFactoryType::DECODER, media(video), caps).is_empty()
}

/// The local branch for `caps`: a parser when one takes them, then the
/// best decoder that takes what the parser gives. Made, not yet in a bin.
pub(super) fn branch(caps: &gst::Caps, video: bool) -> Option<Vec<gst::Element>> {
    let parser = candidates(gst::ElementFactoryType::PARSER, media(video), caps)
        .into_iter()
        .find_map(|f| f.create().build().ok());
    let decoder_caps = parser
        .as_ref()
        .and_then(|p| p.static_pad("src"))
        .map(|p| p.pad_template_caps().intersect(caps))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| caps.clone());
    let decoder = candidates(
        gst::ElementFactoryType::DECODER,
        media(video),
        &decoder_caps,
    )
    .into_iter()
    .chain(candidates(
        gst::ElementFactoryType::DECODER,
        media(video),
        caps,
    ))
    .find_map(|f| f.create().build().ok())?;
    Some(parser.into_iter().chain([decoder]).collect())
}

/// Whether `element` is, or sits inside, an element of this plugin other
/// than `except` (a redirecting element inside another one's local branch
/// would recurse).
pub(super) fn inside_ours(element: &gst::Element, except: &gst::Element) -> bool {
    let mut at = element.parent();
    while let Some(o) = at {
        if let Some(e) = o.downcast_ref::<gst::Element>()
            && e != except
            && e.factory().is_some_and(|f| is_ours(&f))
        {
            return true;
        }
        at = o.parent();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_branch_is_the_systems_never_ours() {
        gst::init().expect("GStreamer");
        // Once per process (other tests may have registered it).
        let _ = crate::plugin_register_static();
        assert!(gst::ElementFactory::find("mediaredirvideodec").is_some());
        // Ours rank highest for H.264 and AAC ...
        let h264 = gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .build();
        let aac = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .field("stream-format", "raw")
            .build();
        assert!(
            candidates(gst::ElementFactoryType::DECODER, media(true), &h264)
                .iter()
                .all(|f| !is_ours(f)),
        );
        for (caps, video) in [(&h264, true), (&aac, false)] {
            // ... and the branch holds a parser and a decoder, not ours.
            let branch = branch(caps, video).expect("the system decodes it");
            let names: Vec<String> = branch
                .iter()
                .filter_map(|e| e.factory())
                .map(|f| f.name().to_string())
                .collect();
            assert_eq!(branch.len(), 2, "{names:?}");
            assert!(
                names.iter().all(|n| !n.starts_with("mediaredir")),
                "{names:?}"
            );
            assert!(decodable(caps, video));
        }
        // Something only we would "decode": nothing local.
        let none = gst::Caps::builder("video/x-nothing").build();
        assert!(!decodable(&none, true));
        assert!(branch(&none, true).is_none());
    }
}

//! Which codecs this machine can decode, found from the GStreamer registry:
//! a codec counts when some decoder factory of at least marginal rank
//! accepts the codec's caps (or, for PCM, when no decoder is needed). This is
//! what the client announces in `Hello`, so the guest is offered exactly
//! what will play.

use gstreamer as gst;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::wire::{Capabilities, ClientFeatures, CodecCap, CodecFlags};

use crate::caps::codec_caps;

/// Whether a decoder for `codec` is in the registry.
pub fn can_decode(codec: Codec) -> bool {
    if codec == Codec::PcmS16le {
        return gst::ElementFactory::find("audioconvert").is_some();
    }
    let caps = codec_caps(codec);
    gst::ElementFactory::factories_with_type(gst::ElementFactoryType::DECODER, gst::Rank::MARGINAL)
        .iter()
        .any(|f| f.can_sink_any_caps(&caps))
}

/// The capabilities of this client: every decodable codec not in
/// `disabled`, no capture sources, the overlay feature.
pub fn capabilities(disabled: &[Codec]) -> Capabilities {
    Capabilities {
        codecs: Codec::ALL
            .iter()
            .copied()
            .filter(|c| !disabled.contains(c) && can_decode(*c))
            .map(|codec| CodecCap {
                codec,
                flags: CodecFlags::DECODE,
                max_width: 0,
                max_height: 0,
            })
            .collect(),
        sources: Vec::new(),
        features: ClientFeatures::OVERLAY,
    }
}

//! Which codecs this machine can decode, found from the GStreamer registry:
//! a codec counts when some decoder factory of at least marginal rank
//! accepts the codec's caps (or, for PCM, when no decoder is needed). This is
//! what the client announces in `Hello`, so the guest is offered exactly
//! what will play. Capture and calls count when the elements they need are
//! present (encoders for capture; RTP payloaders, `rtpbin` and UDP for
//! calls) and the client has a source to capture from.

use gstreamer as gst;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::wire::{Capabilities, ClientFeatures, CodecCap, CodecFlags};

use crate::caps::codec_caps;
use crate::capture::sources::Source;

fn have(names: &[&str]) -> bool {
    names.iter().all(|n| gst::ElementFactory::find(n).is_some())
}

/// The elements a capture stream of `codec` needs (encoder, parser), or
/// `None` when the client does not encode it.
pub fn encoder_elements(codec: Codec) -> Option<&'static [&'static str]> {
    match codec {
        Codec::Opus => Some(&["opusenc", "audioconvert", "audioresample"]),
        Codec::Vp8 => Some(&["vp8enc", "videoconvert", "videoscale"]),
        Codec::H264 => Some(&["x264enc", "h264parse", "videoconvert", "videoscale"]),
        _ => None,
    }
}

/// Whether a capture stream of `codec` can be encoded here.
pub fn can_encode(codec: Codec) -> bool {
    encoder_elements(codec).is_some_and(have)
}

/// The elements call media of `codec` needs (payloader, depayloader,
/// encoder, decoder).
fn rtp_elements(codec: Codec) -> Option<&'static [&'static str]> {
    match codec {
        Codec::Opus => Some(&["rtpopuspay", "rtpopusdepay", "opusenc", "opusdec"]),
        Codec::Vp8 => Some(&["rtpvp8pay", "rtpvp8depay", "vp8enc", "vp8dec"]),
        _ => None,
    }
}

/// Whether call media of `codec` can be carried over RTP here.
pub fn can_rtp(codec: Codec) -> bool {
    rtp_elements(codec).is_some_and(have)
}

/// Whether the RTP session elements of calls are present (`rtpbin`, UDP,
/// RFC 4733 DTMF) and Opus audio can be carried.
pub fn can_call() -> bool {
    have(&[
        "rtpbin",
        "udpsrc",
        "udpsink",
        "valve",
        "rtpdtmfsrc",
        "rtpdtmfmux",
        "rtpdtmfdepay",
    ]) && can_rtp(Codec::Opus)
}

/// Whether a decoder for `codec` is in the registry.
pub fn can_decode(codec: Codec) -> bool {
    if codec.pcm_sample_bytes().is_some() {
        return gst::ElementFactory::find("audioconvert").is_some();
    }
    // A parser turns the device's frames (several per buffer, or an
    // access unit with in-band headers) into what the decoders take.
    let parser = match codec {
        Codec::Ac3 | Codec::Eac3 => Some("ac3parse"),
        Codec::Mp2 => Some("mpegaudioparse"),
        Codec::Mpeg2Video => Some("mpegvideoparse"),
        Codec::Mpeg4Part2 => Some("mpeg4videoparse"),
        _ => None,
    };
    if parser.is_some_and(|p| gst::ElementFactory::find(p).is_none()) {
        return false;
    }
    let caps = codec_caps(codec);
    gst::ElementFactory::factories_with_type(gst::ElementFactoryType::DECODER, gst::Rank::MARGINAL)
        .iter()
        .any(|f| f.can_sink_any_caps(&caps))
}

/// The capabilities of this client: every codec not in `disabled` that it
/// decodes (`DECODE`), encodes from one of `sources` (`ENCODE`) or carries
/// in calls (`RTP`); the sources; `OVERLAY` when it places video by the
/// guest's geometry (`overlay`: an integrator draws it, the viewer; a
/// headless client shows no video), `CAPTURE` when some source has an
/// encoder, `CALL` when calls work and there is a microphone.
pub fn capabilities(disabled: &[Codec], sources: &[Source], overlay: bool) -> Capabilities {
    let has_mic = sources.iter().any(Source::is_audio);
    let has_cam = sources.iter().any(|s| !s.is_audio());
    let call = has_mic && can_call();
    let mut features = if overlay {
        ClientFeatures::OVERLAY
    } else {
        ClientFeatures::empty()
    };
    let codecs: Vec<CodecCap> = Codec::ALL
        .iter()
        .copied()
        .filter(|c| !disabled.contains(c))
        .filter_map(|codec| {
            let has_src = if codec.is_video() { has_cam } else { has_mic };
            let mut flags = CodecFlags::empty();
            if can_decode(codec) {
                flags |= CodecFlags::DECODE;
            }
            if has_src && can_encode(codec) {
                flags |= CodecFlags::ENCODE;
                features |= ClientFeatures::CAPTURE;
            }
            if call && has_src && can_rtp(codec) {
                flags |= CodecFlags::RTP;
            }
            (!flags.is_empty()).then_some(CodecCap {
                codec,
                flags,
                max_width: 0,
                max_height: 0,
            })
        })
        .collect();
    if call {
        features |= ClientFeatures::CALL;
    }
    Capabilities {
        codecs,
        sources: sources.iter().map(|s| s.info.clone()).collect(),
        features,
    }
}

//! One capture pipeline: source -> convert/resample/scale -> encoder ->
//! parser -> `appsink`. Built by `STREAM_START`, torn down by
//! `STREAM_STOP`; the `appsink` hands every encoded sample to the stream
//! (`super::CaptureStream`).

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app::AppSink;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::wire::CreateStream;

use super::sources::Source;
use crate::error::EngineError;

/// Default target of a capture stream without `bitrate`, bits/s.
fn default_bitrate(codec: Codec) -> u32 {
    match codec {
        Codec::Opus => 64_000,
        _ => 1_000_000,
    }
}

/// Opus encodes at these rates; others are resampled to 48 kHz.
const OPUS_RATES: [u32; 5] = [8000, 12000, 16000, 24000, 48000];

/// The elements of a built capture pipeline the stream keeps.
#[derive(Debug)]
pub(crate) struct Built {
    /// The pipeline (not yet playing).
    pub(crate) pipeline: gst::Pipeline,
    /// The sink the encoded samples come out of.
    pub(crate) appsink: AppSink,
    /// The audio gain (audio streams).
    pub(crate) volume: Option<gst::Element>,
}

fn make(name: &str) -> Result<gst::Element, EngineError> {
    gst::ElementFactory::make(name)
        .build()
        .map_err(|_| EngineError::MissingElement(name.into()))
}

fn filter(caps: gst::Caps) -> Result<gst::Element, EngineError> {
    gst::ElementFactory::make("capsfilter")
        .property("caps", caps)
        .build()
        .map_err(|_| EngineError::MissingElement("capsfilter".into()))
}

/// The raw format the encoder is fed with, from the stream's format.
fn raw_caps(cs: &CreateStream) -> gst::Caps {
    if cs.codec.is_video() {
        let mut b = gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", i32::try_from(cs.media.width).unwrap_or(640))
            .field("height", i32::try_from(cs.media.height).unwrap_or(480));
        if cs.media.fps_num != 0 && cs.media.fps_den != 0 {
            b = b.field(
                "framerate",
                gst::Fraction::new(
                    i32::try_from(cs.media.fps_num).unwrap_or(30),
                    i32::try_from(cs.media.fps_den).unwrap_or(1),
                ),
            );
        }
        b.build()
    } else {
        let rate = if OPUS_RATES.contains(&cs.media.sample_rate) {
            cs.media.sample_rate
        } else {
            48000
        };
        gst::Caps::builder("audio/x-raw")
            .field("rate", i32::try_from(rate).unwrap_or(48000))
            .field(
                "channels",
                i32::try_from(cs.media.channels.clamp(1, 2)).unwrap_or(1),
            )
            .build()
    }
}

/// The encoder (and parser, and output caps) of `cs`'s codec.
fn encoder(cs: &CreateStream) -> Result<Vec<gst::Element>, EngineError> {
    let bitrate = if cs.media.bitrate == 0 {
        default_bitrate(cs.codec)
    } else {
        cs.media.bitrate
    };
    match cs.codec {
        Codec::Opus => {
            let enc = make("opusenc")?;
            enc.set_property(
                "bitrate",
                i32::try_from(bitrate.clamp(4000, 650_000)).unwrap_or(64_000),
            );
            enc.set_property_from_str("frame-size", "20");
            Ok(vec![enc])
        }
        Codec::Vp8 => {
            let enc = make("vp8enc")?;
            enc.set_property("deadline", 1i64);
            enc.set_property("target-bitrate", i32::try_from(bitrate).unwrap_or(i32::MAX));
            enc.set_property("lag-in-frames", 0i32);
            enc.set_property("cpu-used", 8i32);
            enc.set_property("keyframe-max-dist", 120i32);
            Ok(vec![enc])
        }
        Codec::H264 => {
            let enc = make("x264enc")?;
            enc.set_property_from_str("tune", "zerolatency");
            enc.set_property_from_str("speed-preset", "ultrafast");
            enc.set_property("bitrate", (bitrate / 1000).clamp(1, 2_048_000));
            enc.set_property("key-int-max", 120u32);
            enc.set_property("byte-stream", true);
            let parse = make("h264parse")?;
            parse.set_property("config-interval", -1i32);
            let caps = filter(
                gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
            )?;
            Ok(vec![enc, parse, caps])
        }
        other => Err(EngineError::Unsupported(other)),
    }
}

/// Builds the capture pipeline of `cs` from `source`.
///
/// # Errors
/// A missing element, a codec without encoder, or a failed link.
pub(crate) fn build(cs: &CreateStream, source: &Source) -> Result<Built, EngineError> {
    let pipeline = gst::Pipeline::with_name(&format!("capture-{}", cs.id));
    let src = source.make_element()?;
    let mut chain = vec![src];
    let mut volume = None;
    if cs.codec.is_video() {
        chain.push(make("videoconvert")?);
        chain.push(make("videoscale")?);
        if cs.media.fps_num != 0 && gst::ElementFactory::find("videorate").is_some() {
            chain.push(make("videorate")?);
        }
    } else {
        chain.push(make("audioconvert")?);
        chain.push(make("audioresample")?);
        let v = make("volume")?;
        volume = Some(v.clone());
        chain.push(v);
    }
    chain.push(filter(raw_caps(cs))?);
    chain.extend(encoder(cs)?);
    let appsink = gst::ElementFactory::make("appsink")
        .property("sync", false)
        .property("emit-signals", false)
        .build()
        .map_err(|_| EngineError::MissingElement("appsink".into()))?
        .dynamic_cast::<AppSink>()
        .map_err(|_| EngineError::MissingElement("appsink".into()))?;
    chain.push(appsink.clone().upcast());
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain)?;
    Ok(Built {
        pipeline,
        appsink,
        volume,
    })
}

//! The chain behind a decoded pad: conversion, volume (audio) and the sink
//! the output mode calls for. One place so that the engine and the
//! reference decoder hash through identical elements.
//!
//! # Video in Auto mode
//!
//! The engine opens no window of its own. Decoded video goes to the
//! integrator that draws it ([`crate::EngineConfig::video_output`], see
//! `frames`: the viewer), or, without one, to `fakesink` as in Headless
//! mode, so that the clock, pause, QoS and positions behave the same. The
//! guest's `SetGeometry` is handed to the integrator and otherwise only
//! recorded (the engine's `geometry()` returns it). Audio goes to a real
//! sink from the explicit lists of `sinks` (never from autoplugging); when
//! none is usable the chain is not built and the stream fails with an error
//! naming the missing package.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::EngineError;
use crate::kind::MediaKind;
use crate::sinks::choose_audio_sink;

/// Counters of one decoded stream, updated from its streaming thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Buffers that left the decoder.
    pub(crate) decoded: AtomicU64,
    /// PTS of the latest decoded buffer (`u64::MAX`: none).
    pub(crate) last_pts: AtomicU64,
}

/// The elements of an attached chain the engine controls later.
#[derive(Debug, Clone)]
pub(crate) struct OutputChain {
    /// The sink (for stats).
    pub(crate) sink: gst::Element,
    /// The volume element (audio only).
    pub(crate) volume: Option<gst::Element>,
}

fn make(name: &str) -> Result<gst::Element, EngineError> {
    gst::ElementFactory::make(name)
        .build()
        .map_err(|_| EngineError::MissingElement(name.into()))
}

/// What ends an output chain, after its converters (and volume).
pub(crate) enum Tail {
    /// Auto-mode audio: a real sink from the audio list of `sinks`.
    AudioDevice,
    /// Headless mode: `fakesink` with `qos`, on the clock when `sync`.
    Discard {
        /// Whether the sink synchronises to the clock.
        sync: bool,
    },
    /// Elements the caller made, linked in order, the last one the sink
    /// (the verification oracle's capsfilter and hashing `appsink`).
    #[cfg_attr(not(feature = "verify"), allow(dead_code))]
    Elements(Vec<gst::Element>),
    /// Video elements that take the decoder's pictures as they come and
    /// convert them themselves, the last one the sink (the integrator's
    /// scaling converter and picture `appsink`, see `frames`): no
    /// `videoconvert` in front, so that the pictures are scaled before
    /// they are converted.
    Converting(Vec<gst::Element>),
}

/// Builds the output chain for a decoded pad of `kind` ending in `tail`,
/// adds it to `bin` and links `pad` to it.
pub(crate) fn attach_output(
    bin: &gst::Bin,
    pad: &gst::Pad,
    kind: MediaKind,
    tail: Tail,
    counters: Arc<Counters>,
) -> Result<OutputChain, EngineError> {
    let mut chain: Vec<gst::Element> = Vec::new();
    let mut volume = None;
    match kind {
        MediaKind::Video if matches!(tail, Tail::Converting(_)) => {}
        MediaKind::Video => chain.push(make("videoconvert")?),
        MediaKind::Audio => {
            let convert = make("audioconvert")?;
            convert.set_property_from_str("dithering", "none");
            chain.push(convert);
            chain.push(make("audioresample")?);
            let v = make("volume")?;
            volume = Some(v.clone());
            chain.push(v);
        }
    }
    match tail {
        Tail::AudioDevice if kind == MediaKind::Audio => chain.push(choose_audio_sink()?),
        Tail::AudioDevice => {
            return Err(EngineError::Pipeline(
                "a video chain ending in an audio device".into(),
            ));
        }
        Tail::Discard { sync } => chain.push(
            gst::ElementFactory::make("fakesink")
                .property("sync", sync)
                .property("qos", true)
                .build()?,
        ),
        Tail::Converting(_) if kind == MediaKind::Audio => {
            return Err(EngineError::Pipeline(
                "an audio chain ending in video converters".into(),
            ));
        }
        Tail::Elements(elements) | Tail::Converting(elements) if !elements.is_empty() => {
            chain.extend(elements);
        }
        Tail::Elements(_) | Tail::Converting(_) => {
            return Err(EngineError::Pipeline(
                "an output chain without a sink".into(),
            ));
        }
    }
    let sink = chain.last().cloned().expect("the tail added a sink");
    bin.add_many(&chain)?;
    gst::Element::link_many(&chain)?;
    for e in chain.iter().rev() {
        e.sync_state_with_parent()?;
    }
    let first = chain[0]
        .static_pad("sink")
        .expect("converters have a sink pad");
    first.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(ref b)) = info.data {
            counters.decoded.fetch_add(1, Ordering::Relaxed);
            if let Some(pts) = b.pts() {
                counters.last_pts.store(pts.nseconds(), Ordering::Relaxed);
            }
        }
        gst::PadProbeReturn::Ok
    });
    pad.link(&first)
        .map_err(|e| EngineError::Pipeline(format!("link decoded pad: {e:?}")))?;
    Ok(OutputChain { sink, volume })
}

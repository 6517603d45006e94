//! The chain behind a decoded pad: conversion, volume (audio) and the sink
//! the output mode calls for. One place so that the engine and the
//! reference decoder hash through identical elements.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use crate::EngineError;
use crate::config::OutputMode;
use crate::hash::{Fnv64, hash_video_frame};
use crate::verify::{FrameHash, MediaKind, StreamReport};

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
    /// The sink (for stats and the overlay interface).
    pub(crate) sink: gst::Element,
    /// The volume element (audio only).
    pub(crate) volume: Option<gst::Element>,
}

fn make(name: &str) -> Result<gst::Element, EngineError> {
    gst::ElementFactory::make(name)
        .build()
        .map_err(|_| EngineError::MissingElement(name.into()))
}

fn verify_sink(kind: MediaKind, sync: bool, report: Arc<Mutex<StreamReport>>) -> gst::Element {
    let sink = gst_app::AppSink::builder().sync(sync).build();
    let audio_hash = Mutex::new(Fnv64::new());
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                if r.caps.is_empty() {
                    r.caps = caps.to_string();
                }
                match kind {
                    MediaKind::Video => {
                        let info = gst_video::VideoInfo::from_caps(caps)
                            .map_err(|_| gst::FlowError::NotNegotiated)?;
                        let frame =
                            gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
                                .map_err(|_| gst::FlowError::Error)?;
                        r.frames.push(FrameHash {
                            pts: buffer.pts().map(|t| t.nseconds()),
                            hash: hash_video_frame(&frame),
                        });
                    }
                    MediaKind::Audio => {
                        let channels = caps
                            .structure(0)
                            .and_then(|s| s.get::<i32>("channels").ok())
                            .and_then(|c| u64::try_from(c).ok())
                            .unwrap_or(1)
                            .max(1);
                        let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                        let mut h = audio_hash.lock().unwrap_or_else(|e| e.into_inner());
                        h.write(&map);
                        r.audio_hash = h.finish();
                        r.samples += map.len() as u64 / (4 * channels);
                    }
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    sink.upcast()
}

/// Builds the output chain for a decoded pad of `kind`, adds it to `bin`
/// and links `pad` to it.
pub(crate) fn attach_output(
    bin: &gst::Bin,
    pad: &gst::Pad,
    kind: MediaKind,
    mode: OutputMode,
    sync: bool,
    report: Option<Arc<Mutex<StreamReport>>>,
    counters: Arc<Counters>,
) -> Result<OutputChain, EngineError> {
    let mut chain: Vec<gst::Element> = Vec::new();
    let mut volume = None;
    match kind {
        MediaKind::Video => {
            chain.push(make("videoconvert")?);
            if mode == OutputMode::Verify {
                let caps = gst::Caps::builder("video/x-raw")
                    .field("format", "I420")
                    .build();
                chain.push(
                    gst::ElementFactory::make("capsfilter")
                        .property("caps", &caps)
                        .build()?,
                );
            }
        }
        MediaKind::Audio => {
            let convert = make("audioconvert")?;
            convert.set_property_from_str("dithering", "none");
            chain.push(convert);
            chain.push(make("audioresample")?);
            let v = make("volume")?;
            volume = Some(v.clone());
            chain.push(v);
            if mode == OutputMode::Verify {
                let caps = gst::Caps::builder("audio/x-raw")
                    .field("format", "F32LE")
                    .field("layout", "interleaved")
                    .build();
                chain.push(
                    gst::ElementFactory::make("capsfilter")
                        .property("caps", &caps)
                        .build()?,
                );
            }
        }
    }
    let sink = match (mode, report) {
        (OutputMode::Verify, Some(report)) => verify_sink(kind, sync, report),
        (OutputMode::Auto, _) => make(match kind {
            MediaKind::Video => "autovideosink",
            MediaKind::Audio => "autoaudiosink",
        })?,
        _ => gst::ElementFactory::make("fakesink")
            .property("sync", sync)
            .property("qos", true)
            .build()?,
    };
    chain.push(sink.clone());
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

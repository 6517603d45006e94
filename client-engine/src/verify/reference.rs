//! The reference decode: the original file decoded locally by a plain
//! GStreamer pipeline (`filesrc ! decodebin`, as a local player does it)
//! through the same output chain and hashing sink as the engine's Verify
//! mode, so that the two reports compare bit for bit.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::{MediaKind, StreamReport};
use crate::EngineError;
use crate::output::{Counters, Tail, attach_output};

/// Links `pad` to a fakesink that takes everything without a clock.
fn discard(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), EngineError> {
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()?;
    pipeline.add(&sink)?;
    sink.sync_state_with_parent()?;
    let sinkpad = sink.static_pad("sink").expect("fakesink has a sink pad");
    pad.link(&sinkpad)
        .map_err(|e| EngineError::Reference(format!("linking a second stream: {e:?}")))?;
    Ok(())
}

/// A report filled by a streaming thread.
type SharedReport = Arc<Mutex<StreamReport>>;

/// Decodes the file at `path` locally (`filesrc ! decodebin`) into the same
/// report as the engine's Verify mode: one report per decoded stream, video
/// streams first, then audio. Like `playbin`, which plays the first stream
/// of each kind decodebin exposes, only the first video and the first audio
/// stream are reported; the others are decoded into a fakesink.
///
/// # Errors
/// [`EngineError::Reference`] when the file does not decode within
/// `timeout`.
pub fn reference_decode(path: &Path, timeout: Duration) -> Result<Vec<StreamReport>, EngineError> {
    gst::init().map_err(|e| EngineError::Init(e.to_string()))?;
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_string_lossy().as_ref())
        .build()?;
    let decodebin = gst::ElementFactory::make("decodebin").build()?;
    pipeline.add_many([&src, &decodebin])?;
    src.link(&decodebin)?;
    let reports: Arc<Mutex<Vec<SharedReport>>> = Arc::default();
    let bin = pipeline.downgrade();
    let out = reports.clone();
    let kinds: Mutex<Vec<MediaKind>> = Mutex::default();
    decodebin.connect_pad_added(move |_, pad| {
        let Some(pipeline) = bin.upgrade() else {
            return;
        };
        let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
        let kind = match caps.as_ref().and_then(|c| c.structure(0)).map(|s| s.name()) {
            Some(n) if n.starts_with("video/") => MediaKind::Video,
            Some(n) if n.starts_with("audio/") => MediaKind::Audio,
            _ => return,
        };
        let mut taken = kinds.lock().unwrap_or_else(|e| e.into_inner());
        if taken.contains(&kind) {
            // Not the stream a player plays: decoded, not reported.
            if let Err(e) = discard(&pipeline, pad) {
                log::error!("reference: {e}");
            }
            return;
        }
        taken.push(kind);
        drop(taken);
        let report = Arc::new(Mutex::new(StreamReport::new(kind)));
        let counters = Arc::new(Counters::default());
        let attached = super::sink::tail(kind, false, report.clone()).and_then(|tail| {
            attach_output(
                pipeline.upcast_ref(),
                pad,
                kind,
                Tail::Elements(tail),
                counters,
            )
        });
        match attached {
            Ok(_) => out.lock().unwrap_or_else(|e| e.into_inner()).push(report),
            Err(e) => log::error!("reference: {e}"),
        }
    });
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().expect("pipeline has a bus");
    let result = match bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX)),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    ) {
        Some(msg) => match msg.view() {
            gst::MessageView::Eos(_) => Ok(()),
            gst::MessageView::Error(e) => Err(EngineError::Reference(format!(
                "{}: {:?}",
                e.error(),
                e.debug()
            ))),
            _ => Ok(()),
        },
        None => Err(EngineError::Reference("timeout".into())),
    };
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    let mut out: Vec<StreamReport> = reports
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|r| r.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .collect();
    out.sort_by_key(|r| r.kind == MediaKind::Audio);
    Ok(out)
}

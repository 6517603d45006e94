//! Verification: what the engine decoded, as hashes, and the same report
//! made by decoding the original file locally with a plain GStreamer
//! pipeline, so a test can prove the redirected output bit-exact.
//!
//! Video: each decoded frame converted to I420 (`videoconvert`, a
//! passthrough for decoders that output I420 already), hashed over the
//! visible pixels of every plane (no stride padding), in presentation (output)
//! order. Audio: every decoded sample converted to F32LE interleaved
//! (`audioconvert dithering=none`, exact from S16 and F32) and hashed as one
//! concatenated byte string. Trimming rule: every sample the decoder outputs
//! for every packet, after its clipping to the segment, and no
//! encoder-delay / padding trimming on either side: the wire protocol has no
//! field for it (a container's GstAudioClippingMeta, e.g. Opus pre-skip and
//! end padding, does not travel), so the reference strips that meta before
//! its decoder too.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::EngineError;
use crate::config::OutputMode;
use crate::hash::Fnv64;
use crate::output::{Counters, attach_output};

/// Kind of a decoded stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Pictures.
    Video,
    /// Sound.
    Audio,
}

/// The hash of one decoded video frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHash {
    /// Its presentation timestamp (stream time as the decoder output it).
    pub pts: Option<u64>,
    /// FNV-1a of its visible pixels.
    pub hash: u64,
}

/// What one stream decoded.
#[derive(Debug, Clone)]
pub struct StreamReport {
    /// Video or audio.
    pub kind: MediaKind,
    /// Video: every frame, in output order.
    pub frames: Vec<FrameHash>,
    /// Audio: samples per channel decoded.
    pub samples: u64,
    /// Audio: FNV-1a of all decoded sample bytes.
    pub audio_hash: u64,
    /// The raw caps hashed (format, size, rate, channels).
    pub caps: String,
}

impl StreamReport {
    pub(crate) fn new(kind: MediaKind) -> Self {
        StreamReport {
            kind,
            frames: Vec::new(),
            samples: 0,
            audio_hash: Fnv64::new().finish(),
            caps: String::new(),
        }
    }

    /// One hash of the whole stream: frame hashes in order (video) or the
    /// sample hash (audio).
    pub fn digest(&self) -> u64 {
        match self.kind {
            MediaKind::Audio => self.audio_hash,
            MediaKind::Video => {
                let mut h = Fnv64::new();
                for f in &self.frames {
                    h.write_u64(f.hash);
                }
                h.finish()
            }
        }
    }

    /// Frames (video) or samples (audio) decoded.
    pub fn count(&self) -> u64 {
        match self.kind {
            MediaKind::Video => self.frames.len() as u64,
            MediaKind::Audio => self.samples,
        }
    }

    /// Bit-exact: same kind, same counts, every hash equal.
    pub fn bit_exact(&self, other: &StreamReport) -> bool {
        self.kind == other.kind
            && self.count() == other.count()
            && self.digest() == other.digest()
            && self
                .frames
                .iter()
                .zip(&other.frames)
                .all(|(a, b)| a.hash == b.hash)
    }
}

/// Per stream id: what the engine decoded (Verify mode).
#[derive(Debug, Clone, Default)]
pub struct VerificationReport {
    /// By stream id.
    pub streams: BTreeMap<u32, StreamReport>,
}

/// A report filled by a streaming thread.
type SharedReport = Arc<Mutex<StreamReport>>;

/// Decodes the file at `path` locally (`filesrc ! decodebin`) into the same
/// report as the engine's Verify mode: one report per decoded stream, video
/// streams first, then audio, each in the order decodebin exposed them.
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
    // The wire carries no clipping information (encoder delay, padding),
    // so the reference must not trim either: strip GstAudioClippingMeta
    // before every decoder.
    pipeline.connect_deep_element_added(|_, _, element| {
        let is_decoder = element
            .factory()
            .is_some_and(|f| f.has_type(gst::ElementFactoryType::DECODER));
        if let (true, Some(pad)) = (is_decoder, element.static_pad("sink")) {
            pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
                if let Some(gst::PadProbeData::Buffer(ref mut b)) = info.data {
                    b.make_mut().foreach_meta_mut(|meta| {
                        if meta.api().name() == "GstAudioClippingMetaAPI" {
                            ControlFlow::Continue(gst::buffer::BufferMetaForeachAction::Remove)
                        } else {
                            ControlFlow::Continue(gst::buffer::BufferMetaForeachAction::Keep)
                        }
                    });
                }
                gst::PadProbeReturn::Ok
            });
        }
    });
    let reports: Arc<Mutex<Vec<SharedReport>>> = Arc::default();
    let bin = pipeline.downgrade();
    let out = reports.clone();
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
        let report = Arc::new(Mutex::new(StreamReport::new(kind)));
        let counters = Arc::new(Counters::default());
        match attach_output(
            pipeline.upcast_ref(),
            pad,
            kind,
            OutputMode::Verify,
            false,
            Some(report.clone()),
            counters,
        ) {
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

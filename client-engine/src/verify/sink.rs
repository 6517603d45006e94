//! The end of a stream's output chain in Verify mode: a capsfilter that
//! fixes the format hashed (video I420, audio F32LE interleaved) and an
//! `appsink` that hashes every decoded frame or sample into the stream's
//! [`StreamReport`]. The engine's streams and the reference decode end
//! their chains with the same elements.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::hash::{Fnv64, hash_video_frame};
use super::{FrameHash, MediaKind, StreamReport};
use crate::EngineError;

/// The elements that end a Verify-mode output chain after its converters
/// (and volume), the hashing sink last; `sync`: whether the sink
/// synchronises to the clock.
pub(crate) fn tail(
    kind: MediaKind,
    sync: bool,
    report: Arc<Mutex<StreamReport>>,
) -> Result<Vec<gst::Element>, EngineError> {
    let caps = match kind {
        MediaKind::Video => gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .build(),
        MediaKind::Audio => gst::Caps::builder("audio/x-raw")
            .field("format", "F32LE")
            .field("layout", "interleaved")
            .build(),
    };
    let filter = gst::ElementFactory::make("capsfilter")
        .property("caps", &caps)
        .build()?;
    Ok(vec![filter, hashing_sink(kind, sync, report)])
}

fn hashing_sink(kind: MediaKind, sync: bool, report: Arc<Mutex<StreamReport>>) -> gst::Element {
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

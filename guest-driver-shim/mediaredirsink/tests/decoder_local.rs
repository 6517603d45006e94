//! With no device, an application sees exactly what it saw before the
//! plugin was installed: the same `playbin` decodes an ffmpeg-made clip
//! with our decoders plugged (their local branch: no broker) and with them
//! ranked out of autoplugging, and every decoded video frame and audio
//! buffer is the same, with the same times.
//!
//! Alone in its test binary: it changes the decoders' rank, which is
//! process-wide.

mod common;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{ffmpeg, init};
use conformance_tests::scratch::Scratch;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// (pts, hash of the bytes) of each buffer an appsink got.
type Output = Vec<(Option<u64>, u64)>;
type Outputs = Arc<Mutex<Output>>;

fn recording_sink(outputs: &Outputs) -> gst::Element {
    let outputs = Arc::clone(outputs);
    gst_app::AppSink::builder()
        .sync(false)
        .callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    let mut h = DefaultHasher::new();
                    map.as_slice().hash(&mut h);
                    outputs
                        .lock()
                        .expect("outputs")
                        .push((buffer.pts().map(gst::ClockTime::nseconds), h.finish()));
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        )
        .build()
        .upcast()
}

/// Decodes `clip` with playbin into appsinks; returns what each got and
/// the decoders that were plugged.
fn decode(clip: &Path) -> (Output, Output, Vec<String>) {
    let video: Outputs = Arc::default();
    let audio: Outputs = Arc::default();
    let playbin = gst::ElementFactory::make("playbin")
        .property("uri", format!("file://{}", clip.display()))
        .property("video-sink", recording_sink(&video))
        .property("audio-sink", recording_sink(&audio))
        .build()
        .expect("playbin");
    // As applications play (playbin's converters pass the decoders'
    // output through to these sinks). With `native-audio`, playbin prefers
    // decoders by their output format (faad over avdec_aac), which the
    // local branch does not know of.
    playbin.set_property_from_str("flags", "video+audio");
    let factories = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&factories);
    playbin
        .downcast_ref::<gst::Bin>()
        .expect("a bin")
        .connect_deep_element_added(move |_, _, element| {
            if element.find_property("socket").is_some() {
                element.set_property("socket", "/nonexistent/mediaredir.sock");
            }
            if let Some(f) = element.factory() {
                seen.lock().expect("factories").push(f.name().to_string());
            }
        });
    playbin.set_state(gst::State::Playing).expect("PLAYING");
    let bus = playbin.bus().expect("bus");
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS or an error within 60 s");
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("playback failed: {} ({:?})", e.error(), e.debug());
    }
    playbin.set_state(gst::State::Null).expect("NULL");
    let video = video.lock().expect("video").clone();
    let audio = audio.lock().expect("audio").clone();
    let factories = factories.lock().expect("factories").clone();
    (video, audio, factories)
}

#[test]
fn with_no_device_the_decoded_output_is_the_same_as_without_the_plugin() {
    init();
    let scratch = Scratch::new("dec-same");
    let clip = ffmpeg(
        &scratch,
        "h264aac.mp4",
        "-f lavfi -i testsrc=size=320x240:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
         -t 2 -c:v libx264 -bf 2 -pix_fmt yuv420p -c:a aac",
    );
    let (video, audio, factories) = decode(&clip);
    assert!(
        factories.iter().any(|f| f == "mediaredirvideodec")
            && factories.iter().any(|f| f == "mediarediraudiodec"),
        "our decoders were not plugged: {factories:?}"
    );
    for name in ["mediaredirvideodec", "mediarediraudiodec"] {
        gst::ElementFactory::find(name)
            .expect("registered")
            .set_rank(gst::Rank::NONE);
    }
    let (video_before, audio_before, factories) = decode(&clip);
    assert!(
        !factories.iter().any(|f| f.starts_with("mediaredir")),
        "ranked out, still plugged: {factories:?}"
    );
    assert_eq!(video.len(), 60, "two seconds of 30 fps video");
    assert!(!audio.is_empty());
    assert!(video == video_before, "the video frames differ");
    assert!(
        audio == audio_before,
        "the audio differs: {} buffers, {} before; first {:?} / {:?}; last {:?} / {:?}\n{factories:?}",
        audio.len(),
        audio_before.len(),
        audio.first(),
        audio_before.first(),
        audio.last(),
        audio_before.last(),
    );
}

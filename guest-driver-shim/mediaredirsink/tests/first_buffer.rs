//! A presentation's start does not depend on which sink queues first.
//!
//! With B-frames and no edit list (`mp4mux fragment-duration`), the first
//! video frame is stamped a few frames after the first audio packet, both
//! in a segment starting at 0. The audio and video sinks render from their
//! own streaming threads; here the video sink is made to queue its first
//! frame before the audio sink queues anything (a probe holds the audio
//! until the video sink takes its second buffer, which it does only once
//! the first is queued). A client whose segment started at that frame
//! would clip the audio before it; the client's decode must still be the
//! local player's, bit-exact.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::{Device, generate, init, verify};
use conformance_tests::scratch::Scratch;
use gstreamer as gst;
use gstreamer::prelude::*;

/// Counts the buffers that entered a pad, and waits for a count.
#[derive(Default)]
struct Seen {
    count: Mutex<u32>,
    changed: Condvar,
}

impl Seen {
    fn note(&self) {
        *self.count.lock().unwrap() += 1;
        self.changed.notify_all();
    }

    /// Waits until `n` buffers were seen (false after `timeout`).
    fn wait(&self, n: u32, timeout: Duration) -> bool {
        let count = self.count.lock().unwrap();
        let (_guard, result) = self
            .changed
            .wait_timeout_while(count, timeout, |c| *c < n)
            .unwrap();
        !result.timed_out()
    }
}

fn sink(socket: &std::path::Path) -> gst::Element {
    gst::ElementFactory::make("mediaredirsink")
        .property("socket", socket.display().to_string())
        .build()
        .expect("make mediaredirsink")
}

/// Waits for EOS or an error on `bus`.
fn wait_end(bus: &gst::Bus) -> Result<(), String> {
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .ok_or("no EOS within 60 s")?;
    match msg.view() {
        gst::MessageView::Eos(_) => Ok(()),
        gst::MessageView::Error(e) => Err(format!("{} ({:?})", e.error(), e.debug())),
        _ => Err("unexpected message".into()),
    }
}

#[test]
fn audio_before_the_first_video_frame_plays_when_video_queues_first() {
    init();
    let scratch = Scratch::new("sink-first-buffer");
    let clip = generate(
        &scratch,
        "frag.mp4",
        "{V} ! x264enc bframes=2 speed-preset=ultrafast ! h264parse ! queue ! \
         mp4mux fragment-duration=400 name=mux ! filesink location={out} \
         {A} ! audioconvert ! avenc_aac ! aacparse ! queue ! mux.",
    );
    let report = scratch.path("frag.report");
    let report_arg = report.display().to_string();
    let mut device = Device::start(
        &scratch,
        "frag",
        &["--uplink", "local:verify", "--verify-report", &report_arg],
    );
    device.wait_client(true);
    let (video, audio) = (sink(&device.broker_socket), sink(&device.broker_socket));
    // Held, the audio cannot preroll: the pipeline prerolls on video.
    audio.set_property("async", false);
    let playbin = gst::ElementFactory::make("playbin")
        .property("uri", format!("file://{}", clip.display()))
        .property("video-sink", &video)
        .property("audio-sink", &audio)
        .build()
        .expect("make playbin");
    playbin.set_property_from_str("flags", "video+audio");
    let seen = Arc::new(Seen::default());
    let video_pad = video.static_pad("sink").expect("sink pad");
    let noted = Arc::clone(&seen);
    video_pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        noted.note();
        gst::PadProbeReturn::Ok
    });
    let audio_pad = audio.static_pad("sink").expect("sink pad");
    let held = Arc::clone(&seen);
    audio_pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        // The second video buffer enters the sink once the first is queued.
        held.wait(2, Duration::from_secs(20));
        gst::PadProbeReturn::Remove
    });
    let bus = playbin.bus().expect("a pipeline has a bus");
    // Both streams exist before the presentation plays: PAUSED (video
    // prerolled), then the audio sink's caps.
    playbin.set_state(gst::State::Paused).expect("PAUSED");
    let (ok, _, _) = playbin.state(gst::ClockTime::from_seconds(20));
    ok.expect("prerolled");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while audio_pad.current_caps().is_none() {
        assert!(std::time::Instant::now() < deadline, "no audio caps");
        std::thread::sleep(Duration::from_millis(10));
    }
    playbin.set_state(gst::State::Playing).expect("PLAYING");
    let ended = wait_end(&bus);
    playbin.set_state(gst::State::Null).expect("NULL");
    device.daemon.take().expect("daemon").stop();
    ended.expect("played to the end");
    assert!(seen.wait(2, Duration::ZERO), "the video sink rendered");
    verify(&clip, &report, 2).expect("the client's decode is the local player's");
}

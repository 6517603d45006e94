//! The sink lists of `client_engine::sinks` in a real engine: Auto mode on
//! a machine without a display fails the video stream with the error that
//! names what is missing (no crash, no sink picked by rank). Its companion,
//! `ximagesink` chosen on an X display, is checked by `geometry.rs`, which
//! runs an Xvfb. An X display that does not answer is a candidate that
//! fails READY, with the element's own reason in the error.

mod common;

use std::time::Duration;

use client_engine::sinks::{self, Environment, Outcome};
use client_engine::wire::Message;
use client_engine::{EngineConfig, MediaKind, OutputMode};
use common::*;
use mediaredir_proto::status::Status;

#[test]
fn auto_video_without_a_display_is_a_clear_stream_error() {
    for var in ["DISPLAY", "WAYLAND_DISPLAY"] {
        // SAFETY: this is the only test of this binary and no other thread
        // reads or writes the environment yet (GStreamer is not
        // initialised before this point).
        unsafe { std::env::remove_var(var) };
    }
    let dir = TempDir::new("sinks");
    let tracks = demux(&generate(&dir.0, "ball.webm", VP8));
    assert_eq!(tracks.len(), 1);
    let (engine, ev) = engine_with_presentation(EngineConfig::with_output(OutputMode::Auto));
    feed_all(&engine, 1, 1, &tracks[0]);
    engine.handle(&Message::Play { presentation: 1 });

    assert!(
        ev.wait(Duration::from_secs(20), |m| Collector::has_error(m, 1)),
        "no StreamError: {:?}",
        ev.all()
    );
    let errors: Vec<(Status, String)> = ev
        .all()
        .into_iter()
        .filter_map(|m| match m {
            Message::StreamError {
                stream: 1,
                status,
                message,
            } => Some((status, message)),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (status, message) = &errors[0];
    assert_eq!(*status, Status::Unsupported);
    assert_eq!(
        message,
        "no usable video sink for a machine without a display: \
         ximagesink (package gstreamer1.0-x) not tried: DISPLAY is not set; \
         xvimagesink (package gstreamer1.0-x) not tried: DISPLAY is not set; \
         waylandsink (package gstreamer1.0-plugins-bad) not tried: WAYLAND_DISPLAY is not set"
    );
    let stats = engine.stats();
    assert_eq!(stats.len(), 1, "{stats:?}");
    assert_eq!(stats[0].failed, Some(Status::Unsupported));
    assert_eq!(stats[0].sink, None, "a sink was linked: {stats:?}");
    drop(engine);

    // DISPLAY names no server: both X sinks are made and fail READY.
    let number = (4000..4100)
        .find(|n| !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists())
        .expect("a free display number");
    let env = Environment {
        x11: Some(format!(":{number}")),
        ..Environment::default()
    };
    let err = sinks::choose_in(MediaKind::Video, &env).unwrap_err();
    let outcomes: Vec<_> = err.attempts.iter().map(|a| &a.outcome).collect();
    assert!(
        matches!(
            outcomes[..],
            [Outcome::Failed(_), Outcome::Failed(_), Outcome::Skipped(_)]
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "no usable video sink for X11 (DISPLAY=:{number}): \
             ximagesink (package gstreamer1.0-x) cannot start: Could not initialise X output"
        )),
        "{message}"
    );
    assert!(
        message.contains(
            "; xvimagesink (package gstreamer1.0-x) cannot start: Could not initialise Xv output"
        ),
        "{message}"
    );
}

//! The sinks of Auto mode in a real engine. The engine opens no window:
//! Auto-mode video without an integrator (`EngineConfig::video_output`)
//! is decoded and discarded on the clock like Headless, even with a
//! `DISPLAY` that names no server. Audio still takes a real sink from the
//! list of `client_engine::sinks`: a sound server that does not answer is
//! a candidate that fails READY, with the element's own reason in the
//! error.

mod common;

use std::time::Duration;

use client_engine::sinks::{self, Environment, Outcome};
use client_engine::wire::{Message, Rect, SetGeometry};
use client_engine::{EngineConfig, OutputMode};
use common::*;

#[test]
fn auto_video_is_headless_and_audio_names_the_failing_sink() {
    let number = (4000..4100)
        .find(|n| !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists())
        .expect("a free display number");
    let pulse = "unix:/nonexistent/mediaredir-test/native";
    // SAFETY: this is the only test of this binary and
    // no other thread reads or writes the environment yet (GStreamer is not
    // initialised before this point).
    unsafe { std::env::set_var("DISPLAY", format!(":{number}")) };
    // SAFETY: as above.
    unsafe { std::env::remove_var("WAYLAND_DISPLAY") };
    // SAFETY: as above.
    unsafe { std::env::set_var("PULSE_SERVER", pulse) };
    let dir = TempDir::new("sinks");
    let tracks = demux(&generate(&dir.0, "ball.webm", VP8));
    assert_eq!(tracks.len(), 1);
    let mut config = EngineConfig::with_output(OutputMode::Auto);
    config.report_interval = Duration::from_millis(100);
    let (engine, ev) = engine_with_presentation(config);
    let g = SetGeometry {
        presentation: 1,
        display: 0,
        visible: true,
        color_key: false,
        z: 1,
        dest: Rect::new(10, 20, 320, 240),
        source: Rect::default(),
        clip: vec![],
    };
    engine.handle(&Message::SetGeometry(g.clone()));
    feed_all(&engine, 1, 1, &tracks[0]);
    engine.handle(&Message::Play { presentation: 1 });

    assert!(
        ev.wait(Duration::from_secs(20), |m| Collector::has_eos(m, 1)),
        "no EndOfStream: {:?}",
        ev.all()
    );
    let all = ev.all();
    assert!(!Collector::has_error(&all, 1), "{all:?}");
    assert!(
        all.iter().any(|m| matches!(
            m,
            Message::Position { presentation: 1, position_ns, .. } if *position_ns > 0
        )),
        "no position reported: {all:?}"
    );
    // Recorded only: there is no window to place.
    assert_eq!(engine.geometry(1), Some(g));
    let stats = engine.stats();
    assert_eq!(stats.len(), 1, "{stats:?}");
    assert_eq!(stats[0].sink.as_deref(), Some("fakesink"), "{stats:?}");
    assert_eq!(stats[0].decoded, 30, "{stats:?}");
    assert_eq!(stats[0].failed, None, "{stats:?}");
    drop(engine);

    // PULSE_SERVER names no server: pulsesink is made and fails READY.
    let env = Environment {
        pulseaudio: Some(format!("PULSE_SERVER={pulse}")),
        ..Environment::default()
    };
    let err = sinks::choose_in(&env).unwrap_err();
    let outcomes: Vec<_> = err.attempts.iter().map(|a| &a.outcome).collect();
    assert!(
        matches!(
            outcomes[..],
            [Outcome::Failed(_), Outcome::Skipped(_), Outcome::Skipped(_)]
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "no usable audio sink for PulseAudio (PULSE_SERVER={pulse}): \
             pulsesink (package gstreamer1.0-plugins-good) cannot start: "
        )),
        "{message}"
    );
    assert!(message.contains("Failed to connect"), "{message}");
}

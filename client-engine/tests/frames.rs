//! Decoded video for an integrator (the viewer, `client_engine::VideoOutput`):
//! in Auto mode with a video output, every picture of a red clip arrives in
//! BGRx with its size and timestamp, the presentation's geometry arrives as
//! the guest set it, closing the presentation is reported, and the engine
//! offers `OVERLAY` only then; an integrator that shows the pictures
//! smaller gets them scaled to its size.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use client_engine::wire::{ClientFeatures, Message, Rect, SetGeometry};
use client_engine::{EngineConfig, OutputMode, VideoFrame, VideoOutput, VideoOutputHandle};
use common::*;

/// One picture as seen: presentation, width, height, the centre pixel
/// (BGRx), pts, the stream's own size.
type Picture = (u32, u32, u32, [u8; 4], Option<u64>, (u32, u32));

/// What the integrator saw.
#[derive(Default)]
struct Seen {
    /// The size it asks pictures at.
    wanted: Option<(u32, u32)>,
    frames: Mutex<Vec<Picture>>,
    geometry: Mutex<Vec<(u32, SetGeometry)>>,
    closed: Mutex<Vec<u32>>,
}

impl VideoOutput for Seen {
    fn frame(&self, f: VideoFrame) {
        let centre = f.pixel(f.width / 2, f.height / 2).unwrap_or_default();
        self.frames.lock().unwrap().push((
            f.presentation,
            f.width,
            f.height,
            centre,
            f.pts_ns,
            f.stream_size,
        ));
    }
    fn geometry(&self, presentation: u32, g: &SetGeometry) {
        self.geometry
            .lock()
            .unwrap()
            .push((presentation, g.clone()));
    }
    fn closed(&self, presentation: u32) {
        self.closed.lock().unwrap().push(presentation);
    }
    fn wanted_size(&self, _: u32) -> Option<(u32, u32)> {
        self.wanted
    }
}

/// Plays the red clip to `seen` in presentation 1; the engine and what
/// its events were.
fn play_red(seen: &Arc<Seen>, g: &SetGeometry) -> (client_engine::Engine, Arc<Collector>) {
    let dir = TempDir::new("frames");
    let track = demux(&generate(&dir.0, "red.webm", RED)).remove(0);
    let config = EngineConfig {
        output: OutputMode::Auto,
        video_output: Some(VideoOutputHandle(seen.clone())),
        ..EngineConfig::with_output(OutputMode::Auto)
    };
    let (engine, events) = engine_with_presentation(config);
    engine.handle(&Message::SetGeometry(g.clone()));
    feed_all(&engine, 1, 2, &track);
    engine.handle(&Message::Play { presentation: 1 });
    assert!(
        events.wait(Duration::from_secs(20), |m| Collector::has_eos(m, 2)),
        "no end of stream: {:?}",
        events.all()
    );
    (engine, events)
}

const RED: &str = "videotestsrc num-buffers=30 pattern=solid-color foreground-color=0xffff0000 ! video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! vp8enc deadline=1 ! webmmux ! filesink location={out}";

#[test]
fn pictures_and_geometry_reach_the_integrator() {
    let seen = Arc::new(Seen::default());
    let g = SetGeometry {
        presentation: 1,
        display: 0,
        visible: true,
        color_key: false,
        z: 3,
        dest: Rect::new(10, 20, 160, 120),
        source: Rect::default(),
        clip: vec![Rect::new(10, 20, 80, 120)],
    };
    let (engine, _events) = play_red(&seen, &g);
    assert!(
        engine
            .capabilities()
            .features
            .contains(ClientFeatures::OVERLAY)
    );
    let frames = seen.frames.lock().unwrap().clone();
    assert_eq!(frames.len(), 30, "every picture, once");
    for (p, w, h, [b, g, r, _], pts, native) in &frames {
        assert_eq!((*p, *w, *h, *native), (1, 160, 120, (160, 120)));
        assert!(
            *r > 200 && *g < 60 && *b < 60,
            "red in BGRx, got {r},{g},{b}"
        );
        assert!(pts.is_some());
    }
    assert!(frames.windows(2).all(|w| w[0].4 < w[1].4), "in time order");
    assert_eq!(*seen.geometry.lock().unwrap(), vec![(1, g)]);
    engine.handle(&Message::DestroyPresentation { id: 1 });
    assert!(
        common_wait(|| seen.closed.lock().unwrap().contains(&1)),
        "the close is reported"
    );
    // A headless engine places no video: no OVERLAY.
    let headless =
        client_engine::Engine::new(EngineConfig::with_output(OutputMode::Headless)).unwrap();
    assert!(
        !headless
            .capabilities()
            .features
            .contains(ClientFeatures::OVERLAY)
    );
}

#[test]
fn pictures_come_at_the_size_the_integrator_shows_them() {
    let seen = Arc::new(Seen {
        wanted: Some((60, 90)),
        ..Seen::default()
    });
    let g = SetGeometry {
        presentation: 1,
        display: 0,
        visible: true,
        color_key: false,
        z: 0,
        dest: Rect::new(0, 0, 60, 90),
        source: Rect::default(),
        clip: Vec::new(),
    };
    let _played = play_red(&seen, &g);
    let frames = seen.frames.lock().unwrap().clone();
    assert_eq!(frames.len(), 30, "every picture, once: {frames:?}");
    // The size is asked when a picture arrives and applies from a later
    // one: the first pictures may still come at the stream's own size.
    let scaled = frames.iter().filter(|f| (f.1, f.2) == (60, 90)).count();
    assert!(scaled >= 25, "{scaled} of 30 pictures at 60x90: {frames:?}");
    for (_, w, h, [b, g, r, _], _, native) in &frames {
        assert!((*w, *h) == (60, 90) || (*w, *h) == (160, 120));
        assert_eq!(*native, (160, 120), "the stream's own size");
        assert!(*r > 200 && *g < 60 && *b < 60, "still red: {r},{g},{b}");
    }
}

fn common_wait(ok: impl Fn() -> bool) -> bool {
    test_support::until(5, ok)
}

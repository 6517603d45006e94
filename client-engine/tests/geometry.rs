//! Overlay geometry on a real X server: the engine (Auto mode, so
//! `ximagesink` on `DISPLAY`) plays a VP8 clip whose left half is red and
//! right half blue, on a private `Xvfb`; the screen is read back with `xwd`
//! and checked for the destination rectangle, the source rectangle (crop),
//! hiding, moving, and stacking (`z`) of two overlapping presentations.
//!
//! `ximagesink` draws into the engine's overlay window of the presentation,
//! an override-redirect child of the root placed at `dest`; Xvfb runs no
//! window manager, so window coordinates are root coordinates and `dest`
//! is checked directly on the root window.
//!
//! Needs `Xvfb` and `xwd` (`cargo xtask setup` installs `xvfb` and
//! `x11-apps`): without them the test fails under `CI=true` and is a
//! recorded skip elsewhere (see the `test-support` crate).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use client_engine::wire::{Message, Rect, SetGeometry};
use client_engine::{EngineConfig, OutputMode};
use common::*;
use test_support::{Tool, Xvfb, require};

/// Left half red, right half blue (videobox's blue fill), 10 s at 30 fps.
const RED_BLUE: &str = "videotestsrc num-buffers=300 pattern=solid-color foreground-color=0xffff0000 ! video/x-raw,format=I420,width=160,height=240,framerate=30/1 ! videobox right=-160 fill=blue ! video/x-raw,format=I420,width=320,height=240 ! vp8enc deadline=1 keyframe-max-dist=30 ! webmmux ! filesink location={out}";

/// A screen grab, 0x00RRGGBB per pixel.
struct Screen {
    width: usize,
    height: usize,
    pixels: Vec<u32>,
}

impl Screen {
    fn rgb(&self, x: usize, y: usize) -> (u8, u8, u8) {
        let [_, r, g, b] = self.pixels[y * self.width + x].to_be_bytes();
        (r, g, b)
    }

    fn is_red(&self, x: usize, y: usize) -> bool {
        let (r, g, b) = self.rgb(x, y);
        r > 180 && g < 80 && b < 80
    }

    fn is_blue(&self, x: usize, y: usize) -> bool {
        let (r, g, b) = self.rgb(x, y);
        b > 180 && r < 80 && g < 80
    }
}

fn be32(d: &[u8], field: usize) -> u32 {
    let o = field * 4;
    u32::from_be_bytes(d[o..o + 4].try_into().unwrap())
}

/// Parses an XWD dump of a TrueColor, 32 bits-per-pixel Z pixmap: a header
/// of big-endian u32 fields, `ncolors` 12-byte colour entries, then
/// `height` lines of `bytes_per_line` bytes in the header's byte order.
fn parse_xwd(d: &[u8]) -> Screen {
    let header_size = usize::try_from(be32(d, 0)).unwrap();
    let (width, height) = (be32(d, 4), be32(d, 5));
    let byte_order = be32(d, 7);
    let bits_per_pixel = be32(d, 11);
    let bytes_per_line = usize::try_from(be32(d, 12)).unwrap();
    let (rm, gm, bm) = (be32(d, 14), be32(d, 15), be32(d, 16));
    let ncolors = usize::try_from(be32(d, 19)).unwrap();
    assert_eq!(bits_per_pixel, 32, "xwd: unexpected bits per pixel");
    let (width, height) = (
        usize::try_from(width).unwrap(),
        usize::try_from(height).unwrap(),
    );
    let start = header_size + ncolors * 12;
    let channel = |p: u32, m: u32| (p & m) >> m.trailing_zeros();
    let mut pixels = Vec::with_capacity(width * height);
    for y in 0..height {
        let line = &d[start + y * bytes_per_line..][..width * 4];
        for px in line.chunks_exact(4) {
            let raw = px.try_into().unwrap();
            let p = if byte_order == 0 {
                u32::from_le_bytes(raw)
            } else {
                u32::from_be_bytes(raw)
            };
            pixels.push((channel(p, rm) << 16) | (channel(p, gm) << 8) | channel(p, bm));
        }
    }
    Screen {
        width,
        height,
        pixels,
    }
}

fn grab(x: &Xvfb) -> Screen {
    let out = Command::new("xwd")
        .args(["-root", "-silent", "-display", &x.display()])
        .output()
        .expect("run xwd");
    assert!(out.status.success(), "xwd failed: {out:?}");
    parse_xwd(&out.stdout)
}

/// Grabs the screen until `pred` holds (5 s at most); returns the last grab
/// and whether it held.
fn wait_screen(x: &Xvfb, pred: impl Fn(&Screen) -> bool) -> (Screen, bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = grab(x);
        if pred(&s) {
            return (s, true);
        }
        if Instant::now() >= deadline {
            return (s, false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn describe(s: &Screen, points: &[(usize, usize)]) -> String {
    points
        .iter()
        .map(|&(x, y)| format!("({x},{y})={:?}", s.rgb(x, y)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn geometry(visible: bool, dest: Rect, source: Rect) -> Message {
    Message::SetGeometry(SetGeometry {
        presentation: 1,
        display: 0,
        visible,
        z: 0,
        dest,
        source,
        clip: vec![],
    })
}

#[test]
fn overlay_geometry_on_xvfb() {
    if !require(
        "geometry::overlay_geometry_on_xvfb",
        &[
            Tool {
                program: "Xvfb",
                package: "xvfb",
            },
            Tool {
                program: "xwd",
                package: "x11-apps",
            },
        ],
    ) {
        return;
    }
    let t0 = Instant::now();
    let x = Xvfb::start(640, 480).expect("start Xvfb");
    // SAFETY: this is the only test of this binary and no other thread
    // reads or writes the environment yet (GStreamer is not initialised
    // before this point; ximagesink reads DISPLAY when it opens).
    unsafe { std::env::set_var("DISPLAY", x.display()) };

    let dir = TempDir::new("geometry");
    let tracks = demux(&generate(&dir.0, "red-blue.webm", RED_BLUE));
    assert_eq!(tracks.len(), 1);
    let (engine, ev) = engine_with_presentation(EngineConfig::with_output(OutputMode::Auto));

    // Dest 160x120 at (100, 80), whole picture: red on the left half of
    // the rectangle, blue on the right half.
    let dest = Rect::new(100, 80, 160, 120);
    engine.handle(&geometry(true, dest, Rect::default()));
    feed_all(&engine, 1, 1, &tracks[0]);
    engine.handle(&Message::Play { presentation: 1 });
    let red_in = [(110, 90), (140, 140), (170, 190)];
    let blue_in = [(190, 90), (220, 140), (250, 190)];
    let outside = [(50, 40), (300, 250), (10, 10), (600, 400)];
    let (s, ok) = wait_screen(&x, |s| {
        red_in.iter().all(|&(x, y)| s.is_red(x, y)) && blue_in.iter().all(|&(x, y)| s.is_blue(x, y))
    });
    assert!(
        ok,
        "picture not at dest: {} | {}; stats {:?}; events {:?}",
        describe(&s, &red_in),
        describe(&s, &blue_in),
        engine.stats(),
        ev.all()
            .into_iter()
            .filter(|m| !matches!(m, Message::Ack { .. }))
            .collect::<Vec<_>>()
    );
    assert!(
        outside
            .iter()
            .all(|&(x, y)| !s.is_red(x, y) && !s.is_blue(x, y)),
        "picture outside dest: {}",
        describe(&s, &outside)
    );
    // The sink came from the X11 list: ximagesink (Xvfb has no Xv port).
    let sinks: Vec<_> = engine.stats().into_iter().map(|s| s.sink).collect();
    assert_eq!(sinks, [Some("ximagesink".to_string())]);
    // Exact edges (scaling may blur one pixel into the next).
    assert!(s.is_red(102, 82) && !s.is_red(97, 82) && !s.is_red(102, 77));
    assert!(s.is_blue(257, 197) && !s.is_blue(262, 197) && !s.is_blue(257, 202));
    assert_eq!((s.width, s.height), (640, 480));

    // Source rectangle: the right (blue) half fills dest.
    engine.handle(&geometry(true, dest, Rect::new(160, 0, 160, 240)));
    let all_in: Vec<_> = red_in.iter().chain(&blue_in).copied().collect();
    let (s, ok) = wait_screen(&x, |s| all_in.iter().all(|&(x, y)| s.is_blue(x, y)));
    assert!(ok, "source crop not applied: {}", describe(&s, &all_in));

    // Hidden: nothing of the picture shows.
    engine.handle(&geometry(false, dest, Rect::default()));
    let (s, ok) = wait_screen(&x, |s| {
        all_in
            .iter()
            .all(|&(x, y)| !s.is_red(x, y) && !s.is_blue(x, y))
    });
    assert!(ok, "hidden overlay still shows: {}", describe(&s, &all_in));

    // Shown again, moved and shrunk: the window moves, the old area no
    // longer shows the picture.
    let moved = Rect::new(20, 30, 120, 90);
    engine.handle(&geometry(true, moved, Rect::default()));
    let red_moved = [(25, 35), (70, 110)];
    let blue_moved = [(90, 35), (135, 115)];
    let old_area = [(170, 190), (220, 140), (250, 190)];
    let (s, ok) = wait_screen(&x, |s| {
        red_moved.iter().all(|&(x, y)| s.is_red(x, y))
            && blue_moved.iter().all(|&(x, y)| s.is_blue(x, y))
    });
    assert!(
        ok,
        "picture not at moved dest: {} | {}",
        describe(&s, &red_moved),
        describe(&s, &blue_moved)
    );
    assert!(
        old_area
            .iter()
            .all(|&(x, y)| !s.is_red(x, y) && !s.is_blue(x, y)),
        "old dest still shows: {}",
        describe(&s, &old_area)
    );
    assert!(s.is_red(22, 32) && !s.is_red(17, 32) && !s.is_red(22, 27));
    assert!(s.is_blue(137, 117) && !s.is_blue(142, 117) && !s.is_blue(137, 122));

    // Clip rectangles are recorded only.
    let g = SetGeometry {
        presentation: 1,
        display: 0,
        visible: true,
        z: 7,
        dest: moved,
        source: Rect::default(),
        clip: vec![Rect::new(300, 200, 100, 150)],
    };
    engine.handle(&Message::SetGeometry(g.clone()));
    assert_eq!(engine.geometry(1), Some(g));

    // Stacking: presentation 1 shows the red half, presentation 2 (same
    // clip) the blue half, overlapping; the higher z is on top.
    let red = Rect::new(100, 80, 200, 150);
    let blue = Rect::new(200, 150, 200, 150);
    let left_half = Rect::new(0, 0, 160, 240);
    let right_half = Rect::new(160, 0, 160, 240);
    let place = |presentation: u32, z: i32, dest: Rect, source: Rect| {
        Message::SetGeometry(SetGeometry {
            presentation,
            display: 0,
            visible: true,
            z,
            dest,
            source,
            clip: vec![],
        })
    };
    engine.handle(&place(1, 2, red, left_half));
    create_presentation(&engine, 2);
    engine.handle(&place(2, 1, blue, right_half));
    feed_all(&engine, 2, 2, &tracks[0]);
    engine.handle(&Message::Play { presentation: 2 });
    let overlap = [(210, 160), (250, 190), (290, 220)];
    let red_only = [(110, 90), (150, 120), (290, 140)];
    let blue_only = [(210, 240), (350, 200), (390, 290)];
    let apart = |s: &Screen| {
        red_only.iter().all(|&(x, y)| s.is_red(x, y))
            && blue_only.iter().all(|&(x, y)| s.is_blue(x, y))
    };
    let (s, ok) = wait_screen(&x, |s| {
        apart(s) && overlap.iter().all(|&(x, y)| s.is_red(x, y))
    });
    assert!(
        ok,
        "z red 2 > blue 1: overlap {} | red {} | blue {}",
        describe(&s, &overlap),
        describe(&s, &red_only),
        describe(&s, &blue_only)
    );
    // Swapped: blue on top.
    engine.handle(&place(1, 2, red, left_half));
    engine.handle(&place(2, 3, blue, right_half));
    let (s, ok) = wait_screen(&x, |s| {
        apart(s) && overlap.iter().all(|&(x, y)| s.is_blue(x, y))
    });
    assert!(
        ok,
        "z blue 3 > red 2: overlap {} | red {} | blue {}",
        describe(&s, &overlap),
        describe(&s, &red_only),
        describe(&s, &blue_only)
    );
    // And back, by lowering blue below red.
    engine.handle(&place(2, -1, blue, right_half));
    let (s, ok) = wait_screen(&x, |s| {
        apart(s) && overlap.iter().all(|&(x, y)| s.is_red(x, y))
    });
    assert!(ok, "z blue -1 < red 2: overlap {}", describe(&s, &overlap));
    assert!(
        engine.stats().iter().all(|s| s.failed.is_none()),
        "{:?}",
        ev.all()
    );
    drop(engine);
    eprintln!("geometry: passed in {:?}", t0.elapsed());
}

//! The chain behind a decoded pad: conversion, volume (audio) and the sink
//! the output mode calls for. One place so that the engine and the
//! reference decoder hash through identical elements.
//!
//! # Overlay geometry (Auto mode, video)
//!
//! On X11 (`DISPLAY` set, an X11 sink installed, the engine connected to
//! the display) every presentation has an overlay window of its own (see
//! `window`): the engine hands it to the X11 sink (`ximagesink`, else
//! `xvimagesink`, see `sinks`) with `set_window_handle`
//! and places it at `dest`, maps it while visible and stacks it by `z`
//! (higher `z` nearer the viewer). The pipeline then only crops the source
//! rectangle and scales the picture to `dest`'s size (`videobox` adds no
//! border); the hide probe below blacks out frames while hidden, the window
//! being unmapped anyway.
//!
//! Without that window (no X connection, or `waylandsink`) the guest's
//! `SetGeometry` is applied inside the pipeline alone, so that it works
//! with any video sink, including `ximagesink`, which neither scales nor
//! implements `GstVideoOverlay::set_render_rectangle`:
//!
//! ```text
//! videoconvert ! BGRx ! videocrop ! videoscale ! BGRx,dest w x h
//!   ! videobox (left = -x, top = -y) ! BGRx [hide probe] ! videoconvert ! sink
//! ```
//!
//! - source rectangle: `videocrop` cuts it out of the decoded picture (all
//!   zero: the whole picture); it is re-applied when the decoded size
//!   changes;
//! - destination rectangle: `videoscale` stretches the picture to its size
//!   and `videobox` adds a black border of `x` columns and `y` rows (crops
//!   them when negative), so the sink receives a canvas whose origin is the
//!   guest display's origin. The sink's window shows that canvas from its
//!   own origin: `ximagesink`'s own window is created at the root window's
//!   (0, 0) with the size of the first canvas, and with no window manager
//!   (Xvfb) the picture lands at `dest` in root-window coordinates.
//!   `ximagesink` never resizes its window and centres a picture smaller
//!   than the window, so the canvas never shrinks: it is the larger of the
//!   last negotiated canvas and `dest`'s extent, padded on the right and at
//!   the bottom. A `dest` reaching beyond the first canvas is clipped at
//!   the window's edge. Embedding the sink in the window of the guest
//!   display (`set_window_handle`) is the integrator's job; the geometry
//!   stays relative to that window's origin;
//! - visibility: while hidden (or when `dest` is empty or entirely above or
//!   left of the origin) every canvas is blacked out, so the sink renders
//!   nothing but black. It takes effect with the next frame: a paused or
//!   ended stream keeps showing its last picture until it gets one;
//! - stacking (`z`) is applied only with the overlay windows above.
//!
//! Clip rectangles are recorded only, in both cases (the engine's
//! `geometry()` returns them): they would need the X Shape extension on
//! the overlay window.
//!
//! Before any `SetGeometry` the canvas is the decoded picture, unscaled
//! (with an overlay window: shown at the root window's (0, 0)).
//! The sink comes from the explicit lists of `sinks` (never from
//! autoplugging); when none is usable the chain is not built and the
//! stream fails with an error naming the missing package. Headless and
//! Verify modes have no overlay: the engine only records the geometry
//! there.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use crate::EngineError;
use mediaredir_proto::wire::SetGeometry;

use crate::kind::MediaKind;
use crate::sinks::{Place, choose_sink};
use crate::window::Window;

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
    /// The geometry elements (Auto-mode video only).
    pub(crate) overlay: Option<Overlay>,
    /// The sink draws into X windows (it may get the overlay window).
    pub(crate) x11: bool,
}

/// What the overlay elements currently apply.
#[derive(Debug, Default)]
struct OverlayState {
    geometry: Option<SetGeometry>,
    /// Decoded picture size, from the caps reaching `videocrop`.
    picture: Option<(u32, u32)>,
    /// Canvas size, from the caps leaving `videobox`.
    canvas: Option<(i32, i32)>,
}

/// The elements of an Auto-mode video chain that place the picture.
#[derive(Debug, Clone)]
pub(crate) struct Overlay {
    crop: gst::Element,
    scale_caps: gst::Element,
    placer: gst::Element,
    hidden: Arc<AtomicBool>,
    state: Arc<Mutex<OverlayState>>,
    /// The presentation's overlay window, once the sink draws into it.
    window: Arc<OnceLock<Arc<Window>>>,
}

fn i32_of(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn bgrx(size: Option<(i32, i32)>) -> gst::Caps {
    let b = gst::Caps::builder("video/x-raw").field("format", "BGRx");
    match size {
        Some((w, h)) => b
            .field("width", w)
            .field("height", h)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
        None => b.build(),
    }
}

impl Overlay {
    /// Builds the elements (see the module docs) and returns them in link
    /// order, `videoconvert` and sink excluded.
    fn build() -> Result<(Overlay, Vec<gst::Element>), EngineError> {
        let to_bgrx = gst::ElementFactory::make("capsfilter")
            .property("caps", bgrx(None))
            .build()?;
        let crop = make("videocrop")?;
        let scale = make("videoscale")?;
        scale.set_property("add-borders", false);
        let scale_caps = gst::ElementFactory::make("capsfilter")
            .property("caps", bgrx(None))
            .build()?;
        let placer = make("videobox")?;
        let canvas = gst::ElementFactory::make("capsfilter")
            .property("caps", bgrx(None))
            .build()?;
        let hidden = Arc::new(AtomicBool::new(false));
        let h = hidden.clone();
        let state: Arc<Mutex<OverlayState>> = Arc::default();
        let st = state.clone();
        let window: Arc<OnceLock<Arc<Window>>> = Arc::default();
        let win = window.clone();
        let canvas_pad = canvas.static_pad("src").expect("capsfilter has a src pad");
        canvas_pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(ref e)) = info.data
                && let gst::EventView::Caps(c) = e.view()
                && let Ok(vi) = gst_video::VideoInfo::from_caps(c.caps())
            {
                let mut st = st.lock().unwrap_or_else(|e| e.into_inner());
                st.canvas = Some((i32_of(vi.width()), i32_of(vi.height())));
                if st.geometry.is_none()
                    && let Some(w) = win.get()
                {
                    w.picture_size(vi.width(), vi.height());
                }
            }
            gst::PadProbeReturn::Ok
        });
        canvas_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if h.load(Ordering::Acquire)
                && let Some(gst::PadProbeData::Buffer(ref mut b)) = info.data
                && let Ok(mut map) = b.make_mut().map_writable()
            {
                // BGRx: all-zero bytes are black.
                map.fill(0);
            }
            gst::PadProbeReturn::Ok
        });
        let overlay = Overlay {
            crop: crop.clone(),
            scale_caps: scale_caps.clone(),
            placer: placer.clone(),
            hidden,
            state,
            window,
        };
        let o = overlay.clone();
        crop.static_pad("sink")
            .expect("videocrop has a sink pad")
            .add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                if let Some(gst::PadProbeData::Event(ref e)) = info.data
                    && let gst::EventView::Caps(c) = e.view()
                    && let Ok(vi) = gst_video::VideoInfo::from_caps(c.caps())
                {
                    o.picture_changed(vi.width(), vi.height());
                }
                gst::PadProbeReturn::Ok
            });
        let elements = vec![to_bgrx, crop, scale, scale_caps, placer, canvas];
        Ok((overlay, elements))
    }

    fn picture_changed(&self, width: u32, height: u32) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.picture == Some((width, height)) {
            return;
        }
        st.picture = Some((width, height));
        self.apply_crop(&st);
    }

    fn apply_crop(&self, st: &OverlayState) {
        let (mut left, mut top, mut right, mut bottom) = (0, 0, 0, 0);
        if let (Some(g), Some((pw, ph))) = (&st.geometry, st.picture)
            && g.source.width > 0
            && g.source.height > 0
        {
            // Clamped so that at least one pixel remains.
            let sx = u32::try_from(g.source.x).unwrap_or(0).min(pw - 1);
            let sy = u32::try_from(g.source.y).unwrap_or(0).min(ph - 1);
            let sw = g.source.width.min(pw - sx);
            let sh = g.source.height.min(ph - sy);
            (left, top) = (i32_of(sx), i32_of(sy));
            (right, bottom) = (i32_of(pw - sx - sw), i32_of(ph - sy - sh));
        }
        for (name, v) in [
            ("left", left),
            ("top", top),
            ("right", right),
            ("bottom", bottom),
        ] {
            if self.crop.property::<i32>(name) != v {
                self.crop.set_property(name, v);
            }
        }
    }

    /// The sink draws into `window` (set once, before data flows): the
    /// window is placed at `dest`, so the canvas is the scaled picture
    /// alone.
    pub(crate) fn set_window(&self, window: Arc<Window>) {
        let _ = self.window.set(window);
    }

    /// Applies `g`: crop, scale, placement and visibility.
    pub(crate) fn apply(&self, g: &SetGeometry) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.geometry = Some(g.clone());
        self.apply_crop(&st);
        let d = g.dest;
        let (w, h) = (i32_of(d.width), i32_of(d.height));
        if self.window.get().is_some() {
            // The window sits at `dest` (see `window`): scale only.
            drop(st);
            let shown = w > 0 && h > 0;
            if shown {
                let caps = bgrx(Some((w, h)));
                if self.scale_caps.property::<gst::Caps>("caps") != caps {
                    self.scale_caps.set_property("caps", caps);
                }
            }
            self.hidden.store(!(shown && g.visible), Ordering::Release);
            return;
        }
        let (right, bottom) = (d.x.saturating_add(w), d.y.saturating_add(h));
        let shown = w > 0 && h > 0 && right > 0 && bottom > 0;
        if shown {
            let (cw, ch) = st.canvas.unwrap_or((0, 0));
            let (cw, ch) = (cw.max(right), ch.max(bottom));
            st.canvas = Some((cw, ch));
            drop(st);
            let caps = bgrx(Some((w, h)));
            if self.scale_caps.property::<gst::Caps>("caps") != caps {
                self.scale_caps.set_property("caps", caps);
            }
            for (name, v) in [
                ("left", d.x.saturating_neg()),
                ("top", d.y.saturating_neg()),
                ("right", right - cw),
                ("bottom", bottom - ch),
            ] {
                if self.placer.property::<i32>(name) != v {
                    self.placer.set_property(name, v);
                }
            }
        }
        self.hidden.store(!(shown && g.visible), Ordering::Release);
    }
}

fn make(name: &str) -> Result<gst::Element, EngineError> {
    gst::ElementFactory::make(name)
        .build()
        .map_err(|_| EngineError::MissingElement(name.into()))
}

/// What ends an output chain, after its converters (and volume).
pub(crate) enum Tail {
    /// Auto mode: the overlay elements (video) and a real sink from the
    /// lists of `sinks`.
    Auto,
    /// Headless mode: `fakesink` with `qos`, on the clock when `sync`.
    Discard {
        /// Whether the sink synchronises to the clock.
        sync: bool,
    },
    /// Elements the caller made, linked in order, the last one the sink
    /// (the verification oracle's capsfilter and hashing `appsink`; the
    /// integrator's picture `appsink`, see `frames`).
    Elements(Vec<gst::Element>),
}

/// Builds the output chain for a decoded pad of `kind` ending in `tail`,
/// adds it to `bin` and links `pad` to it.
pub(crate) fn attach_output(
    bin: &gst::Bin,
    pad: &gst::Pad,
    kind: MediaKind,
    tail: Tail,
    counters: Arc<Counters>,
) -> Result<OutputChain, EngineError> {
    let mut chain: Vec<gst::Element> = Vec::new();
    let mut volume = None;
    let mut overlay = None;
    match kind {
        MediaKind::Video => {
            chain.push(make("videoconvert")?);
            if matches!(tail, Tail::Auto) {
                let (o, elements) = Overlay::build()?;
                chain.extend(elements);
                chain.push(make("videoconvert")?);
                overlay = Some(o);
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
        }
    }
    let mut x11 = false;
    match tail {
        Tail::Auto => {
            let chosen = choose_sink(kind)?;
            x11 = chosen.place == Place::X11;
            chain.push(chosen.element);
        }
        Tail::Discard { sync } => chain.push(
            gst::ElementFactory::make("fakesink")
                .property("sync", sync)
                .property("qos", true)
                .build()?,
        ),
        Tail::Elements(elements) if !elements.is_empty() => chain.extend(elements),
        Tail::Elements(_) => {
            return Err(EngineError::Pipeline(
                "an output chain without a sink".into(),
            ));
        }
    }
    let sink = chain.last().cloned().expect("the tail added a sink");
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
    Ok(OutputChain {
        sink,
        volume,
        overlay,
        x11,
    })
}

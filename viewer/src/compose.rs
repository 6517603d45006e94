//! Draws the presentations of one guest display over the desktop image, in
//! the display's own widget (a `GtkOverlay` child above the
//! `SpiceDisplay`, so never above the viewer's menus or dialogs and only
//! inside its view of that display: spec CLI-GEOM-2).
//!
//! For each presentation, bottom to top ([`Scene::on_display`]): the
//! picture's `source` part is scaled to `dest`, placed through the
//! display's [`DisplayPlacement`] and painted only inside the
//! [`visible_parts`]. A presentation whose geometry asks for the colour
//! key is first composited with the desktop's own pixels in guest
//! resolution ([`keying::blend_row`]), so that what the guest draws over
//! its video stays on top.
//!
//! Each draw also tells the scene at what size the whole picture was
//! drawn ([`Scene::show_at`]), so that the engine scales later pictures
//! to it before converting and handing them over: a 1080p stream in a
//! 720-pixel window costs a 720-pixel picture here, drawn 1:1.

use std::collections::HashMap;
use std::sync::Arc;

use client_engine::VideoFrame;
use client_engine::wire::{Rect, SetGeometry};
use gtk::cairo;

use crate::keying;
use crate::layout::{DisplayPlacement, Span, visible_parts};
use crate::scene::Scene;

/// The guest's desktop image of one display, as the Spice display channel
/// holds it (BGRx rows).
pub struct Desktop<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row.
    pub stride: usize,
    /// The pixels, if readable (needed for the colour key only).
    pub pixels: Option<&'a [u8]>,
}

impl<'a> Desktop<'a> {
    /// The part (x, y, width, height) of this desktop that one monitor
    /// shows ([`monitors::area`](crate::monitors::area)), as a desktop of
    /// its own: presentations on that monitor are placed in its
    /// coordinates and the colour key reads its pixels.
    pub fn area(&self, (x, y, width, height): (u32, u32, u32, u32)) -> Desktop<'a> {
        let start = y as usize * self.stride + x as usize * 4;
        Desktop {
            width,
            height,
            stride: self.stride,
            pixels: self.pixels.and_then(|p| p.get(start..)),
        }
    }
}

/// The pictures already turned into cairo surfaces, by presentation.
pub struct Compositor {
    surfaces: HashMap<u32, (u64, cairo::ImageSurface)>,
    /// Device pixels per widget unit (GDK's scale factor: 2 on HiDPI
    /// screens), so that pictures are asked at the size the screen shows.
    pub device_scale: f64,
}

impl Default for Compositor {
    fn default() -> Compositor {
        Compositor {
            surfaces: HashMap::new(),
            device_scale: 1.0,
        }
    }
}

/// Whether a presentation's picture is composited through the colour key:
/// the guest asks for it per presentation with the geometry's `COLORKEY`
/// flag (spec 7.14, CLI-GEOM-3), having painted `dest` in the key; without
/// it the picture is a plain overlay over all of `dest` within the clip.
fn keyed(g: &SetGeometry) -> bool {
    g.color_key
}

impl Compositor {
    /// Paints every presentation of `display` on `cr`, whose origin is the
    /// widget's, for a widget placement `placement` of `desktop`.
    pub fn draw(
        &mut self,
        cr: &cairo::Context,
        scene: &Scene,
        display: u32,
        placement: &DisplayPlacement,
        desktop: &Desktop<'_>,
        indicator: bool,
    ) -> u64 {
        let mut painted = 0;
        let shown = scene.on_display(display);
        self.surfaces
            .retain(|id, _| shown.iter().any(|(shown_id, _)| shown_id == id));
        for (id, p) in shown {
            let (Some(g), Some((n, frame))) = (&p.geometry, &p.frame) else {
                continue;
            };
            let parts = visible_parts(g.visible, &g.dest, &g.clip, desktop.width, desktop.height);
            if parts.is_empty() {
                continue;
            }
            let Some(surface) = self.surface(id, *n, frame) else {
                continue;
            };
            // Not empty: `visible_parts` found some of it.
            let Some(dest) = Span::of(&g.dest) else {
                continue;
            };
            let picture = Picture {
                surface: &surface,
                source: source_rect(&g.source, frame),
                dest,
            };
            painted += 1;
            if indicator {
                draw_indicator(cr, &parts, placement);
            }
            let pixels = desktop.pixels.filter(|_| keyed(g));
            // Keyed video is blended in guest pixels, then scaled with the
            // desktop; plain video goes straight to the screen's pixels.
            let per_guest_pixel = match pixels {
                Some(_) => 1.0,
                None => placement.scale * self.device_scale,
            };
            scene.show_at(id, wanted_size(frame, &g.source, &dest, per_guest_pixel));
            for part in &parts {
                let drawn = match pixels {
                    Some(pixels) => draw_keyed(cr, &picture, part, placement, desktop, pixels),
                    None => draw_plain(cr, &picture, part, placement),
                };
                if let Err(e) = drawn {
                    log::warn!("presentation {id}: draw: {e}");
                }
            }
        }
        painted
    }

    /// The cairo surface of picture number `n`, made once per picture.
    fn surface(&mut self, id: u32, n: u64, frame: &Arc<VideoFrame>) -> Option<cairo::ImageSurface> {
        if let Some((made, s)) = self.surfaces.get(&id)
            && *made == n
        {
            return Some(s.clone());
        }
        // The last picture's surface, refilled when its size fits and no
        // one else holds it: no allocation per picture.
        let size = (
            i32::try_from(frame.width).ok()?,
            i32::try_from(frame.height).ok()?,
        );
        let reused = self
            .surfaces
            .remove(&id)
            .map(|(_, s)| s)
            .filter(|s| (s.width(), s.height()) == size)
            .and_then(|mut s| fill(&mut s, frame).map(|()| s));
        let surface = match reused {
            Some(s) => s,
            None => surface_of(frame)?,
        };
        self.surfaces.insert(id, (n, surface.clone()));
        Some(surface)
    }
}

/// `--indicator`: a thin border round what is shown of a redirected
/// video, drawn first so the picture covers its inner half.
fn draw_indicator(cr: &cairo::Context, parts: &[Span], placement: &DisplayPlacement) {
    let _ = cr.save();
    cr.set_source_rgb(1.0, 0.55, 0.0);
    cr.set_line_width(4.0);
    for part in parts {
        let (x, y, w, h) = placement.map_snapped(part);
        cr.rectangle(x, y, w, h);
    }
    let _ = cr.stroke();
    let _ = cr.restore();
}

/// A copy of the picture as a cairo RGB24 surface (BGRx in memory on
/// little-endian machines, the same bytes).
fn surface_of(frame: &VideoFrame) -> Option<cairo::ImageSurface> {
    let (w, h) = (
        i32::try_from(frame.width).ok()?,
        i32::try_from(frame.height).ok()?,
    );
    let mut surface = cairo::ImageSurface::create(cairo::Format::Rgb24, w, h).ok()?;
    fill(&mut surface, frame)?;
    Some(surface)
}

/// Copies `frame` into `surface` (of its size); `None` when the surface is
/// shared or too small.
fn fill(surface: &mut cairo::ImageSurface, frame: &VideoFrame) -> Option<()> {
    let stride = usize::try_from(surface.stride()).ok()?;
    let row = frame.width as usize * 4;
    {
        let mut data = surface.data().ok()?;
        for (y, src) in frame
            .pixels()
            .chunks(frame.stride)
            .take(frame.height as usize)
            .enumerate()
        {
            let dst = data.get_mut(y * stride..y * stride + row)?;
            dst.copy_from_slice(src.get(..row)?);
        }
    }
    surface.mark_dirty();
    Some(())
}

/// The stream's own size, never zero.
fn stream_size(frame: &VideoFrame) -> (f64, f64) {
    let (w, h) = frame.stream_size;
    (f64::from(w.max(1)), f64::from(h.max(1)))
}

/// The part of the stream's picture shown, in the stream's own pixels:
/// `source` clipped to the picture, or all of it when `source` is all zero
/// or empty (spec 7.14).
fn stream_source(source: &Rect, frame: &VideoFrame) -> (f64, f64, f64, f64) {
    let (w, h) = frame.stream_size;
    let whole = (0.0, 0.0, f64::from(w), f64::from(h));
    let picture = Span::new(0, 0, i64::from(w), i64::from(h));
    match (Span::of(source), picture) {
        (Some(s), Some(p)) => s.intersect(&p).map_or(whole, |c| {
            (
                c.x0 as f64,
                c.y0 as f64,
                c.width() as f64,
                c.height() as f64,
            )
        }),
        _ => whole,
    }
}

/// The part of `frame` shown, in its pixels (the engine may have scaled
/// the stream's picture: `source` is in the stream's own pixels).
fn source_rect(source: &Rect, frame: &VideoFrame) -> (f64, f64, f64, f64) {
    let (x, y, w, h) = stream_source(source, frame);
    let (sw, sh) = stream_size(frame);
    let (fx, fy) = (f64::from(frame.width) / sw, f64::from(frame.height) / sh);
    (x * fx, y * fy, w * fx, h * fy)
}

/// The size of the whole picture at which its `source` part covers `dest`
/// with `per_guest_pixel` output pixels per guest pixel; never larger than
/// the stream's own size (the engine only scales down: scaling up is
/// cheaper at paint than in more pixels converted and copied).
// The size is clamped to [1, the stream's own u32 size] before the cast.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn wanted_size(frame: &VideoFrame, source: &Rect, dest: &Span, per_guest_pixel: f64) -> (u32, u32) {
    let (_, _, cw, ch) = stream_source(source, frame);
    let (sw, sh) = stream_size(frame);
    let side = |dest: i64, part: f64, whole: f64| {
        (dest as f64 * per_guest_pixel * whole / part.max(1.0))
            .round()
            .clamp(1.0, whole) as u32
    };
    (side(dest.width(), cw, sw), side(dest.height(), ch, sh))
}

/// Sets `cr` so that painting `surface` puts its `source` part exactly on
/// `dest` (in the coordinates `cr` has).
fn place_picture(
    cr: &cairo::Context,
    surface: &cairo::ImageSurface,
    source: (f64, f64, f64, f64),
    dest: (f64, f64, f64, f64),
) -> Result<(), cairo::Error> {
    let (sx, sy, sw, sh) = source;
    let (dx, dy, dw, dh) = dest;
    cr.translate(dx, dy);
    cr.scale(dw / sw, dh / sh);
    cr.set_source_surface(surface, -sx, -sy)?;
    let pattern = cr.source();
    pattern.set_filter(cairo::Filter::Good);
    pattern.set_extend(cairo::Extend::Pad);
    Ok(())
}

/// A picture and where it goes: its `source` part fills `dest` (guest
/// display pixels).
struct Picture<'a> {
    surface: &'a cairo::ImageSurface,
    source: (f64, f64, f64, f64),
    dest: Span,
}

fn draw_plain(
    cr: &cairo::Context,
    picture: &Picture<'_>,
    part: &Span,
    placement: &DisplayPlacement,
) -> Result<(), cairo::Error> {
    cr.save()?;
    clip_to(cr, part, placement);
    place_picture(
        cr,
        picture.surface,
        picture.source,
        placement.map(&picture.dest),
    )?;
    cr.paint()?;
    cr.restore()
}

/// Limits drawing on `cr` to `part` of the guest display, on whole widget
/// pixels.
fn clip_to(cr: &cairo::Context, part: &Span, placement: &DisplayPlacement) {
    let (x, y, w, h) = placement.map_snapped(part);
    cr.rectangle(x, y, w, h);
    cr.clip();
}

fn draw_keyed(
    cr: &cairo::Context,
    picture: &Picture<'_>,
    part: &Span,
    placement: &DisplayPlacement,
    desktop: &Desktop<'_>,
    pixels: &[u8],
) -> Result<(), cairo::Error> {
    let dest = picture.dest;
    let (Ok(pw), Ok(ph), Ok(x0), Ok(y0)) = (
        i32::try_from(part.width()),
        i32::try_from(part.height()),
        usize::try_from(part.x0),
        usize::try_from(part.y0),
    ) else {
        return Ok(());
    };
    // The video scaled to `dest`, in guest pixels, for this part only.
    let mut video = cairo::ImageSurface::create(cairo::Format::Rgb24, pw, ph)?;
    {
        let vcr = cairo::Context::new(&video)?;
        let d = (
            (dest.x0 - part.x0) as f64,
            (dest.y0 - part.y0) as f64,
            dest.width() as f64,
            dest.height() as f64,
        );
        place_picture(&vcr, picture.surface, picture.source, d)?;
        vcr.paint()?;
    }
    video.flush();
    let stride = video.stride() as usize;
    {
        let Ok(mut data) = video.data() else {
            return Ok(());
        };
        for row in 0..ph as usize {
            let at = (y0 + row) * desktop.stride + x0 * 4;
            let Some(guest) = pixels.get(at..at + pw as usize * 4) else {
                break;
            };
            let out = &mut data[row * stride..row * stride + pw as usize * 4];
            keying::blend_row(guest, out);
        }
    }
    video.mark_dirty();
    cr.save()?;
    clip_to(cr, part, placement);
    let (x, y, _, _) = placement.map(part);
    cr.translate(x, y);
    cr.scale(placement.scale, placement.scale);
    cr.set_source_surface(&video, 0.0, 0.0)?;
    cr.source().set_filter(cairo::Filter::Good);
    cr.paint()?;
    cr.restore()
}

#[cfg(test)]
mod tests {
    use client_engine::VideoOutput as _;

    use super::*;

    const GREY: (u8, u8, u8) = (0x80, 0x80, 0x80);

    /// A picture of one colour (R, G, B).
    fn frame(presentation: u32, (r, g, b): (u8, u8, u8), w: u32, h: u32) -> VideoFrame {
        client_engine::gst::init().unwrap();
        let bytes = [b, g, r, 0xff].repeat((w * h) as usize);
        VideoFrame::from_bgrx(presentation, 1, (w, h, w as usize * 4), Some(0), bytes).unwrap()
    }

    fn geometry(
        presentation: u32,
        z: i32,
        dest: Rect,
        clip: Vec<Rect>,
        color_key: bool,
    ) -> SetGeometry {
        SetGeometry {
            presentation,
            display: 0,
            visible: true,
            color_key,
            z,
            dest,
            source: Rect::default(),
            clip,
        }
    }

    /// Draws `scene` over a grey widget of `ww` x `wh` showing a 100x100
    /// guest display whose desktop is `desktop` (BGRx), and reads it back.
    fn render(scene: &Scene, ww: i32, wh: i32, desktop: Option<&[u8]>) -> cairo::ImageSurface {
        let desktop = Desktop {
            width: 100,
            height: 100,
            stride: 400,
            pixels: desktop,
        };
        render_display(scene, 0, ww, wh, &desktop)
    }

    /// Draws the presentations of `display` over a grey widget of `ww` x
    /// `wh` showing `desktop`, and reads it back.
    fn render_display(
        scene: &Scene,
        display: u32,
        ww: i32,
        wh: i32,
        desktop: &Desktop<'_>,
    ) -> cairo::ImageSurface {
        let mut surface = cairo::ImageSurface::create(cairo::Format::Rgb24, ww, wh).unwrap();
        {
            let cr = cairo::Context::new(&surface).unwrap();
            cr.set_source_rgb(0.5, 0.5, 0.5);
            cr.paint().unwrap();
            let (dw, dh) = (desktop.width as i32, desktop.height as i32);
            let placement = DisplayPlacement::new(ww, wh, dw, dh, true, false);
            Compositor::default().draw(&cr, scene, display, &placement, desktop, false);
        }
        surface.flush();
        let _ = surface.data();
        surface
    }

    fn rgb(surface: &mut cairo::ImageSurface, x: usize, y: usize) -> (u8, u8, u8) {
        let stride = surface.stride() as usize;
        let data = surface.data().unwrap();
        let p = &data[y * stride + x * 4..][..4];
        (p[2], p[1], p[0])
    }

    #[test]
    fn a_picture_fills_dest_cut_to_the_clip_and_scales_with_the_display() {
        let scene = Scene::new();
        let dest = Rect::new(10, 10, 40, 20);
        scene.geometry(
            1,
            &geometry(1, 0, dest, vec![Rect::new(10, 10, 20, 20)], false),
        );
        scene.frame(frame(1, (255, 0, 0), 16, 16));
        let mut s = render(&scene, 100, 100, None);
        assert_eq!(rgb(&mut s, 15, 15), (255, 0, 0));
        assert_eq!(rgb(&mut s, 35, 15), GREY, "outside the clip");
        assert_eq!(rgb(&mut s, 5, 5), GREY, "outside dest");
        // Half the size: half the coordinates.
        let mut s = render(&scene, 50, 50, None);
        assert_eq!(rgb(&mut s, 7, 7), (255, 0, 0));
        assert_eq!(rgb(&mut s, 17, 7), GREY);
    }

    #[test]
    fn a_picture_the_engine_scaled_shows_the_source_part_and_asks_its_size() {
        // The stream is 320x240, its left half red and its right half blue;
        // the engine handed it over at 160x120.
        let mut bytes = Vec::new();
        for _ in 0..120 {
            bytes.extend([0u8, 0, 255, 255].repeat(80));
            bytes.extend([255u8, 0, 0, 255].repeat(80));
        }
        client_engine::gst::init().unwrap();
        let mut picture = VideoFrame::from_bgrx(1, 1, (160, 120, 640), None, bytes).unwrap();
        picture.stream_size = (320, 240);
        let scene = Scene::new();
        let mut g = geometry(1, 0, Rect::new(10, 10, 40, 30), vec![], false);
        // The right half, in the stream's pixels.
        g.source = Rect::new(160, 0, 160, 240);
        scene.geometry(1, &g);
        scene.frame(picture);
        let mut s = render(&scene, 100, 100, None);
        assert_eq!(rgb(&mut s, 12, 12), (0, 0, 255));
        assert_eq!(rgb(&mut s, 48, 38), (0, 0, 255));
        assert_eq!(rgb(&mut s, 5, 5), GREY);
        // 40x30 guest pixels show half the stream's width: the whole
        // picture is wanted at 80x30 (twice 40 wide, 30 high).
        assert_eq!(scene.wanted_size(1), Some((80, 30)));
        // In a window of twice the size, twice that; never above the
        // stream's own size.
        render(&scene, 200, 200, None);
        assert_eq!(scene.wanted_size(1), Some((160, 60)));
        g.dest = Rect::new(0, 0, 100, 100);
        g.source = Rect::default();
        scene.geometry(1, &g);
        render(&scene, 800, 800, None);
        assert_eq!(scene.wanted_size(1), Some((320, 240)));
    }

    #[test]
    fn higher_z_is_on_top_and_hidden_shows_nothing() {
        let scene = Scene::new();
        scene.geometry(1, &geometry(1, 1, Rect::new(0, 0, 60, 60), vec![], false));
        scene.geometry(2, &geometry(2, 0, Rect::new(40, 40, 60, 60), vec![], false));
        scene.frame(frame(1, (255, 0, 0), 8, 8));
        scene.frame(frame(2, (0, 0, 255), 8, 8));
        let mut s = render(&scene, 100, 100, None);
        assert_eq!(rgb(&mut s, 50, 50), (255, 0, 0), "z 1 over z 0");
        assert_eq!(rgb(&mut s, 80, 80), (0, 0, 255));
        let mut hidden = geometry(1, 1, Rect::new(0, 0, 60, 60), vec![], false);
        hidden.visible = false;
        scene.geometry(1, &hidden);
        let mut s = render(&scene, 100, 100, None);
        assert_eq!(rgb(&mut s, 10, 10), GREY);
        assert_eq!(rgb(&mut s, 50, 50), (0, 0, 255));
    }

    #[test]
    fn the_colour_key_keeps_what_the_guest_draws_over_its_video() {
        // The desktop: magenta (the key) everywhere, an opaque white bar at
        // rows 20..25 and a 50 % black bar at rows 30..35.
        let mut desktop = [0xffu8, 0, 0xff, 0xff].repeat(100 * 100);
        for y in 20..25 {
            desktop[y * 400..(y + 1) * 400].copy_from_slice(&[0xff; 400]);
        }
        for y in 30..35 {
            desktop[y * 400..(y + 1) * 400].copy_from_slice(&[0x80, 0, 0x80, 0xff].repeat(100));
        }
        let scene = Scene::new();
        scene.geometry(1, &geometry(1, 0, Rect::new(0, 0, 100, 100), vec![], true));
        scene.frame(frame(1, (0, 200, 0), 10, 10));
        let mut s = render(&scene, 100, 100, Some(&desktop));
        assert_eq!(rgb(&mut s, 50, 10), (0, 200, 0), "the key shows the video");
        assert_eq!(
            rgb(&mut s, 50, 22),
            (255, 255, 255),
            "the guest's bar stays"
        );
        let (r, g, b) = rgb(&mut s, 50, 32);
        assert!(
            r < 8 && b < 8 && (90..=110).contains(&g),
            "the video darkened: {r},{g},{b}"
        );
        // Without the flag the same geometry is a plain overlay.
        scene.geometry(1, &geometry(1, 0, Rect::new(0, 0, 100, 100), vec![], false));
        let mut s = render(&scene, 100, 100, Some(&desktop));
        assert_eq!(rgb(&mut s, 50, 22), (0, 200, 0));
    }

    #[test]
    fn a_monitor_shows_its_own_presentations_keyed_with_its_own_pixels() {
        // One 200x100 surface holding two 100x100 monitors side by side:
        // the left one all white, the right one the key with a white bar
        // at rows 20..25 of it.
        let mut surface = Vec::new();
        for y in 0..100 {
            surface.extend([0xffu8; 400]);
            let right = if (20..25).contains(&y) {
                [0xffu8; 4]
            } else {
                [0xff, 0, 0xff, 0xff]
            };
            surface.extend(right.repeat(100));
        }
        let whole = Desktop {
            width: 200,
            height: 100,
            stride: 800,
            pixels: Some(&surface),
        };
        let (left, right) = (whole.area((0, 0, 100, 100)), whole.area((100, 0, 100, 100)));
        let scene = Scene::new();
        // On display 1 (the right monitor), keyed, dest in its coordinates.
        let mut g = geometry(1, 0, Rect::new(10, 10, 50, 50), vec![], true);
        g.display = 1;
        scene.geometry(1, &g);
        scene.frame(frame(1, (0, 200, 0), 10, 10));
        let mut s = render_display(&scene, 1, 100, 100, &right);
        assert_eq!(rgb(&mut s, 30, 15), (0, 200, 0), "the key shows the video");
        assert_eq!(rgb(&mut s, 30, 22), (255, 255, 255), "its bar stays");
        assert_eq!(rgb(&mut s, 5, 5), GREY, "outside dest");
        assert_eq!(rgb(&mut s, 70, 70), GREY, "outside dest");
        // Nothing of it in the left monitor's window.
        let mut s = render_display(&scene, 0, 100, 100, &left);
        assert_eq!(rgb(&mut s, 30, 30), GREY);
        // Keyed against the left monitor's white pixels, nothing would show.
        let mut s = render_display(&scene, 1, 100, 100, &left);
        assert_eq!(rgb(&mut s, 30, 30), (255, 255, 255));
    }
}

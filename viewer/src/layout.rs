//! Where a presentation's video goes in the viewer's window: pure
//! arithmetic, so that it is tested without a display.
//!
//! The guest gives `dest` and the clip rectangles in pixels of its display
//! (spec 7.14). The viewer shows that display the way spice-gtk's
//! `SpiceDisplay` draws it (its `spice_display_get_scaling`): with scaling
//! on and a widget of another size, the guest image is scaled by
//! `s = min(widget_w / guest_w, widget_h / guest_h)` (never above 1 with
//! `only-downscale`), rounded to whole pixels and centred (letterboxing);
//! without scaling it is centred when smaller than the widget and anchored
//! at the top left otherwise. [`DisplayPlacement`] is that mapping; video
//! is placed through the same one, so it moves and scales with the desktop
//! on every resize, zoom and full-screen change. Widget coordinates are
//! GTK's logical pixels: cairo applies the HiDPI scale factor to both the
//! desktop and the video alike.
//!
//! What is shown of a presentation is `dest`, intersected with the guest
//! display and with the union of the clip rectangles (all of `dest` when
//! there are none), and nothing while not `VISIBLE` (spec CLI-GEOM-1):
//! [`visible_parts`].

use mediaredir_proto::wire::Rect;

/// A rectangle with its far edges, in one coordinate space, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Left edge (inclusive).
    pub x0: i64,
    /// Top edge (inclusive).
    pub y0: i64,
    /// Right edge (exclusive).
    pub x1: i64,
    /// Bottom edge (exclusive).
    pub y1: i64,
}

impl Span {
    /// The rectangle `r`, or `None` when it is empty.
    pub fn of(r: &Rect) -> Option<Span> {
        Span::new(
            i64::from(r.x),
            i64::from(r.y),
            i64::from(r.x) + i64::from(r.width),
            i64::from(r.y) + i64::from(r.height),
        )
    }

    /// `[x0, x1) x [y0, y1)`, or `None` when it is empty.
    pub fn new(x0: i64, y0: i64, x1: i64, y1: i64) -> Option<Span> {
        (x0 < x1 && y0 < y1).then_some(Span { x0, y0, x1, y1 })
    }

    /// What `self` and `other` share.
    pub fn intersect(&self, other: &Span) -> Option<Span> {
        Span::new(
            self.x0.max(other.x0),
            self.y0.max(other.y0),
            self.x1.min(other.x1),
            self.y1.min(other.y1),
        )
    }

    /// Width.
    pub fn width(&self) -> i64 {
        self.x1 - self.x0
    }

    /// Height.
    pub fn height(&self) -> i64 {
        self.y1 - self.y0
    }
}

/// The parts of `dest` where the video shows, in guest display pixels,
/// without overlaps: `dest` within the display (`display_w` x
/// `display_h`), cut to the union of `clip` (all of `dest` when `clip` is
/// empty). Empty when not `visible`.
pub fn visible_parts(
    visible: bool,
    dest: &Rect,
    clip: &[Rect],
    display_w: u32,
    display_h: u32,
) -> Vec<Span> {
    let display = Span::new(0, 0, i64::from(display_w), i64::from(display_h));
    let (Some(display), Some(dest), true) = (display, Span::of(dest), visible) else {
        return Vec::new();
    };
    let Some(shown) = dest.intersect(&display) else {
        return Vec::new();
    };
    if clip.is_empty() {
        return vec![shown];
    }
    // The union of the clip rectangles within `shown`, as disjoint pieces:
    // each rectangle adds what the earlier ones did not cover.
    let mut parts: Vec<Span> = Vec::new();
    for c in clip.iter().filter_map(Span::of) {
        let Some(c) = c.intersect(&shown) else {
            continue;
        };
        let mut pieces = vec![c];
        for done in &parts {
            pieces = pieces.iter().flat_map(|p| subtract(p, done)).collect();
        }
        parts.extend(pieces);
    }
    parts
}

/// `a` minus `b`, as at most four disjoint rectangles.
fn subtract(a: &Span, b: &Span) -> Vec<Span> {
    let Some(i) = a.intersect(b) else {
        return vec![*a];
    };
    [
        Span::new(a.x0, a.y0, a.x1, i.y0),
        Span::new(a.x0, i.y1, a.x1, a.y1),
        Span::new(a.x0, i.y0, i.x0, i.y1),
        Span::new(i.x1, i.y0, a.x1, i.y1),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// How a guest display of `guest_w` x `guest_h` pixels lies in a widget,
/// as spice-gtk draws it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DisplayPlacement {
    /// Widget pixels per guest pixel.
    pub scale: f64,
    /// Left edge of the guest image in the widget.
    pub x: i32,
    /// Top edge of the guest image in the widget.
    pub y: i32,
    /// Width of the guest image in the widget.
    pub width: i32,
    /// Height of the guest image in the widget.
    pub height: i32,
}

impl DisplayPlacement {
    /// The placement in a widget of `widget_w` x `widget_h` with
    /// `SpiceDisplay`'s `scaling` and `only-downscale` properties.
    pub fn new(
        widget_w: i32,
        widget_h: i32,
        guest_w: i32,
        guest_h: i32,
        scaling: bool,
        only_downscale: bool,
    ) -> DisplayPlacement {
        let (gw, gh) = (guest_w.max(1), guest_h.max(1));
        let scaled = scaling && (widget_w != gw || widget_h != gh);
        if !scaled {
            return DisplayPlacement {
                scale: 1.0,
                x: if widget_w > gw {
                    (widget_w - gw) / 2
                } else {
                    0
                },
                y: if widget_h > gh {
                    (widget_h - gh) / 2
                } else {
                    0
                },
                width: gw,
                height: gh,
            };
        }
        let mut s = (f64::from(widget_w) / f64::from(gw)).min(f64::from(widget_h) / f64::from(gh));
        if only_downscale && s >= 1.0 {
            s = 1.0;
        }
        // As spice-gtk: whole-pixel size, centred (C integer division).
        let round = |v: f64| {
            // In range: at most 16384 x 400 %.
            #[allow(clippy::cast_possible_truncation)]
            let r = (v + 0.5).floor() as i32;
            r
        };
        let (w, h) = (round(f64::from(gw) * s), round(f64::from(gh) * s));
        DisplayPlacement {
            scale: s,
            x: (widget_w - w) / 2,
            y: (widget_h - h) / 2,
            width: w,
            height: h,
        }
    }

    /// Widget coordinates of guest pixel edge `(gx, gy)`.
    pub fn to_widget(&self, gx: f64, gy: f64) -> (f64, f64) {
        (
            f64::from(self.x) + gx * self.scale,
            f64::from(self.y) + gy * self.scale,
        )
    }

    /// The widget rectangle a guest span covers, its edges rounded to
    /// whole widget pixels, so that spans that touch in the guest touch in
    /// the widget with no seam or overlap (for clipping).
    pub fn map_snapped(&self, s: &Span) -> (f64, f64, f64, f64) {
        let (x, y, w, h) = self.map(s);
        let (x0, y0) = (x.round(), y.round());
        (x0, y0, (x + w).round() - x0, (y + h).round() - y0)
    }

    /// The widget rectangle (x, y, width, height) a guest span covers.
    pub fn map(&self, s: &Span) -> (f64, f64, f64, f64) {
        let (x0, y0) = self.to_widget(s.x0 as f64, s.y0 as f64);
        let (x1, y1) = self.to_widget(s.x1 as f64, s.y1 as f64);
        (x0, y0, x1 - x0, y1 - y0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(x: i32, y: i32, w: u32, h: u32) -> Rect {
        Rect::new(x, y, w, h)
    }

    fn area(parts: &[Span]) -> i64 {
        parts.iter().map(|p| p.width() * p.height()).sum()
    }

    #[test]
    fn dest_alone_is_clipped_to_the_display() {
        let parts = visible_parts(true, &r(600, 400, 100, 100), &[], 640, 480);
        assert_eq!(parts, vec![Span::new(600, 400, 640, 480).unwrap()]);
        assert!(visible_parts(true, &r(700, 0, 10, 10), &[], 640, 480).is_empty());
        assert!(visible_parts(false, &r(0, 0, 10, 10), &[], 640, 480).is_empty());
        assert!(visible_parts(true, &r(0, 0, 0, 10), &[], 640, 480).is_empty());
    }

    #[test]
    fn a_clip_list_that_excludes_a_square_leaves_everything_else() {
        // dest (100,100)-(420,340) minus the square (200,200)+50x50, as
        // four clip rectangles around it.
        let dest = r(100, 100, 320, 240);
        let clip = [
            r(100, 100, 320, 100),
            r(100, 250, 320, 90),
            r(100, 200, 100, 50),
            r(250, 200, 170, 50),
        ];
        let parts = visible_parts(true, &dest, &clip, 640, 480);
        assert_eq!(area(&parts), 320 * 240 - 50 * 50);
        let inside = |x, y| {
            parts
                .iter()
                .any(|p| p.x0 <= x && x < p.x1 && p.y0 <= y && y < p.y1)
        };
        assert!(!inside(225, 225));
        assert!(inside(199, 225) && inside(250, 225) && inside(225, 199));
    }

    #[test]
    fn overlapping_clip_rectangles_count_once() {
        let dest = r(0, 0, 100, 100);
        let clip = [r(0, 0, 60, 60), r(40, 40, 60, 60), r(0, 0, 60, 60)];
        let parts = visible_parts(true, &dest, &clip, 640, 480);
        assert_eq!(area(&parts), 60 * 60 * 2 - 20 * 20);
        for (i, a) in parts.iter().enumerate() {
            for b in &parts[i + 1..] {
                assert!(a.intersect(b).is_none(), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn clip_outside_dest_shows_nothing() {
        let parts = visible_parts(true, &r(0, 0, 10, 10), &[r(20, 20, 5, 5)], 640, 480);
        assert!(parts.is_empty());
    }

    #[test]
    fn placement_follows_spice_gtk() {
        // Same size: unscaled.
        let p = DisplayPlacement::new(640, 480, 640, 480, true, false);
        assert_eq!(
            (p.scale, p.x, p.y, p.width, p.height),
            (1.0, 0, 0, 640, 480)
        );
        // Half size: everything halves.
        let p = DisplayPlacement::new(320, 240, 640, 480, true, false);
        assert_eq!((p.scale, p.x, p.y), (0.5, 0, 0));
        assert_eq!(
            p.map(&Span::new(100, 100, 420, 340).unwrap()),
            (50.0, 50.0, 160.0, 120.0)
        );
        // Wider window: letterboxed left and right.
        let p = DisplayPlacement::new(1000, 480, 640, 480, true, false);
        assert_eq!((p.scale, p.x, p.y, p.width), (1.0, 180, 0, 640));
        // Larger window with only-downscale: centred, not enlarged.
        let p = DisplayPlacement::new(1280, 960, 640, 480, true, true);
        assert_eq!((p.scale, p.x, p.y), (1.0, 320, 240));
        // Larger window with scaling: doubled.
        let p = DisplayPlacement::new(1280, 960, 640, 480, true, false);
        assert_eq!((p.scale, p.x, p.y, p.width), (2.0, 0, 0, 1280));
        // Scaling off, smaller window: top-left anchored.
        let p = DisplayPlacement::new(320, 240, 640, 480, false, false);
        assert_eq!((p.scale, p.x, p.y), (1.0, 0, 0));
    }
}

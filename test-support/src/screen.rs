//! Comparing what a viewer's window shows with what the VM shows: the
//! window read back with `xwd`, pixels looked up and compared with a
//! tolerance, rectangles of the guest display, and where the guest display
//! lies in the window (under the menu bar, centred across).
//!
//! The viewer's tests (`tests/tests/viewer/`, over QEMU's firmware screen)
//! and the VM test with a real guest desktop (`cargo xtask vm`) check the
//! same things the same way; this is their one copy.

use std::io;
use std::process::{Command, Stdio};

use crate::image::{Image, pixel};

/// A rectangle in a display: x, y, width, height.
pub type Rect = (i64, i64, i64, i64);

/// The window `window` on X display `display` as it shows now (`xwd`).
pub fn grab(display: &str, window: u32) -> io::Result<Image> {
    let out = Command::new("xwd")
        .args(["-silent", "-display", display, "-id", &window.to_string()])
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "xwd -id {window} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Image::from_xwd(&out.stdout)
}

/// The pixel at (`x`, `y`); black outside the image.
pub fn at(img: &Image, x: i64, y: i64) -> (u8, u8, u8) {
    match (usize::try_from(x), usize::try_from(y)) {
        (Ok(x), Ok(y)) => img.rgb(x, y),
        _ => (0, 0, 0),
    }
}

/// A screen coordinate as a signed number.
pub fn int(v: usize) -> i64 {
    i64::try_from(v).expect("a screen coordinate")
}

/// Whether every channel of `a` is within `tolerance` of `b`'s.
pub fn within(a: (u8, u8, u8), b: (u8, u8, u8), tolerance: u8) -> bool {
    a.0.abs_diff(b.0) <= tolerance
        && a.1.abs_diff(b.1) <= tolerance
        && a.2.abs_diff(b.2) <= tolerance
}

/// The same colour after a lossless path (8 per channel for rounding).
pub fn close(a: (u8, u8, u8), b: (u8, u8, u8)) -> bool {
    within(a, b, 8)
}

/// Whether (`x`, `y`) lies in `r` shrunk by `margin` on every side (grown
/// for a negative margin).
pub fn inside(r: Rect, x: i64, y: i64, margin: i64) -> bool {
    x >= r.0 + margin && x < r.0 + r.2 - margin && y >= r.1 + margin && y < r.1 + r.3 - margin
}

/// Whether (`x`, `y`) lies within `margin` of `r`'s edge, inside or out.
pub fn near_edge(r: Rect, x: i64, y: i64, margin: i64) -> bool {
    inside(r, x, y, -margin) && !inside(r, x, y, margin)
}

/// The `w` x `h` part of `img` at (`x`, `y`).
pub fn crop(img: &Image, x: usize, y: usize, w: usize, h: usize) -> Image {
    Image::from_fn(w, h, |col, row| pixel(img.rgb(x + col, y + row)))
}

/// Where the guest display lies in the window at scale 1: the offset at
/// which the window shows the screendump `guest` (the menu bar above it,
/// and any letterbox), searched over the first `max_y` rows; pixels of
/// `guest` inside a rectangle of `skip` (where video may show) are not
/// compared.
pub fn find_offset(
    shot: &Image,
    guest: &Image,
    max_y: usize,
    skip: &[Rect],
) -> Option<(usize, usize)> {
    let x0 = shot.width.saturating_sub(guest.width) / 2;
    // Every third row with something drawn on it (rows all of one colour
    // match anywhere).
    let rows: Vec<usize> = (0..guest.height)
        .step_by(3)
        .filter(|&gy| (0..guest.width).any(|gx| guest.rgb(gx, gy) != guest.rgb(0, gy)))
        .collect();
    if rows.is_empty() || shot.height < guest.height {
        return None;
    }
    let skipped = |gx: usize, gy: usize| skip.iter().any(|&r| inside(r, int(gx), int(gy), 0));
    (0..max_y.min(shot.height - guest.height + 1)).find_map(|y0| {
        let same = rows.iter().all(|&gy| {
            (0..guest.width)
                .step_by(2)
                .all(|gx| skipped(gx, gy) || shot.rgb(x0 + gx, y0 + gy) == guest.rgb(gx, gy))
        });
        same.then_some((x0, y0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_guest_under_a_menu_bar_skipping_video() {
        let guest = Image::from_fn(8, 6, |x, y| u32::try_from(x * 16 + y).unwrap());
        // 3 rows of menu, then the guest, with "video" over (2..4, 0..6).
        let shot = Image::from_fn(8, 9, |x, y| match y {
            0..3 => 0xffffff,
            _ if (2..4).contains(&x) => 0x00ff00,
            _ => guest.pixels[(y - 3) * 8 + x],
        });
        assert_eq!(find_offset(&shot, &guest, 5, &[]), None);
        assert_eq!(find_offset(&shot, &guest, 5, &[(2, 0, 2, 6)]), Some((0, 3)));
    }

    #[test]
    fn rectangles_and_colours() {
        let r = (10, 10, 5, 5);
        assert!(inside(r, 10, 14, 0) && !inside(r, 15, 10, 0));
        assert!(near_edge(r, 9, 12, 2) && !near_edge(r, 12, 12, 2));
        assert!(close((0, 255, 0), (8, 247, 0)) && !close((0, 255, 0), (9, 255, 0)));
        assert!(within((20, 230, 10), (0, 255, 0), 25));
        let img = Image::from_fn(4, 4, |x, y| u32::try_from(x + 4 * y).unwrap());
        assert_eq!(crop(&img, 1, 2, 2, 1).pixels, [9, 10]);
        assert_eq!(at(&img, -1, 0), (0, 0, 0));
    }
}

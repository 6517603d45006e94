//! The desktop the test guest draws for the viewer's VM test (issue 18):
//! what a guest with a video player shows, reduced to what the test can
//! check pixel by pixel. A pattern of 64-pixel tiles (so that every row
//! has something drawn, and the desktop's place in the viewer's window is
//! found without doubt), the player's placeholder where the video goes,
//! painted in the key colour (the player asks for the colour key), and a
//! control bar of another colour inside it, which must stay visible over
//! the video.
//!
//! The picture is made here, once, in the framebuffer's pixel format
//! (BGRx), and carried in the guest image; the guest's init writes it to
//! `/dev/fb0` (`redir.desktop=` on the kernel command line, see
//! [`guest_image::INIT`](crate::guest_image::INIT)). The test then knows
//! every pixel the guest shows, and checks QEMU's `screendump` against it
//! before it looks at the viewer.

use test_support::screen::{Rect, inside};

/// The guest display's size (the kernel's `video=` mode).
pub(crate) const SIZE: (usize, usize) = (800, 600);

/// Where the video goes: the player's geometry and its placeholder.
pub(crate) const DEST: Rect = (160, 128, 320, 240);

/// The player's control bar, inside [`DEST`].
pub(crate) const BAR: Rect = (192, 320, 256, 32);

/// The bar's colour: amber, neither the key nor near the clip's green.
pub(crate) const BAR_RGB: (u8, u8, u8) = (255, 200, 0);

/// The key colour the placeholder is painted in (spec 7.14).
pub(crate) const KEY_RGB: (u8, u8, u8) = {
    let [_, r, g, b] = mediaredir_proto::control::COLOR_KEY_RGB.to_be_bytes();
    (r, g, b)
};

/// The tiles' colours, none near the key, the clip's green or the bar.
const TILES: [[(u8, u8, u8); 2]; 2] = [
    [(0, 64, 128), (200, 200, 200)],
    [(128, 32, 0), (16, 16, 16)],
];

/// The kernel's `video=` mode for [`SIZE`].
pub(crate) fn video_mode() -> String {
    format!("{}x{}", SIZE.0, SIZE.1)
}

/// The colour the guest shows at (`x`, `y`).
pub(crate) fn rgb(x: i64, y: i64) -> (u8, u8, u8) {
    if inside(BAR, x, y, 0) {
        BAR_RGB
    } else if inside(DEST, x, y, 0) {
        KEY_RGB
    } else {
        TILES[usize::from((y / 64) % 2 == 1)][usize::from((x / 64) % 2 == 1)]
    }
}

/// The whole picture, row by row, 4 bytes a pixel (B, G, R, 0), as the
/// framebuffer takes it.
pub(crate) fn bgrx() -> Vec<u8> {
    let (w, h) = (SIZE.0 as i64, SIZE.1 as i64);
    let mut out = Vec::with_capacity(SIZE.0 * SIZE.1 * 4);
    for y in 0..h {
        for x in 0..w {
            let (r, g, b) = rgb(x, y);
            out.extend([b, g, r, 0]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_is_inside_the_placeholder_and_both_on_screen() {
        let (w, h) = (SIZE.0 as i64, SIZE.1 as i64);
        assert!(DEST.0 + DEST.2 <= w && DEST.1 + DEST.3 <= h);
        assert!(inside(DEST, BAR.0, BAR.1, 0));
        assert!(inside(DEST, BAR.0 + BAR.2 - 1, BAR.1 + BAR.3 - 1, 0));
        assert_eq!(KEY_RGB, (255, 0, 255));
    }

    #[test]
    fn picture_is_bgrx() {
        let p = bgrx();
        assert_eq!(p.len(), SIZE.0 * SIZE.1 * 4);
        let at = |x: usize, y: usize| {
            let i = (y * SIZE.0 + x) * 4;
            (p[i + 2], p[i + 1], p[i])
        };
        assert_eq!(at(0, 0), TILES[0][0]);
        assert_eq!(at(64, 64), TILES[1][1]);
        assert_eq!(at(170, 130), KEY_RGB);
        assert_eq!(at(200, 330), BAR_RGB);
    }
}

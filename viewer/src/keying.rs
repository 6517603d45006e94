//! The colour key: video shows only where the guest's desktop shows the
//! key colour, so that what the guest draws over its own video (a player's
//! controls, subtitles, menus, a window partly covering it) stays visible,
//! as with the colour-key overlays of Xv.
//!
//! A guest player that sets `COLORKEY` in its geometry paints `dest` in
//! [`KEY`] (magenta, R = B = 255, G = 0). A desktop pixel `P` there is
//! read as the key seen through a neutral (grey) overlay of opacity `1 - k`:
//! an opaque control (k = 0), a 50 % black bar (`P` = K / 2, k = 1/2), the
//! anti-aliased edge of white or black text (between the key and the text
//! colour). For such a pixel `P = (1 - k) F + k K` with `F` grey, so
//! `min(R, B) - G = 255 k`: the key's share is read off the pixel itself.
//! The viewer then replaces that share of key by the same share of video:
//! `out = P + k (V - K)`, which is `(1 - k) F + k V`: the 50 % black bar
//! shows the video darkened, a text edge blends into the video, and no
//! key colour is left in either.
//!
//! Tolerances, so that the key survives Spice's image codecs (lossless by
//! default; chroma noise under JPEG): `k` is 0 below [`KEY_FLOOR`] and 1
//! above `255 - KEY_FLOOR`, exact between; and it fades to 0 as `R` and
//! `B` differ by more than [`RB_NOISE`], up to [`RB_TOLERANCE`] (a coloured
//! guest pixel, not a tinted key). A guest pixel that is itself dark magenta inside `dest`
//! shows video darkened: the price of keying, which the guest avoids by not
//! drawing that colour over its own video.

/// The key colour, as (R, G, B): magenta, the spec's
/// [`COLOR_KEY_RGB`](mediaredir_proto::control::COLOR_KEY_RGB).
pub const KEY: [u8; 3] = {
    let [_, r, g, b] = mediaredir_proto::control::COLOR_KEY_RGB.to_be_bytes();
    [r, g, b]
};

/// Key strengths (`min(R, B) - G`) at or below this are no key at all;
/// at or above `255 - KEY_FLOOR` they are the whole key.
pub const KEY_FLOOR: i32 = 16;

/// `R` and `B` may differ by this much in a key pixel (codec noise).
pub const RB_NOISE: i32 = 16;

/// `R` and `B` that differ by this much or more are a guest colour; in
/// between, the key's share fades out.
pub const RB_TOLERANCE: i32 = 48;

/// The key's share of a desktop pixel (given as B, G, R, the BGRx
/// order), 0..=256 in 1/256 steps.
pub fn key_share(b: u8, g: u8, r: u8) -> u32 {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let strength = r.min(b) - g;
    let rb = (r - b).abs();
    if strength <= KEY_FLOOR || rb >= RB_TOLERANCE {
        return 0;
    }
    let k = if strength >= 255 - KEY_FLOOR {
        256
    } else {
        strength * 256 / 255
    };
    let fade = (RB_TOLERANCE - rb).min(RB_TOLERANCE - RB_NOISE);
    u32::try_from(k * fade / (RB_TOLERANCE - RB_NOISE)).unwrap_or(0)
}

/// Composites one row in place: `desktop` and `video` are BGRx pixels of
/// the same guest-display area; each video pixel `V` becomes
/// `P + k (V - K)` for the desktop pixel `P` under it.
pub fn blend_row(desktop: &[u8], video: &mut [u8]) {
    let key_bgr = [KEY[2], KEY[1], KEY[0]];
    for (p, v) in desktop.chunks_exact(4).zip(video.chunks_exact_mut(4)) {
        let k = key_share(p[0], p[1], p[2]) as i32;
        if k == 0 {
            v.copy_from_slice(p);
            continue;
        }
        for c in 0..3 {
            let delta = (i32::from(v[c]) - i32::from(key_bgr[c])) * k / 256;
            v[c] = (i32::from(p[c]) + delta).clamp(0, 255) as u8;
        }
        v[3] = 0xff;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bgrx(r: u8, g: u8, b: u8) -> [u8; 4] {
        [b, g, r, 0xff]
    }

    fn blend(p: [u8; 4], v: [u8; 4]) -> [u8; 4] {
        let mut o = v;
        blend_row(&p, &mut o);
        o
    }

    fn close(a: [u8; 4], b: [u8; 4], tol: u8) -> bool {
        a[..3]
            .iter()
            .zip(&b[..3])
            .all(|(x, y)| x.abs_diff(*y) <= tol)
    }

    const GREEN: [u8; 4] = [0, 200, 0, 0xff];

    #[test]
    fn the_key_is_the_specs() {
        assert_eq!(KEY, [255, 0, 255]);
    }

    #[test]
    fn the_key_shows_the_video() {
        assert_eq!(blend(bgrx(255, 0, 255), GREEN), [0, 200, 0, 0xff]);
        // Codec noise around the key still counts as the key.
        assert!(close(blend(bgrx(250, 6, 247), GREEN), GREEN, 8));
    }

    #[test]
    fn guest_pixels_stay() {
        for p in [
            bgrx(0, 0, 0),
            bgrx(255, 255, 255),
            bgrx(128, 128, 128),
            bgrx(255, 0, 0),
            bgrx(0, 0, 255),
            bgrx(255, 128, 0),
            bgrx(255, 0, 100),
            bgrx(30, 20, 35),
        ] {
            assert_eq!(blend(p, GREEN)[..3], p[..3], "{p:?}");
        }
    }

    #[test]
    fn a_translucent_black_bar_darkens_the_video() {
        // 50 % black over the key: (128, 0, 128).
        let o = blend(bgrx(128, 0, 128), GREEN);
        assert!(close(o, [0, 100, 0, 0xff], 10), "{o:?}");
        // Never a tint of the key: red and blue stay near 0.
        assert!(o[0] < 10 && o[2] < 10, "{o:?}");
    }

    #[test]
    fn anti_aliased_text_edges_blend_without_fringe() {
        for a in [32u32, 64, 128, 192, 224] {
            // White text of coverage a/255 over the key.
            let mix = |t: u8, key: u8| {
                u8::try_from((u32::from(t) * a + u32::from(key) * (255 - a)) / 255).unwrap()
            };
            let p = bgrx(mix(255, 255), mix(255, 0), mix(255, 255));
            let o = blend(p, GREEN);
            let want = bgrx(mix(255, 0), mix(255, 200), mix(255, 0));
            assert!(close(o, want, 12), "coverage {a}: {o:?} want {want:?}");
            // Black text likewise.
            let p = bgrx(mix(0, 255), mix(0, 0), mix(0, 255));
            let o = blend(p, GREEN);
            let want = bgrx(mix(0, 0), mix(0, 200), mix(0, 0));
            assert!(close(o, want, 12), "coverage {a}: {o:?} want {want:?}");
        }
    }
}

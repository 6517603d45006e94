//! A HiDPI screen: with GDK's scale factor 2 (`GDK_SCALE=2`, as GTK sets
//! it on a 4K monitor) the viewer shows the guest at twice its pixels, and
//! a presentation's `dest` maps through the same factor: the video covers
//! exactly twice `dest` in screen pixels, at twice its coordinates.

use test_support::{Image, Xvfb};

use conformance_tests::desktop::Desktop;
use conformance_tests::rig::Rig;

use crate::support::*;

const TITLE: &str = "viewer-hidpi-test";

/// The guest's dest rectangle (x, y, w, h).
const DEST: (i64, i64, i64, i64) = (100, 60, 320, 240);

/// The first row, from the top, where the window's right edge shows the
/// firmware's black: the top of the guest display (above it, the menu bar).
fn display_top(shot: &Image) -> Option<i64> {
    let x = int(shot.width) - 8;
    (0..int(shot.height) - 20).find(|&y| (y..y + 20).all(|y| at(shot, x, y) == (0, 0, 0)))
}

/// The bounding box (x, y, w, h) of the green pixels of `shot`.
fn green_box(shot: &Image) -> Option<(i64, i64, i64, i64)> {
    let mut b: Option<(i64, i64, i64, i64)> = None;
    for y in 0..int(shot.height) {
        for x in 0..int(shot.width) {
            if green(at(shot, x, y)) {
                let (x0, y0, x1, y1) = b.unwrap_or((x, y, x, y));
                b = Some((x0.min(x), y0.min(y), x1.max(x), y1.max(y)));
            }
        }
    }
    b.map(|(x0, y0, x1, y1)| (x0, y0, x1 - x0 + 1, y1 - y0 + 1))
}

#[test]
fn on_a_hidpi_screen_the_video_takes_twice_the_pixels() {
    if !require_screenshot_tools("on_a_hidpi_screen_the_video_takes_twice_the_pixels") {
        return;
    }
    let rig = Rig::start("viewer-hidpi", &[]);
    let dir = rig.path("");
    let green_clip = clip(&dir, "green.mp4", "0x00ff00", 60);
    let xvfb = Xvfb::start(2000, 1200).expect("Xvfb starts");
    let mut desktop = Desktop::start(&dir);
    let guest = desktop.screendump();
    let media = format!("unix:{}", rig.uplink.display());
    let guard = start_viewer_with(
        &desktop.spice,
        &["--media", &media, "--title", TITLE, "--no-resize-guest"],
        &xvfb,
        &[("GDK_SCALE", "2")],
    );
    let viewer = Viewer::find(&xvfb, TITLE, guard);
    // At zoom 100 % the window fits the guest: twice its width in pixels.
    let (shot, fits) = viewer.wait(|s| s.width == 2 * guest.width && display_top(s).is_some());
    assert!(
        fits,
        "the window is {}x{} for a {}x{} guest at scale 2",
        shot.width, shot.height, guest.width, guest.height
    );
    let top = display_top(&shot).unwrap();

    let (broker, broker_socket) = rig.broker();
    let player = Player::start(
        &broker_socket,
        &green_clip,
        &format!("geometry={}:{}:{}:{}", DEST.0, DEST.1, DEST.2, DEST.3),
    );
    let want = (2 * DEST.0, top + 2 * DEST.1, 2 * DEST.2, 2 * DEST.3);
    let (shot, shown) = viewer.wait(|s| green(at(s, want.0 + 20, want.1 + 20)));
    assert!(
        shown,
        "no video at {want:?}: {:?}",
        at(&shot, want.0 + 20, want.1 + 20)
    );
    let seen = green_box(&shot).expect("green pixels");
    let off = [
        seen.0 - want.0,
        seen.1 - want.1,
        seen.2 - want.2,
        seen.3 - want.3,
    ];
    assert!(
        off.iter().all(|d| d.abs() <= 1),
        "the video covers {seen:?} on the screen, not twice dest {want:?}"
    );
    drop(player);
    drop(broker);
}

//! Several displays: QEMU with a second display device (its own Spice
//! display channel); the viewer opens a window for each, and each
//! presentation shows only in the window of its `display_id` (spec 7.14,
//! CLI-GEOM-2: never on another display's widget).

use test_support::{Image, Xvfb};

use conformance_tests::desktop::Desktop;
use conformance_tests::rig::Rig;

use crate::support::*;

const TITLE: &str = "viewer-displays-test";

/// Whether `shot` has a pixel `is` anywhere (every other row and column).
fn anywhere(shot: &Image, is: fn((u8, u8, u8)) -> bool) -> bool {
    (0..shot.height)
        .step_by(2)
        .any(|y| (0..shot.width).step_by(2).any(|x| is(shot.rgb(x, y))))
}

#[test]
fn each_presentation_shows_only_on_its_own_display() {
    if !require_screenshot_tools("each_presentation_shows_only_on_its_own_display") {
        return;
    }
    let rig = Rig::start("viewer-displays", &[]);
    let dir = rig.path("");
    let (green_clip, red_clip) = (
        clip(&dir, "green.mp4", "0x00ff00", 60),
        clip(&dir, "red.mp4", "0xff0000", 60),
    );
    let xvfb = Xvfb::start(2000, 1200).expect("Xvfb starts");
    let mut desktop = Desktop::with_displays(&dir, 2);
    let guest = desktop.screendump();
    let media = format!("unix:{}", rig.uplink.display());
    let guard = start_viewer(
        &desktop.spice,
        &["--media", &media, "--title", TITLE, "--no-resize-guest"],
        &xvfb,
    );
    let first = Viewer::find(&xvfb, TITLE, guard);
    let second = first.other(&format!("{TITLE} (display 2)"), 1000);
    let (shot, found) = first.wait(|s| find_offset(s, &guest, 100, &[]).is_some());
    assert!(found, "display 1's window never showed the firmware screen");
    let (ox, oy) = find_offset(&shot, &guest, 100, &[]).unwrap();
    // The second window has the same menu bar; its display is not scaled
    // (the window fits it), so it starts at the same offset.
    let in_first = |x: i64, y: i64| (int(ox) + x, int(oy) + y);

    let (broker, broker_socket) = rig.broker();
    let on_second = Player::start(
        &broker_socket,
        &green_clip,
        "geometry=40:40:200:150,display=1",
    );
    let on_first = Player::start(
        &broker_socket,
        &red_clip,
        "geometry=40:40:200:150,display=0",
    );
    let (shot, ok) = second.wait(|s| green(at(s, int(ox) + 60, int(oy) + 60)));
    assert!(
        ok,
        "no green video on display 2 at its dest: {:?}",
        at(&shot, int(ox) + 60, int(oy) + 60)
    );
    assert!(
        !anywhere(&shot, red),
        "display 0's video on display 2's window"
    );
    let (x, y) = in_first(60, 60);
    let (shot, ok) = first.wait(|s| red(at(s, x, y)));
    assert!(
        ok,
        "no red video on display 1 at its dest: {:?}",
        at(&shot, x, y)
    );
    assert!(
        !anywhere(&shot, green),
        "display 1's video on display 0's window"
    );
    // Moved to the other display: it leaves the first window for the
    // second.
    let mut on_first = on_first;
    on_first.command("geometry=300:40:200:150,display=1");
    let (shot, ok) = second.wait(|s| red(at(s, int(ox) + 320, int(oy) + 60)));
    assert!(
        ok,
        "the red video did not move to display 2: {:?}",
        at(&shot, int(ox) + 320, int(oy) + 60)
    );
    let (shot, gone) = first.wait(|s| !anywhere(s, red));
    assert!(
        gone,
        "the red video stayed on display 1: {:?}",
        at(&shot, x, y)
    );
    drop(on_first);
    drop(on_second);
    drop(broker);
}

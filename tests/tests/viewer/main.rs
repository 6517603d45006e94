//! The viewer shows redirected video inside the VM's desktop, in place
//! (issue 18; spec 7.14, CLI-GEOM-1, CLI-GEOM-2). Everything is real: QEMU
//! (built with Spice) shows its firmware screen on the standard VGA over
//! its own Spice server; the daemon, driven by the guest driver over
//! vhost-user (a broker in this process, `redir-play` players on it), sends
//! H.264 clips of one colour to the viewer's media connection; the viewer
//! runs on a private Xvfb and the test reads its window back with `xwd`.
//!
//! Asserted on screenshots of the viewer's window:
//! - inside `dest` minus a 50x50 square the clip list excludes, the clip's
//!   colour; the square and everything outside `dest` are the guest's
//!   screen as QEMU's own `screendump` shows it;
//! - at exactly half the guest's size the video is at half the
//!   coordinates and size;
//! - `VISIBLE=0` removes it; with the colour key it shows nowhere the
//!   desktop is not the key colour; a `dest` reaching beyond the guest
//!   display is cut at its edge (nothing in the letterbox beside it);
//! - two overlapping presentations stack by `z`, and a change of `z`
//!   restacks them;
//! - timing in media frames: a clip numbers its frames (a barcode); every
//!   screenshot whose frame is at least two after the one on screen when a
//!   geometry was sent shows the new place, never the old one;
//! - the media connection cut mid-stream (a relay the test controls): the
//!   desktop stays, and the video comes back once the network does;
//! - without `--media`, the media comes from the desktop's own Spice
//!   session when its server offers the media port (here the daemon's own
//!   Spice server plays the desktop's server); and with QEMU's own session
//!   carrying the port through its `chardev-relay` ([`session`]);
//! - on a HiDPI screen (GDK's scale factor 2) the guest and its video take
//!   twice the pixels ([`hidpi`]);
//! - with two display channels each presentation shows only in the window
//!   of its display, and moves with its `display_id` ([`displays`]).

mod displays;
mod hidpi;
mod session;
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conformance_tests::desktop::{Desktop, differing};
use conformance_tests::relay::Relay;
use conformance_tests::rig::{Rig, workspace_binary};
use support::*;
use test_support::{Image, Tool, Xvfb, require};

/// The guest's dest rectangle and the square the clip list cuts out.
const DEST: (i64, i64, i64, i64) = (100, 100, 320, 240);
const SQUARE: (i64, i64, i64, i64) = (200, 200, 50, 50);

/// Four clip rectangles covering DEST but SQUARE.
const CLIPS: &str =
    "clip=100:100:320:100,clip=100:250:320:90,clip=100:200:100:50,clip=250:200:170:50";

pub(crate) const TITLE: &str = "viewer-test";
#[test]
fn video_is_drawn_in_place_scaled_clipped_and_stacked() {
    if !require_screenshot_tools("video_is_drawn_in_place_scaled_clipped_and_stacked") {
        return;
    }
    let rig = Rig::start("viewer", &[]);
    let dir = rig.path("");
    let (green_clip, red_clip) = (
        clip(&dir, "green.mp4", "0x00ff00", 60),
        clip(&dir, "red.mp4", "0xff0000", 60),
    );
    let xvfb = Xvfb::start(2000, 1200).expect("Xvfb starts");
    let mut desktop = Desktop::start(&dir);
    let guest = desktop.screendump();
    let (gw, gh) = (guest.width, guest.height);

    let relay_path = dir.join("relay.sock");
    let relay = Relay::unix(&relay_path, &rig.uplink).expect("the relay starts");
    let guard = start_viewer(
        &desktop.spice,
        &[
            "--media",
            &format!("unix:{}", relay_path.display()),
            "--title",
            TITLE,
            "--no-resize-guest",
        ],
        &xvfb,
    );
    let viewer = Viewer::find(&xvfb, TITLE, guard);

    // The viewer sizes its window to the guest display (zoom 100 %): the
    // guest shows unscaled under the menu bar.
    let (shot, found) =
        viewer.wait(|s| s.width == gw && find_offset(s, &guest, 100, &[]).is_some());
    assert!(
        found,
        "the viewer never showed the guest's screen unscaled ({}x{})",
        shot.width, shot.height
    );
    let (ox, oy) = find_offset(&shot, &guest, 100, &[]).unwrap();
    assert_eq!(ox, 0);
    let menu = i64::try_from(oy).unwrap();
    assert!((10..=60).contains(&menu), "a menu bar of {menu} px?");
    let menu_u = u32::try_from(menu).unwrap();
    let unscaled = (
        u32::try_from(gw).unwrap(),
        u32::try_from(gh).unwrap() + menu_u,
    );

    let (broker, broker_socket) = rig.broker();
    let mut green_player = Player::start(
        &broker_socket,
        &green_clip,
        &format!("geometry=100:100:320:240,{CLIPS}"),
    );
    let to_window = |x: i64, y: i64| (int(ox) + x, int(oy) + y);
    let (shot, shown) = viewer.wait(|s| {
        let (x, y) = to_window(110, 110);
        green(at(s, x, y))
    });
    assert!(
        shown,
        "no green video at dest; pixel {:?}",
        shot.rgb(ox + 110, oy + 110)
    );
    // Compare with what QEMU shows at the same moment.
    let guest = desktop.screendump();
    assert_composited(&viewer.grab(), &guest, (ox, oy), DEST, Some(SQUARE), green);

    // Exactly half the guest's size: half the coordinates and size.
    viewer.resize(
        u32::try_from(gw / 2).unwrap(),
        u32::try_from(gh / 2).unwrap() + menu_u,
    );
    let half = |x: i64, y: i64| (x / 2, menu + y / 2);
    let (shot, ok) = viewer.wait(|s| {
        s.width == gw / 2 && {
            let (x, y) = half(110, 110);
            green(at(s, x, y))
        }
    });
    assert!(ok, "no video at half size ({}x{})", shot.width, shot.height);
    let half_dest = (50, 50, 160, 120);
    let half_square = (100, 100, 25, 25);
    for y in (0..int(gh) / 2).step_by(2) {
        for x in (0..int(gw) / 2).step_by(2) {
            if near_edge(half_dest, x, y, 2) || near_edge(half_square, x, y, 2) {
                continue;
            }
            let seen = at(&shot, x, menu + y);
            let want = inside(half_dest, x, y, 0) && !inside(half_square, x, y, 0);
            assert_eq!(green(seen), want, "half size: pixel ({x},{y}) is {seen:?}");
        }
    }

    // Back to scale 1; hide it.
    viewer.resize(unscaled.0, unscaled.1);
    green_player.command(&format!("geometry=100:100:320:240,hidden,{CLIPS}"));
    let (shot, gone) = viewer
        .wait(|s| !(0..s.height).any(|y| (0..s.width).step_by(4).any(|x| green(s.rgb(x, y)))));
    assert!(
        gone,
        "VISIBLE=0 left video on the screen: {:?}",
        shot.rgb(ox + 110, oy + 110)
    );

    // The colour key (CLI-GEOM-3): the desktop under dest shows no key
    // colour (the firmware's black and grey text), so a keyed video shows
    // nowhere and the desktop's own pixels stay, while pictures keep
    // coming (the next step shows the same video again without the key).
    green_player.command("geometry=100:100:320:240,colorkey");
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let s = viewer.grab();
        let guest = desktop.screendump();
        let keyed = crop(&s, ox, oy, gw, gh);
        assert!(
            !(0..keyed.height).any(|y| (0..keyed.width).step_by(3).any(|x| green(keyed.rgb(x, y)))),
            "a keyed video showed over pixels that are not the key"
        );
        assert!(
            differing(&guest, &keyed) <= gw * gh / 200,
            "the desktop under a keyed video changed"
        );
    }

    // A dest beyond the display's right and bottom edges, in a window
    // twice as wide (letterboxed left and right at scale 1): the video
    // ends at the display's edge.
    viewer.resize(
        u32::try_from(gw * 2).unwrap(),
        u32::try_from(gh).unwrap() + menu_u,
    );
    green_player.command(&format!("geometry={}:{}:400:400", gw - 100, gh - 100));
    let lx = gw / 2;
    let (shot, ok) = viewer.wait(|s| green(at(s, int(lx + gw) - 50, menu + int(gh) - 50)));
    assert!(
        ok,
        "no video at the display's corner: {:?}",
        at(&shot, int(lx + gw) - 50, menu + int(gh) - 50)
    );
    for y in (menu..int(shot.height)).step_by(3) {
        for x in (lx + gw + 2..shot.width).step_by(3) {
            assert!(
                !green(at(&shot, int(x), y)),
                "video beyond the display's edge at ({x},{y})"
            );
        }
    }

    // Two presentations overlapping: the higher z on top, then restacked.
    viewer.resize(unscaled.0, unscaled.1);
    green_player.command("geometry=100:100:200:150,z=1");
    let mut red_player = Player::start(&broker_socket, &red_clip, "geometry=200:150:200:150,z=0");
    let overlap = to_window(250, 200);
    let (shot, ok) = viewer
        .wait(|s| green(at(s, overlap.0, overlap.1)) && red(at(s, int(ox) + 350, int(oy) + 280)));
    assert!(
        ok,
        "z=1 green over z=0 red: overlap is {:?}",
        at(&shot, overlap.0, overlap.1)
    );
    red_player.command("geometry=200:150:200:150,z=2");
    let (shot, ok) = viewer.wait(|s| red(at(s, overlap.0, overlap.1)));
    assert!(
        ok,
        "z=2 red over z=1 green: overlap is {:?}",
        at(&shot, overlap.0, overlap.1)
    );

    // Timing, in media frames (issue 18): once a frame at least two after
    // the one on screen when the geometry was sent shows, it shows at the
    // new place; none shows at the old place after that.
    red_player.command("geometry=0:0:0:0,hidden");
    green_player.command("geometry=0:0:0:0,hidden");
    let (a, b) = ((40, 40, 320, 240), (360, 140, 320, 240));
    let in_window = |r: (i64, i64, i64, i64)| (int(ox) + r.0, int(oy) + r.1, r.2, r.3);
    let numbered = numbered_clip(&dir);
    let mut counted = Player::start(&broker_socket, &numbered, "geometry=40:40:320:240,z=5");
    let (shot, ok) = viewer.wait(|s| frame_number(s, in_window(a)).is_some_and(|n| n > 10));
    assert!(
        ok,
        "the numbered clip does not show at A: {:?}",
        frame_number(&shot, in_window(a))
    );
    for (from, to) in [(a, b), (b, a)] {
        let f0 =
            frame_number(&viewer.grab(), in_window(from)).expect("a frame number before the move");
        counted.command(&format!("geometry={}:{}:{}:{},z=5", to.0, to.1, to.2, to.3));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut moved = None;
        while Instant::now() < deadline {
            let s = viewer.grab();
            if let Some(n) = frame_number(&s, in_window(from)) {
                assert!(
                    n < f0 + 2,
                    "frame {n} (sent at {f0}) still at the old place"
                );
            }
            if let Some(n) = frame_number(&s, in_window(to)) {
                moved = Some(n);
                if n >= f0 + 2 {
                    break;
                }
            }
        }
        let n = moved.expect("the numbered clip never showed at its new place");
        assert!(
            n >= f0 + 2,
            "no frame after {f0} + 2 seen at the new place (last {n})"
        );
    }
    drop(counted);

    // The media connection drops mid-stream: the desktop stays; the
    // viewer reconnects once the network is back, the daemon replays the
    // geometry and the video shows again.
    green_player.command("geometry=100:100:200:150,z=1");
    red_player.command("geometry=200:150:200:150,z=2");
    drop(red_player);
    let (shot, ok) = viewer.wait(|s| !red(at(s, int(ox) + 350, int(oy) + 280)));
    assert!(
        ok,
        "the red presentation stayed after its player left: {:?}",
        at(&shot, int(ox) + 350, int(oy) + 280)
    );
    relay.cut();
    let desktop_only = |s: &Image| {
        !green(at(s, overlap.0, overlap.1))
            && differing(&guest, &crop(s, ox, oy, gw, gh)) <= gw * gh / 200
    };
    let (shot, ok) = viewer.wait(desktop_only);
    assert!(
        ok,
        "with the media cut the window must show the desktop alone: {:?}",
        at(&shot, overlap.0, overlap.1)
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        x11_alive(&viewer),
        "the viewer's window went away with the media connection"
    );
    relay.restore();
    let (shot, ok) = viewer.wait(|s| green(at(s, overlap.0, overlap.1)));
    assert!(
        ok,
        "the video did not come back after the media reconnected: {:?}",
        at(&shot, overlap.0, overlap.1)
    );

    drop(green_player);
    drop(broker);
}

#[test]
fn media_comes_from_the_desktops_own_session() {
    if !require(
        "media_comes_from_the_desktops_own_session",
        &[
            Tool {
                program: "Xvfb",
                package: "xvfb",
            },
            Tool {
                program: "ffmpeg",
                package: "ffmpeg",
            },
        ],
    ) {
        return;
    }
    let scratch = conformance_tests::scratch::Scratch::new("viewer-port");
    let spice = scratch.path("spice.sock");
    let vhost = scratch.path("vhost.sock");
    let options = format!(
        "spice:unix=on,addr={},disable-ticketing=on",
        spice.display()
    );
    let _daemon = conformance_tests::daemon::DaemonProcess::start(
        &conformance_tests::rig::daemon_binary(),
        &vhost,
        &["--uplink", &options],
    );
    let green_clip = clip(scratch.dir(), "green.mp4", "0x00ff00", 3);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let _viewer = start_viewer(&spice, &["--title", "viewer-port-test"], &xvfb);
    // redir-play waits for a client (the viewer, over the session's port)
    // and plays the clip to its end: every stream reaches the client's EOS.
    let status = Command::new(workspace_binary("REDIR_PLAY", "redir-play", "redir-play"))
        .arg("--vhost-user")
        .arg(&vhost)
        .args(["--at", "0:geometry=0:0:320:240", "--wait-client", "20"])
        .arg(&green_clip)
        .stdin(Stdio::null())
        .status()
        .expect("run redir-play");
    assert!(
        status.success(),
        "redir-play through the session's media port: {status}"
    );
}

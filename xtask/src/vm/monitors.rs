//! The viewer with two monitors in one Spice display channel (issue 18
//! item 2): a Linux guest on QXL (`qxl-vga`, two outputs, the qxl DRM
//! driver) drives both connectors (`video=Virtual-2:...e` forces the
//! second on: without a Spice agent the client's monitors config never
//! reaches the guest, and qxl reports only the first as connected). The
//! channel's primary surface holds both monitors side by side; DRM's fbdev
//! emulation draws the desktop ([`guest_desktop`]) on the first only (the
//! driver copies the framebuffer to the first head's rectangle; the
//! second's stays black, in QEMU's screen as in remote-viewer), and the
//! driver's monitors config reaches the viewer through spice-server. The
//! viewer opens a window per monitor (display ids 0 and 1); the guest's
//! `redir-play` plays the green clip on display 1, then (a second boot) on
//! display 0, without the colour key (the second monitor shows no key
//! colour to key against; keying against a monitor's own pixels is the
//! viewer's unit test).
//!
//! Asserted on both windows (`xwd`, side by side on a private Xvfb) and
//! QEMU's `screendump` (the whole primary surface: the first monitor the
//! guest's desktop, the second black): the window of the display played on
//! shows the clip's green in `dest` (in that monitor's coordinates) and
//! QEMU's picture of its monitor everywhere else; the other window shows
//! its monitor as QEMU does, with nothing of the video.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use qemu_config::Vga;
use test_support::screen::{self, at, close, crop, find_offset, inside, int, near_edge, within};
use test_support::{Image, X11, pixel};

use super::viewer::{
    self, BOOT, DesktopVm, EDGE, GREEN, Rgb, TITLE, VIDEO, VIDEO_TOLERANCE, poll, save,
};
use super::{Guest, Rig};
use crate::guest_desktop::{self, DEST};
use crate::timing::format_duration;

/// The second monitor's window (the viewer's title for display 1).
fn second_title() -> String {
    format!("{TITLE} (display 2)")
}

/// The pixels of a window (its monitor at `offset` in it) that are
/// wrong: not `monitor` (QEMU's picture of that monitor), except inside
/// `dest` when `video` shows there, where they must be the clip's green;
/// how many were checked, and the wrong ones as (x, y, seen) in monitor
/// pixels.
fn wrong_pixels(
    shot: &Image,
    monitor: &Image,
    offset: (usize, usize),
    video: bool,
) -> (usize, Vec<(i64, i64, Rgb)>) {
    let (ox, oy) = (int(offset.0), int(offset.1));
    let mut checked = 0;
    let mut wrong = Vec::new();
    for gy in (0..int(monitor.height)).step_by(2) {
        for gx in (0..int(monitor.width)).step_by(2) {
            if video && near_edge(DEST, gx, gy, EDGE) {
                continue;
            }
            checked += 1;
            let seen = at(shot, ox + gx, oy + gy);
            let right = if video && inside(DEST, gx, gy, 0) {
                within(seen, GREEN, VIDEO_TOLERANCE)
            } else {
                close(seen, at(monitor, gx, gy))
            };
            if !right {
                wrong.push((gx, gy, seen));
            }
        }
    }
    (checked, wrong)
}

/// The test; see the module documentation.
pub(super) fn test(rig: &Rig) -> Result<()> {
    for display in [1, 0] {
        play_on(rig, display)?;
    }
    Ok(())
}

/// One boot: the clip on `display`.
fn play_on(rig: &Rig, display: usize) -> Result<()> {
    let t0 = Instant::now();
    let (gw, gh) = guest_desktop::SIZE;
    let (w32, h32) = (u32::try_from(gw)?, u32::try_from(gh)?);
    let mut vm = DesktopVm::start(rig, "xtask-vm-monitors", (2 * w32 + 100, h32 + 100))?;
    vm.machine.vga = Some(Vga::Qxl { outputs: 2 });
    let (x, y, w, h) = DEST;
    let mode = guest_desktop::video_mode();
    let words = [
        "redir.play=green.webm".to_owned(),
        format!("redir.desktop={x}:{y}:{w}:{h},display={display}"),
        format!("video=Virtual-1:{mode}"),
        format!("video=Virtual-2:{mode}e"),
        "vt.global_cursor_default=0".to_owned(),
    ];
    let mut guest = Guest::boot_with(&rig.qemu, &rig.image, &vm.machine, &words)?;
    let _viewer = vm.start_viewer(rig)?;
    let xvfb = &vm.xvfb;
    guest.wait_line("REDIR-DESKTOP", BOOT)?;

    let x11 = X11::connect(&xvfb.display()).context("connecting to Xvfb")?;
    let second_title = second_title();
    let windows = poll(Duration::from_secs(20), || {
        Ok(x11.find(TITLE)?.zip(x11.find(&second_title)?))
    })?
    .with_context(|| {
        format!("no two viewer windows titled {TITLE:?} and {second_title:?}: one monitor only?")
    })?;
    let (first, second) = windows;
    x11.move_to(second, i32::try_from(gw)? + 50, 0)
        .context("moving the second window")?;
    let grab = |window| screen::grab(&xvfb.display(), window).context("xwd reads a window");
    let desktop = Image::from_fn(gw, gh, |x, y| pixel(guest_desktop::rgb(int(x), int(y))));

    // The first window: the first monitor, the guest's desktop.
    let mut shot1 = grab(first)?;
    let offset = poll(Duration::from_secs(10), || {
        shot1 = grab(first)?;
        Ok(find_offset(&shot1, &desktop, 100, &[DEST]))
    })?;
    let Some(offset) = offset else {
        bail!(
            "the first monitor's window never showed the guest's desktop; {}",
            save(&[("monitor-1", &shot1), ("monitor-2", &grab(second)?)])
        );
    };
    let shots = [&shot1, &grab(second)?];
    if (shots[1].width, shots[1].height) != (shots[0].width, shots[0].height) {
        bail!(
            "the windows differ in size: {}x{} and {}x{}; {}",
            shots[0].width,
            shots[0].height,
            shots[1].width,
            shots[1].height,
            save(&[("monitor-1", shots[0]), ("monitor-2", shots[1])])
        );
    }
    let windows = [first, second];
    // The clip's green in dest, in the window of `display`.
    let (px, py) = viewer::video_point();
    let mut shot = grab(windows[display])?;
    let shown = poll(VIDEO, || {
        shot = grab(windows[display])?;
        let seen = at(&shot, int(offset.0) + px, int(offset.1) + py);
        Ok(within(seen, GREEN, VIDEO_TOLERANCE).then_some(()))
    })?;
    if shown.is_none() {
        bail!(
            "the window of display {display} never showed the clip's green at ({px},{py}) of \
             its monitor within {VIDEO:?}; {}",
            save(&[("viewer", &shot)])
        );
    }

    // Both windows and QEMU's screen at the same moment.
    let mut qmp = viewer::connect_qmp(&vm.qmp)?;
    let dump = qmp.screendump(&vm.dir.path().join("screendump.ppm"))?;
    let shots = [grab(first)?, grab(second)?];
    let pictures = || {
        save(&[
            ("monitor-1", &shots[0]),
            ("monitor-2", &shots[1]),
            ("screendump", &dump),
        ])
    };
    if (dump.width, dump.height) != (2 * gw, gh) {
        bail!(
            "QEMU's screen is {}x{}, not two {gw}x{gh} monitors side by side; {}",
            dump.width,
            dump.height,
            pictures()
        );
    }
    let monitors = [crop(&dump, 0, 0, gw, gh), crop(&dump, gw, 0, gw, gh)];
    let (_, guest_changed) = wrong_pixels(&monitors[0], &desktop, (0, 0), false);
    let mut report = Vec::new();
    for (m, (shot, monitor)) in shots.iter().zip(&monitors).enumerate() {
        let video = m == display;
        let (checked, wrong) = wrong_pixels(shot, monitor, offset, video);
        if !wrong.is_empty() {
            bail!(
                "window {} (display {m}, {}): of {checked} pixels checked, {} are not {} \
                 (e.g. (x, y, window) {:?}); {}",
                m + 1,
                if video { "played on" } else { "not played on" },
                wrong.len(),
                if video {
                    "the clip's green in dest and QEMU's picture of the monitor outside"
                } else {
                    "QEMU's picture of the monitor"
                },
                &wrong[..wrong.len().min(4)],
                pictures()
            );
        }
        report.push(checked);
    }
    if !guest_changed.is_empty() {
        bail!(
            "QEMU's first monitor is not the desktop the guest drew ({} pixels differ); {}",
            guest_changed.len(),
            pictures()
        );
    }
    println!(
        "vm: PASS viewer with two monitors in one display channel, the clip on display \
         {display}: a window each, {} and {} pixels as expected (the clip's green in dest only \
         in display {display}'s window, QEMU's picture of each monitor everywhere else) in {}",
        report[0],
        report[1],
        format_duration(t0.elapsed())
    );
    Ok(())
}

//! The viewer over a real guest (issue 18 item 6): the VM test's Debian
//! guest shows a desktop on QEMU's standard VGA (the bochs DRM driver's
//! framebuffer): a pattern, a video player's placeholder in the key colour
//! and the player's control bar inside it ([`guest_desktop`]). Its
//! `redir-play` plays a solid green clip there with the colour key, through
//! the device to the daemon; the viewer, given one URI (QEMU's own Spice
//! server), shows the guest's desktop and takes the media from the same
//! session: QEMU relays the session's media port to the daemon's Unix
//! uplink (`chardev-relay`, patch 0004, issue 19). On a private Xvfb.
//!
//! Asserted, on the viewer's window (`xwd`) and QEMU's `screendump` taken
//! together: QEMU shows exactly the desktop the guest drew (the video is
//! never in the guest's framebuffer); in the window, the clip's green
//! inside the placeholder, the bar's own colour over the video, and
//! QEMU's picture everywhere else. Then a click (XTEST) in the middle of
//! the video reaches the guest: its PS/2 mouse reports the left button
//! (evdev), which it prints on the serial console. The viewer takes a
//! Spice session in server mouse mode (the guest has no absolute pointer),
//! where spice-gtk, like remote-viewer, spends the first click on grabbing
//! the pointer: the test clicks a second time if the first did not reach
//! the guest, and says which one did.
//!
//! What the test saw is saved under `target/vm-viewer/` when it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mediaredir_proto::wire::SPICE_PORT_NAME;
use qemu_config::{MediaRelay, QemuCommand, SpiceListen, SpiceServer};
use test_support::screen::{self, at, close, find_offset, inside, int, near_edge, within};
use test_support::{ChildGuard, Image, Qmp, TempDir, X11, Xvfb};

use super::{Guest, Rig};
use crate::guest_desktop::{self, BAR, BAR_RGB, DEST};
use crate::process;
use crate::tempdir;
use crate::timing::format_duration;

/// The viewer's window title (how the test finds it).
pub(super) const TITLE: &str = "vhost-device-media vm viewer test";

/// The clip's colour (`green.webm`).
pub(super) const GREEN: Rgb = (0, 255, 0);

/// How far a video pixel may be from [`GREEN`] in each channel: VP9's
/// 4:2:0 and the conversion back to RGB round a little.
pub(super) const VIDEO_TOLERANCE: u8 = 24;

/// How long the guest may take to boot and draw its desktop.
pub(super) const BOOT: Duration = Duration::from_secs(60);

/// How long the video may take to show once the desktop is drawn.
pub(super) const VIDEO: Duration = Duration::from_secs(40);

/// How long a click may take to reach the guest's console: the first
/// (which spice-gtk may take for its pointer grab), the second.
const CLICKS: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(5)];

/// Pixels this close to an edge of the placeholder or the bar are not
/// checked (the video's scaling filter may blend across an edge).
pub(super) const EDGE: i64 = 2;

/// Where the failed test's pictures go.
fn evidence_dir() -> PathBuf {
    crate::workspace_root().join("target/vm-viewer")
}

/// Saves `pictures` as PPM files under [`evidence_dir`]; says where.
pub(super) fn save(pictures: &[(&str, &Image)]) -> String {
    let dir = evidence_dir();
    let saved = std::fs::create_dir_all(&dir).and_then(|()| {
        for (name, image) in pictures {
            std::fs::write(dir.join(format!("{name}.ppm")), image.to_ppm())?;
        }
        Ok(())
    });
    match saved {
        Ok(()) => format!(
            "saved {} in {}",
            pictures
                .iter()
                .map(|(n, _)| format!("{n}.ppm"))
                .collect::<Vec<_>>()
                .join(", "),
            dir.display()
        ),
        Err(e) => format!("could not save the pictures in {}: {e}", dir.display()),
    }
}

/// How many pixels of `dump` are not the desktop the guest drew (all of
/// them when the size differs).
fn not_drawn(dump: &Image) -> usize {
    if (dump.width, dump.height) != guest_desktop::SIZE {
        return dump.pixels.len().max(1);
    }
    (0..int(dump.height))
        .flat_map(|y| (0..int(dump.width)).map(move |x| (x, y)))
        .filter(|&(x, y)| at(dump, x, y) != guest_desktop::rgb(x, y))
        .count()
}

/// A colour, (R, G, B).
pub(super) type Rgb = (u8, u8, u8);

/// The wrong pixels of one comparison of the window with QEMU's screen:
/// where in the guest display, and what the window shows there.
#[derive(Default)]
pub(super) struct Wrong {
    pub(super) checked: usize,
    pub(super) video: Vec<(i64, i64, Rgb)>,
    pub(super) bar: Vec<(i64, i64, Rgb)>,
    /// With what QEMU shows there.
    pub(super) desktop: Vec<(i64, i64, Rgb, Rgb)>,
}

/// Compares `shot` (the guest display at `offset` in it) with `dump`
/// pixel by pixel (every second one across and down).
pub(super) fn compare(shot: &Image, dump: &Image, offset: (usize, usize)) -> Wrong {
    let (ox, oy) = (int(offset.0), int(offset.1));
    let mut wrong = Wrong::default();
    for gy in (0..int(dump.height)).step_by(2) {
        for gx in (0..int(dump.width)).step_by(2) {
            if near_edge(DEST, gx, gy, EDGE) || near_edge(BAR, gx, gy, EDGE) {
                continue;
            }
            wrong.checked += 1;
            let seen = at(shot, ox + gx, oy + gy);
            if inside(BAR, gx, gy, 0) {
                if !close(seen, BAR_RGB) {
                    wrong.bar.push((gx, gy, seen));
                }
            } else if inside(DEST, gx, gy, 0) {
                if !within(seen, GREEN, VIDEO_TOLERANCE) {
                    wrong.video.push((gx, gy, seen));
                }
            } else if !close(seen, at(dump, gx, gy)) {
                wrong.desktop.push((gx, gy, seen, at(dump, gx, gy)));
            }
        }
    }
    wrong
}

/// A point of the video away from the bar: where the test looks for the
/// video and clicks.
pub(super) fn video_point() -> (i64, i64) {
    let point = (DEST.0 + DEST.2 / 2, DEST.1 + DEST.3 / 3);
    debug_assert!(inside(DEST, point.0, point.1, 8) && !inside(BAR, point.0, point.1, -8));
    point
}

/// Polls `what` every 100 ms until it returns `Some`, for at most `limit`.
pub(super) fn poll<T>(
    limit: Duration,
    mut what: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = what()? {
            return Ok(Some(v));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The test; see the module documentation.
pub(super) fn test(rig: &Rig) -> Result<()> {
    let t0 = Instant::now();
    let _ = std::fs::remove_dir_all(evidence_dir());
    let vm = DesktopVm::start(rig, "xtask-vm-viewer", (1024, 768))?;
    let (xvfb, qmp_path, path) = (&vm.xvfb, &vm.qmp, |name: &str| vm.dir.path().join(name));
    let (x, y, w, h) = DEST;
    let words = [
        "redir.play=green.webm".to_owned(),
        format!("redir.desktop={x}:{y}:{w}:{h},colorkey"),
        format!("video={}", guest_desktop::video_mode()),
        "vt.global_cursor_default=0".to_owned(),
    ];
    let mut guest = Guest::boot_with(&rig.qemu, &rig.image, &vm.machine, &words)?;
    let _viewer = vm.start_viewer(rig)?;

    guest.wait_line("REDIR-DESKTOP", BOOT)?;
    let mut qmp = connect_qmp(qmp_path)?;
    let dump_file = path("screendump.ppm");
    let mut dump = qmp.screendump(&dump_file)?;
    // The framebuffer reaches the display when DRM's fbdev emulation
    // flushes it, a moment after the write.
    let drawn = poll(Duration::from_secs(10), || {
        dump = qmp.screendump(&dump_file)?;
        Ok((not_drawn(&dump) == 0).then_some(()))
    })?;
    if drawn.is_none() {
        bail!(
            "QEMU's screen ({}x{}) is not the desktop the guest drew: {} pixels differ; {}",
            dump.width,
            dump.height,
            not_drawn(&dump),
            save(&[("screendump", &dump)])
        );
    }

    let x11 = X11::connect(&xvfb.display()).context("connecting to Xvfb")?;
    let window = poll(Duration::from_secs(20), || Ok(x11.find(TITLE)?))?
        .with_context(|| format!("no viewer window titled {TITLE:?}"))?;
    let grab = || screen::grab(&xvfb.display(), window).context("xwd reads the viewer's window");
    let (px, py) = video_point();
    let mut last = grab()?;
    let shown = poll(VIDEO, || {
        last = grab()?;
        Ok(find_offset(&last, &dump, 100, &[DEST]).filter(|&(ox, oy)| {
            within(
                at(&last, int(ox) + px, int(oy) + py),
                GREEN,
                VIDEO_TOLERANCE,
            )
        }))
    })?;
    let Some(offset) = shown else {
        let found = find_offset(&last, &dump, 100, &[DEST]);
        bail!(
            "the viewer never showed the clip's green at ({px},{py}) of the guest display within \
             {VIDEO:?} (the desktop {}; {}x{} window); {}",
            match found {
                Some((ox, oy)) => format!(
                    "shows at {ox},{oy}, the pixel there is {:?}",
                    at(&last, int(ox) + px, int(oy) + py)
                ),
                None => "does not show unscaled".to_owned(),
            },
            last.width,
            last.height,
            save(&[("viewer", &last), ("screendump", &dump)])
        );
    };

    // The window and QEMU's own screen at the same moment (the guest's
    // desktop does not change; the video plays on).
    let dump = qmp.screendump(&dump_file)?;
    let shot = grab()?;
    let wrong = compare(&shot, &dump, offset);
    let guest_changed = not_drawn(&dump);
    if !wrong.video.is_empty()
        || !wrong.bar.is_empty()
        || !wrong.desktop.is_empty()
        || guest_changed > 0
    {
        bail!(
            "of {} pixels checked: {} in the placeholder are not the clip's green {GREEN:?} \
             (e.g. {:?}), {} of the bar are not its colour {BAR_RGB:?} (it must show over the \
             video; e.g. {:?}), {} outside dest differ from QEMU's screendump (e.g. (x, y, \
             window, QEMU) {:?}); {} pixels of QEMU's screen are not what the guest drew; {}",
            wrong.checked,
            wrong.video.len(),
            &wrong.video[..wrong.video.len().min(4)],
            wrong.bar.len(),
            &wrong.bar[..wrong.bar.len().min(4)],
            wrong.desktop.len(),
            &wrong.desktop[..wrong.desktop.len().min(4)],
            guest_changed,
            save(&[("viewer", &shot), ("screendump", &dump)])
        );
    }
    println!(
        "vm: viewer: {} pixels as expected: green video in dest, the guest's bar over it, QEMU's \
         screen around it (desktop at {},{} in the window) after {}",
        wrong.checked,
        offset.0,
        offset.1,
        format_duration(t0.elapsed())
    );

    // A click in the middle of the video reaches the guest.
    let click = (
        i16::try_from(int(offset.0) + px).context("click x")?,
        i16::try_from(int(offset.1) + py).context("click y")?,
    );
    let mut reached = None;
    for (attempt, wait) in CLICKS.into_iter().enumerate() {
        x11.click(window, click.0, click.1).context("XTEST click")?;
        if let Ok(line) = guest.wait_line("REDIR-CLICK", wait) {
            reached = Some((attempt + 1, line));
            break;
        }
    }
    let Some((attempt, line)) = reached else {
        bail!(
            "two left clicks at ({px},{py}) on the video (window {},{}) never reached the guest: \
             no REDIR-CLICK on its console within {CLICKS:?} of them; {}",
            click.0,
            click.1,
            save(&[("viewer", &grab()?)])
        );
    };
    println!(
        "vm: PASS viewer over a real guest: the clip in the guest's placeholder, its control bar \
         over the video, the rest QEMU's screen; click {attempt} on the video reached the guest \
         ({}) in {}",
        line.trim(),
        format_duration(t0.elapsed())
    );
    Ok(())
}

/// QMP on `path` once QEMU has made the socket.
pub(super) fn connect_qmp(path: &Path) -> Result<Qmp> {
    let mut last = None;
    let qmp = poll(Duration::from_secs(20), || match Qmp::connect(path) {
        Ok(qmp) => Ok(Some(qmp)),
        Err(e) => {
            last = Some(e);
            Ok(None)
        }
    })?;
    qmp.with_context(|| format!("QMP at {}: {last:?}", path.display()))
}

/// What the viewer's VM tests start with, in a temporary directory: the
/// daemon with its media uplink, a private Xvfb, and the machine with
/// QEMU's Spice desktop (relaying the session's media port to the
/// daemon's uplink) and QMP, ready to boot.
pub(super) struct DesktopVm {
    /// The desktop's private X server.
    pub(super) xvfb: Xvfb,
    /// The machine (the standard VGA; a test may change it).
    pub(super) machine: QemuCommand,
    /// QEMU's QMP socket.
    pub(super) qmp: PathBuf,
    spice: PathBuf,
    _daemon: super::Daemon,
    /// The temporary directory (removed last).
    pub(super) dir: TempDir,
}

impl DesktopVm {
    /// Starts the daemon and Xvfb (`screen` pixels) in a new directory
    /// named after `prefix`.
    pub(super) fn start(rig: &Rig, prefix: &str, screen: (u32, u32)) -> Result<DesktopVm> {
        let dir = tempdir::new(prefix)?;
        let path = |name: &str| dir.path().join(name);
        let (vhost, media, spice, qmp) = (
            path("vhost.sock"),
            path("media.sock"),
            path("spice.sock"),
            path("qmp.sock"),
        );
        let daemon = super::Daemon::start_with(
            &rig.bin,
            &vhost,
            &["--uplink", &format!("unix:{}", media.display())],
            "daemon",
        )?;
        let xvfb = Xvfb::start(screen.0, screen.1)
            .context("starting Xvfb (`cargo xtask setup` installs xvfb)")?;
        let mut machine = Guest::machine(&rig.qemu, &vhost)
            .with_spice_desktop(SpiceServer::new(SpiceListen::Unix(spice.clone())));
        machine.qmp_socket = Some(qmp.clone());
        machine.media_relay = Some(MediaRelay::new(SPICE_PORT_NAME, &media));
        Ok(DesktopVm {
            xvfb,
            machine,
            qmp,
            spice,
            _daemon: daemon,
            dir,
        })
    }

    /// The viewer on the Xvfb with one URI: the desktop and the media
    /// from QEMU's Spice server.
    pub(super) fn start_viewer(&self, rig: &Rig) -> Result<ChildGuard> {
        let mut cmd = Command::new(rig.bin.join("mediaredir-viewer"));
        cmd.arg(format!("spice+unix://{}", self.spice.display()))
            .args(["--title", TITLE, "--no-resize-guest"])
            .env("DISPLAY", self.xvfb.display())
            .stdin(Stdio::null());
        println!("vm: $ {}", process::display(&cmd));
        ChildGuard::spawn(&mut cmd).context("starting mediaredir-viewer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::pixel;

    #[test]
    fn the_click_lands_on_video_not_on_the_bar() {
        let (x, y) = video_point();
        assert!(inside(DEST, x, y, 8));
        assert!(!inside(BAR, x, y, -8));
    }

    #[test]
    fn compare_sorts_wrong_pixels_by_region() {
        let (w, h) = guest_desktop::SIZE;
        let dump = Image::from_fn(w, h, |x, y| pixel(guest_desktop::rgb(int(x), int(y))));
        assert_eq!(not_drawn(&dump), 0);
        // Unkeyed: the window shows QEMU's screen as it is.
        let wrong = compare(&dump, &dump, (0, 0));
        assert!(wrong.bar.is_empty() && wrong.desktop.is_empty());
        assert!(!wrong.video.is_empty());
        // Keyed: green where the key was.
        let mut shot = dump.clone();
        for p in &mut shot.pixels {
            if *p == pixel(guest_desktop::KEY_RGB) {
                *p = pixel(GREEN);
            }
        }
        let wrong = compare(&shot, &dump, (0, 0));
        assert!(wrong.video.is_empty() && wrong.bar.is_empty() && wrong.desktop.is_empty());
        assert!(wrong.checked > 100_000);
    }
}

//! The viewer's cost (issue 18 item 8): CPU per redirected H.264 stream of
//! `mediaredir-viewer` (decode and composite into the VM's desktop) beside
//! the headless engine's (`media-client --headless`: decode only), as a
//! ratio of two measurements of one run, and the time from a geometry
//! change to the video at its new place on the screen.
//!
//! - Headless: the daemon with a Unix uplink, `media-client --headless
//!   --once` on it, `redir-play` over vhost-user. CPU of the client from
//!   the player's start (`/proc/PID/stat` once the client idles) to its exit
//!   (`wait4`).
//! - Viewer: a private Xvfb, QEMU's firmware screen as the VM's desktop
//!   (720x400, over Spice), the daemon as above, the viewer on both, and
//!   `redir-play` with the clip scaled into the whole desktop. CPU of the
//!   viewer (`/proc/PID/stat`) from the player's start to its end. The X
//!   server's own work (Xvfb draws in software) is not the viewer's.
//! - Latency: a second player on the same daemon and viewer, commands on
//!   its standard input, moves the video between two quarters of the
//!   desktop [`MOVES`] times; each move is timed from writing the command
//!   until a screenshot of the viewer's window (`xwd`) shows the video at
//!   the new place and the desktop at the old one. The figure includes
//!   that screenshot's own time: an upper bound.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use qemu_config::FirmwareDesktop;
use test_support::{ChildGuard, Image, Qmp, Xvfb};

use super::clips::Clip;
use super::measure;
use crate::demo::viewer::wait_desktop;
use crate::demo::wait_path;
use crate::process;
use crate::tempdir;

/// How many times the latency run moves the video.
pub(crate) const MOVES: usize = 5;

/// The viewer's window title (how `xwd` finds it).
const TITLE: &str = "vhost-device-media bench";

/// What the section measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ViewerBench {
    /// The clip's name.
    pub(crate) clip: &'static str,
    /// Media seconds of the CPU runs.
    pub(crate) seconds: f64,
    /// The guest desktop's size the video was scaled into.
    pub(crate) desktop: (usize, usize),
    /// CPU seconds of `media-client --headless` while the clip played.
    pub(crate) headless_cpu_s: f64,
    /// CPU seconds of the viewer while the clip played.
    pub(crate) viewer_cpu_s: f64,
    /// Geometry command to screen, one per move, milliseconds.
    pub(crate) latencies_ms: Vec<f64>,
    /// The screenshots' own times, milliseconds.
    pub(crate) screenshots_ms: Vec<f64>,
}

/// The median of `v` (the mean of the middle two for an even count; NaN
/// for none).
pub(crate) fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// Starts `cmd` under a guard (terminated and reaped when dropped), its
/// standard input from nowhere unless the caller set it.
fn spawn(cmd: &mut Command) -> Result<ChildGuard> {
    let line = process::display(cmd);
    println!("bench: $ {line}");
    ChildGuard::spawn(cmd).with_context(|| format!("cannot start `{line}`"))
}

/// The daemon with a vhost-user socket and a Unix uplink.
fn daemon(bin: &Path, vhost: &Path, media: &Path) -> Result<ChildGuard> {
    let guard = spawn(
        Command::new(bin.join("vhost-user-mediaredir"))
            .arg("--socket-path")
            .arg(vhost)
            .arg("--uplink")
            .arg(format!("unix:{}", media.display()))
            .stdin(Stdio::null()),
    )?;
    // The daemon binds its uplink before its vhost-user socket.
    wait_path(vhost, Duration::from_secs(20))?;
    Ok(guard)
}

/// Waits until `pid` idles (less than 20 ms of CPU in 300 ms): set up,
/// connected, waiting for a stream; at most 20 s.
fn settle(pid: u32, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = measure::process_cpu_s(pid)?;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = measure::process_cpu_s(pid)?;
        if now - last < 0.02 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} never went idle before the clip");
        }
        last = now;
    }
}

/// Waits for a guarded child to exit, at most `timeout`; fails unless
/// with 0.
fn wait_success(guard: &mut ChildGuard, what: &str, timeout: Duration) -> Result<()> {
    match guard.wait_timeout(timeout)? {
        Some(status) if status.success() => Ok(()),
        Some(status) => bail!("{what} failed ({status})"),
        None => bail!("{what} did not exit within {timeout:?}"),
    }
}

fn player(bin: &Path, vhost: &Path) -> Command {
    let mut cmd = Command::new(bin.join("redir-play"));
    cmd.arg("--vhost-user").arg(vhost);
    cmd
}

/// CPU seconds of `media-client --headless` while `file` plays.
fn headless(bin: &Path, dir: &Path, file: &Path, seconds: f64) -> Result<f64> {
    let (vhost, media) = (
        dir.join("headless-vhost.sock"),
        dir.join("headless-media.sock"),
    );
    let _daemon = daemon(bin, &vhost, &media)?;
    let client = spawn(
        Command::new(bin.join("media-client"))
            .arg("--connect")
            .arg(format!("unix:{}", media.display()))
            .args(["--headless", "--once", "--stats-interval", "0"])
            .stdin(Stdio::null()),
    )?;
    let pid = client.id();
    settle(pid, "media-client")?;
    let before = measure::process_cpu_s(pid)?;
    let mut play = spawn(player(bin, &vhost).arg(file).stdin(Stdio::null()))?;
    wait_success(&mut play, "redir-play", timeout(seconds))?;
    // `--once`: the client ends its connection when every stream has
    // ended, and exits; wait4 then gives its whole CPU, to the microsecond.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !measure::exited(pid) {
        if Instant::now() > deadline {
            bail!("media-client --once did not exit after the clip");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut child = client.into_inner();
    let (status, cpu) = measure::wait_usage(&mut child)?;
    if !status.success() {
        bail!("media-client failed ({status})");
    }
    Ok(cpu - before)
}

/// How long a clip of `seconds` may take to play.
fn timeout(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds * 3.0 + 60.0)
}

/// A rectangle of the guest desktop: x, y, width, height.
type Rect = (usize, usize, usize, usize);

/// The share of sample points of `rect` (guest coordinates, 6 px in from
/// its edges, every 6 px) where `shot` differs clearly from the desktop
/// `guest`, which the window shows at `offset`: about 1 where the video is
/// drawn (the clip's zone plate is nowhere near the firmware's black and
/// grey text for long), about 0 where the desktop shows.
fn video_share(shot: &Image, guest: &Image, offset: (usize, usize), rect: Rect) -> f64 {
    let (mut differ, mut all) = (0u32, 0u32);
    for y in (rect.1 + 6..(rect.1 + rect.3).saturating_sub(6)).step_by(6) {
        for x in (rect.0 + 6..(rect.0 + rect.2).saturating_sub(6)).step_by(6) {
            let (a, b) = (shot.rgb(offset.0 + x, offset.1 + y), guest.rgb(x, y));
            all += 1;
            if a.0.abs_diff(b.0) > 48 || a.1.abs_diff(b.1) > 48 || a.2.abs_diff(b.2) > 48 {
                differ += 1;
            }
        }
    }
    if all == 0 {
        0.0
    } else {
        f64::from(differ) / f64::from(all)
    }
}

/// Shown: most of the rectangle is video; gone: almost none of it is.
const SHOWN: f64 = 0.4;
const GONE: f64 = 0.1;

/// The viewer's window on the bench's X server, and the desktop in it.
struct Window {
    display: String,
    guest: Image,
}

impl Window {
    /// A screenshot of the window (`xwd`), and how long it took.
    fn grab(&self) -> Result<(Image, Duration)> {
        let start = Instant::now();
        let out = Command::new("xwd")
            .args(["-silent", "-display", &self.display, "-name", TITLE])
            .stderr(Stdio::null())
            .output()
            .context("running xwd (`cargo xtask setup` installs x11-apps)")?;
        if !out.status.success() {
            bail!("xwd found no window titled {TITLE:?} ({})", out.status);
        }
        let shot = Image::from_xwd(&out.stdout).context("xwd's image")?;
        Ok((shot, start.elapsed()))
    }

    /// Where the desktop lies in `shot`: centred across, under the menu
    /// bar (the window is sized to the desktop, at scale 1).
    fn offset(&self, shot: &Image) -> Option<(usize, usize)> {
        (shot.width >= self.guest.width && shot.height >= self.guest.height).then(|| {
            (
                (shot.width - self.guest.width) / 2,
                shot.height - self.guest.height,
            )
        })
    }

    /// The share of `rect` that shows video in `shot` (0 when the window
    /// is smaller than the desktop).
    fn share(&self, shot: &Image, rect: Rect) -> f64 {
        self.offset(shot)
            .map_or(0.0, |o| video_share(shot, &self.guest, o, rect))
    }

    fn whole(&self) -> Rect {
        (0, 0, self.guest.width, self.guest.height)
    }

    /// Screenshots until `ok` holds; fails after `secs` seconds.
    fn wait(&self, secs: u64, what: &str, ok: impl Fn(&Image) -> bool) -> Result<Image> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            match self.grab() {
                Ok((shot, _)) if ok(&shot) => return Ok(shot),
                _ if Instant::now() > deadline => {
                    bail!("the viewer's window never showed {what} within {secs} s")
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// Measures the section: the headless engine and the viewer playing
/// `file` (of `clip`), then `latency_file` for the geometry moves.
pub(crate) fn measure(
    clip: &Clip,
    file: &Path,
    latency_file: &Path,
    bin: &Path,
) -> Result<ViewerBench> {
    let started = Instant::now();
    let seconds = f64::from(clip.seconds);
    let dir = tempdir::new("xtask-bench-viewer")?;
    let headless_cpu_s = headless(bin, dir.path(), file, seconds)?;
    println!("bench: headless engine: {headless_cpu_s:.3} CPU s for {seconds} s");

    let qemu = crate::qemu::ensure()?;
    let xvfb = Xvfb::start(1280, 800).context("starting Xvfb (`cargo xtask setup`)")?;
    let (spice, qmp) = (dir.path().join("spice.sock"), dir.path().join("qmp.sock"));
    let _qemu = spawn(
        Command::new(&qemu.binary)
            .args(FirmwareDesktop::new(spice.clone(), qmp.clone()).args())
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    )?;
    let guest = wait_desktop(&qmp, &dir.path().join("screendump.ppm"))?;
    let (vhost, media) = (dir.path().join("vhost.sock"), dir.path().join("media.sock"));
    let _daemon = daemon(bin, &vhost, &media)?;
    let viewer = spawn(
        Command::new(bin.join("mediaredir-viewer"))
            .arg(format!("spice+unix://{}", spice.display()))
            .arg("--media")
            .arg(format!("unix:{}", media.display()))
            .args(["--title", TITLE])
            .env("DISPLAY", xvfb.display())
            .stdin(Stdio::null()),
    )?;
    let mut window = Window {
        display: xvfb.display(),
        guest,
    };
    // The window shows the desktop as QEMU does (a fresh screendump each
    // time: the firmware may have written more since); the last dump is
    // the reference the video is told apart from.
    let mut qmp = Qmp::connect(&qmp).context("QMP")?;
    let dump = dir.path().join("screendump.ppm");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        window.guest = qmp.screendump(&dump).context("QMP screendump")?;
        if let Ok((shot, _)) = window.grab()
            && window.offset(&shot).is_some()
            && window.share(&shot, window.whole()) < 0.02
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("the viewer's window never showed the VM's desktop within 30 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let window = window;
    let (gw, gh) = (window.guest.width, window.guest.height);
    let pid = viewer.id();
    settle(pid, "the viewer")?;

    // CPU: the clip scaled into the whole desktop.
    let before = measure::process_cpu_s(pid)?;
    let mut play = spawn(
        player(bin, &vhost)
            .arg("--at")
            .arg(format!("0:geometry=0:0:{gw}:{gh}"))
            .arg(file)
            .stdin(Stdio::null()),
    )?;
    // One look that the video is on the screen (twice a second at most:
    // the screenshots are the X server's work, but they share the CPUs).
    let mut seen = false;
    let deadline = Instant::now() + timeout(seconds);
    while play.try_wait()?.is_none() {
        if !seen && let Ok((shot, _)) = window.grab() {
            seen = window.share(&shot, window.whole()) > SHOWN;
        }
        if Instant::now() > deadline {
            bail!("redir-play did not exit within {:?}", timeout(seconds));
        }
        std::thread::sleep(Duration::from_millis(if seen { 20 } else { 500 }));
    }
    let viewer_cpu_s = measure::process_cpu_s(pid)? - before;
    wait_success(&mut play, "redir-play", Duration::ZERO)?;
    if !seen {
        bail!("the viewer never showed the video over its desktop");
    }
    println!("bench: viewer: {viewer_cpu_s:.3} CPU s for {seconds} s");

    // Latency: between two quarters of the desktop.
    let quarters: [Rect; 2] = [(0, 0, gw / 2, gh / 2), (gw / 2, gh / 2, gw / 2, gh / 2)];
    let geometry = |r: Rect| format!("geometry={}:{}:{}:{}", r.0, r.1, r.2, r.3);
    let mut play = spawn(
        player(bin, &vhost)
            .args(["--stdin", "--progress", "5"])
            .arg(latency_file)
            .stdin(Stdio::piped()),
    )?;
    let mut commands = play
        .child_mut()
        .stdin
        .take()
        .context("redir-play's stdin")?;
    writeln!(commands, "{}", geometry(quarters[0])).context("a command to redir-play")?;
    window.wait(30, "the video in its first place", |s| {
        window.share(s, quarters[0]) > SHOWN
    })?;
    let (mut latencies_ms, mut screenshots_ms) = (Vec::new(), Vec::new());
    for i in 0..MOVES {
        let (to, from) = (quarters[(i + 1) % 2], quarters[i % 2]);
        writeln!(commands, "{}", geometry(to)).context("a command to redir-play")?;
        let sent = Instant::now();
        loop {
            let (shot, took) = window.grab()?;
            screenshots_ms.push(took.as_secs_f64() * 1e3);
            if window.share(&shot, to) > SHOWN && window.share(&shot, from) < GONE {
                latencies_ms.push(sent.elapsed().as_secs_f64() * 1e3);
                break;
            }
            if sent.elapsed() > Duration::from_secs(10) {
                bail!(
                    "move {} of the video never reached the screen in 10 s",
                    i + 1
                );
            }
        }
    }
    writeln!(commands, "quit").context("a command to redir-play")?;
    drop(commands);
    wait_success(&mut play, "redir-play --stdin", Duration::from_secs(60))?;
    println!(
        "bench: geometry to screen: {:?} ms; the section took {:.0} s",
        latencies_ms.iter().map(|v| v.round()).collect::<Vec<_>>(),
        started.elapsed().as_secs_f64()
    );
    Ok(ViewerBench {
        clip: clip.name,
        seconds,
        desktop: (gw, gh),
        headless_cpu_s,
        viewer_cpu_s,
        latencies_ms,
        screenshots_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_video_is_found_where_it_differs_from_the_desktop() {
        // A black desktop with one grey line of "text".
        let mut guest = Image {
            width: 120,
            height: 60,
            pixels: vec![0; 120 * 60],
        };
        guest.pixels[10 * 120..11 * 120].fill(0xa0a0a0);
        // A window 20 px taller (the menu bar) whose left half shows video.
        let mut shot = Image {
            width: 120,
            height: 80,
            pixels: vec![0xeeeeee; 120 * 80],
        };
        for (row, line) in guest.pixels.chunks(120).enumerate() {
            let at = (row + 20) * 120;
            shot.pixels[at..at + 60].fill(0x00ff_8040);
            shot.pixels[at + 60..at + 120].copy_from_slice(&line[60..]);
        }
        let window = Window {
            display: String::new(),
            guest,
        };
        assert_eq!(window.offset(&shot), Some((0, 20)));
        assert!(window.share(&shot, (0, 0, 60, 60)) > 0.99);
        assert!(window.share(&shot, (60, 0, 60, 60)) < 0.01);
        let small = Image {
            width: 100,
            height: 80,
            pixels: vec![0; 100 * 80],
        };
        assert_eq!(window.share(&small, window.whole()), 0.0);
    }

    #[test]
    fn medians() {
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}

//! What the viewer's tests share: the clips they play (made by ffmpeg, one
//! numbering its frames), players on the broker that take commands, and
//! the viewer's windows; screenshots and pixels come from
//! `test_support::screen` (shared with the VM test over a real guest).

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use conformance_tests::rig::workspace_binary;
pub(crate) use test_support::screen::{self, at, close, crop, find_offset, inside, int, near_edge};
use test_support::{ChildGuard, Image, Tool, X11, Xvfb, require};

use crate::TITLE;

pub(crate) fn green(p: (u8, u8, u8)) -> bool {
    p.1 > 200 && p.0 < 60 && p.2 < 60
}

pub(crate) fn red(p: (u8, u8, u8)) -> bool {
    p.0 > 200 && p.1 < 60 && p.2 < 60
}

/// An H.264 clip in MP4, as ffmpeg writes it, from a lavfi `source` and
/// video `filters`.
pub(crate) fn ffmpeg_clip(out: &Path, source: &str, filters: Option<&str>) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        source,
    ]);
    if let Some(filters) = filters {
        cmd.args(["-vf", filters]);
    }
    let status = cmd
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg failed");
}

/// A solid-colour clip of `seconds`.
pub(crate) fn clip(dir: &Path, name: &str, colour: &str, seconds: u32) -> std::path::PathBuf {
    let out = dir.join(name);
    ffmpeg_clip(
        &out,
        &format!("color=c={colour}:s=320x240:r=25:d={seconds}"),
        None,
    );
    out
}

/// Bits of the frame number a numbered clip carries.
pub(crate) const BITS: u32 = 11;

/// A blue H.264 clip whose frames carry their number as a barcode: bit `i`
/// is a 20x20 cell at (8 + 24 i, 8), white for 1, blue for 0. At 10 frames
/// a second, so that two frames (the bound the timing check allows) are
/// 200 ms of media: the whole path from the player to the screen on a
/// loaded 2-CPU machine fits, and the check still fails for a viewer that
/// waits for anything but the next picture.
pub(crate) fn numbered_clip(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("numbered.mp4");
    let cells: Vec<String> = (0..BITS)
        .map(|i| {
            format!(
                "drawbox=x={}:y=8:w=20:h=20:color=white:t=fill:enable='eq(mod(floor(n/{}),2),1)'",
                8 + 24 * i,
                1u32 << i
            )
        })
        .collect();
    ffmpeg_clip(
        &out,
        "color=c=0x0000ff:s=320x240:r=10:d=60",
        Some(&cells.join(",")),
    );
    out
}

/// The frame number a numbered clip shows in `shot` with its 320x240
/// picture drawn at window rectangle `at` (x, y, w, h), if every cell
/// reads as white or blue there.
pub(crate) fn frame_number(shot: &Image, rect: (i64, i64, i64, i64)) -> Option<u32> {
    let mut n = 0;
    for i in 0..BITS {
        let (cx, cy) = (i64::from(18 + 24 * i), 18);
        let p = at(shot, rect.0 + cx * rect.2 / 320, rect.1 + cy * rect.3 / 240);
        let white = p.0 > 180 && p.1 > 180 && p.2 > 180;
        let blue = p.2 > 180 && p.0 < 80 && p.1 < 80;
        match (white, blue) {
            (true, _) => n |= 1 << i,
            (false, true) => {}
            _ => return None,
        }
    }
    Some(n)
}

/// A `redir-play` player on the broker, taking commands on stdin.
pub(crate) struct Player {
    stdin: ChildStdin,
    _guard: ChildGuard,
}

impl Player {
    pub(crate) fn start(broker: &Path, file: &Path, first: &str) -> Player {
        let mut cmd = Command::new(workspace_binary("REDIR_PLAY", "redir-play", "redir-play"));
        cmd.arg("--broker")
            .arg(broker)
            .args(["--stdin", "--progress", "5"])
            .arg(file)
            .stdin(Stdio::piped());
        let mut guard = ChildGuard::spawn(&mut cmd).expect("redir-play starts");
        let child: &mut Child = guard.child_mut();
        let stdin = child.stdin.take().expect("stdin is piped");
        let mut player = Player {
            stdin,
            _guard: guard,
        };
        player.command(first);
        player
    }

    pub(crate) fn command(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("redir-play takes a command");
    }
}

/// The viewer on `xvfb`, its desktop the Spice server on Unix socket
/// `spice`, with `args`.
pub(crate) fn start_viewer(spice: &Path, args: &[&str], xvfb: &Xvfb) -> ChildGuard {
    start_viewer_with(spice, args, xvfb, &[])
}

/// [`start_viewer`] with more environment (`GDK_SCALE`, ...).
pub(crate) fn start_viewer_with(
    spice: &Path,
    args: &[&str],
    xvfb: &Xvfb,
    env: &[(&str, &str)],
) -> ChildGuard {
    let bin = workspace_binary(
        "MEDIAREDIR_VIEWER",
        "mediaredir-viewer",
        "mediaredir-viewer",
    );
    ChildGuard::spawn(
        Command::new(bin)
            .arg(format!("spice+unix://{}", spice.display()))
            .args(args)
            .env("DISPLAY", xvfb.display())
            .envs(env.iter().copied())
            .stdin(Stdio::null()),
    )
    .expect("the viewer starts")
}

/// The viewer's window on the test's X server.
pub(crate) struct Viewer {
    /// The test's X connection.
    pub(crate) x11: X11,
    /// The viewer's top-level window.
    pub(crate) window: u32,
    /// The X display.
    pub(crate) display: String,
    /// The viewer process.
    pub(crate) _guard: ChildGuard,
}

impl Viewer {
    /// The window titled `title` of the viewer `guard` started on `xvfb`,
    /// once it is mapped (20 s at most).
    pub(crate) fn find(xvfb: &Xvfb, title: &str, guard: ChildGuard) -> Viewer {
        let x11 = X11::connect(&xvfb.display()).expect("X connection");
        let deadline = Instant::now() + Duration::from_secs(20);
        let window = loop {
            if let Some(w) = x11.find(title).expect("X query") {
                break w;
            }
            assert!(Instant::now() < deadline, "no viewer window titled {title}");
            std::thread::sleep(Duration::from_millis(100));
        };
        Viewer {
            x11,
            window,
            display: xvfb.display(),
            _guard: guard,
        }
    }

    /// Another window of the same viewer, titled `title` (20 s at most),
    /// moved to (`x`, 0) on the screen so that it does not cover the
    /// first (there is no window manager to place it).
    pub(crate) fn other(&self, title: &str, x: i32) -> Window {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(w) = self.x11.find(title).expect("X query") {
                self.x11.move_to(w, x, 0).expect("move a window");
                return Window {
                    id: w,
                    display: self.display.clone(),
                };
            }
            assert!(Instant::now() < deadline, "no viewer window titled {title}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The viewer's main window.
    fn main_window(&self) -> Window {
        Window {
            id: self.window,
            display: self.display.clone(),
        }
    }

    pub(crate) fn grab(&self) -> Image {
        self.main_window().grab()
    }

    /// Grabs until `ok` holds (10 s at most); the last grab and whether.
    pub(crate) fn wait(&self, ok: impl Fn(&Image) -> bool) -> (Image, bool) {
        self.main_window().wait(ok)
    }

    pub(crate) fn resize(&self, w: u32, h: u32) {
        self.x11.resize(self.window, w, h).expect("resize");
    }
}

/// A top-level window on the test's X server, read back with `xwd`.
pub(crate) struct Window {
    id: u32,
    display: String,
}

impl Window {
    pub(crate) fn grab(&self) -> Image {
        screen::grab(&self.display, self.id).expect("xwd reads the viewer's window")
    }

    /// Grabs until `ok` holds (10 s at most); the last grab and whether.
    pub(crate) fn wait(&self, ok: impl Fn(&Image) -> bool) -> (Image, bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let shot = self.grab();
            if ok(&shot) {
                return (shot, true);
            }
            if Instant::now() > deadline {
                return (shot, false);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub(crate) fn x11_alive(viewer: &Viewer) -> bool {
    viewer.x11.find(TITLE).ok().flatten() == Some(viewer.window)
}

/// Checks a screenshot of the viewer (the guest unscaled at `origin` in
/// the window) against QEMU's `guest` screendump: every other pixel of
/// `dest` but `hole` is video (`is_video`), the rest is the guest's screen
/// (edges excepted; the text cursor blinks: a few pixels may differ).
pub(crate) fn assert_composited(
    shot: &Image,
    guest: &Image,
    origin: (usize, usize),
    dest: (i64, i64, i64, i64),
    hole: Option<(i64, i64, i64, i64)>,
    is_video: impl Fn((u8, u8, u8)) -> bool,
) {
    let in_hole = |x, y, margin| hole.is_some_and(|h| inside(h, x, y, margin));
    let near_hole = |x, y| hole.is_some_and(|h| near_edge(h, x, y, 2));
    let (mut checked, mut wrong_video, mut wrong_desktop) = (0, Vec::new(), Vec::new());
    for gy in (0..int(guest.height)).step_by(2) {
        for gx in (0..int(guest.width)).step_by(2) {
            if near_edge(dest, gx, gy, 2) || near_hole(gx, gy) {
                continue;
            }
            let seen = at(shot, int(origin.0) + gx, int(origin.1) + gy);
            checked += 1;
            if inside(dest, gx, gy, 0) && !in_hole(gx, gy, 0) {
                if !is_video(seen) {
                    wrong_video.push((gx, gy, seen));
                }
            } else if !close(seen, at(guest, gx, gy)) {
                wrong_desktop.push((gx, gy, seen, at(guest, gx, gy)));
            }
        }
    }
    assert!(
        wrong_video.is_empty(),
        "{} of the video's pixels are wrong: {:?}",
        wrong_video.len(),
        &wrong_video[..wrong_video.len().min(8)]
    );
    assert!(
        wrong_desktop.len() <= checked / 200,
        "{} desktop pixels differ from QEMU's screendump: {:?}",
        wrong_desktop.len(),
        &wrong_desktop[..wrong_desktop.len().min(8)]
    );
}

/// Whether the programs the viewer's screenshot tests run are there (Xvfb,
/// xwd, ffmpeg): see [`require`] (under CI a missing one fails `test`).
pub(crate) fn require_screenshot_tools(test: &str) -> bool {
    require(
        test,
        &[
            Tool {
                program: "Xvfb",
                package: "xvfb",
            },
            Tool {
                program: "xwd",
                package: "x11-apps",
            },
            Tool {
                program: "ffmpeg",
                package: "ffmpeg",
            },
        ],
    )
}

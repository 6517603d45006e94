//! A VM desktop for the viewer's tests: the project's QEMU (built with
//! Spice by `cargo xtask qemu`) with the standard VGA and no disk, so that
//! the firmware draws a known, stable text screen (SeaBIOS's "No bootable
//! device", never retried), served by QEMU's own Spice server on a Unix
//! socket, with QMP for `screendump`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qemu_config::FirmwareDesktop;
use test_support::{ChildGuard, Image, Qmp};

/// The QEMU binary: `$MEDIAREDIR_QEMU` (`cargo xtask test` sets it), else
/// the newest build in the project's cache (`cargo xtask qemu`).
pub fn qemu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MEDIAREDIR_QEMU") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_default()
        .join("vhost-device-media");
    let newest = std::fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/qemu-system-x86_64"))
        .filter(|p| p.is_file())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok());
    newest.unwrap_or_else(|| {
        panic!(
            "no QEMU with Spice: set MEDIAREDIR_QEMU or run `cargo xtask qemu` (looked in {})",
            cache.display()
        )
    })
}

/// QEMU showing its firmware screen over Spice.
#[derive(Debug)]
pub struct Desktop {
    /// The Spice server's Unix socket.
    pub spice: PathBuf,
    qmp: Qmp,
    dumps: PathBuf,
    _qemu: ChildGuard,
}

impl Desktop {
    /// Starts QEMU in `dir` and waits until the firmware has drawn its
    /// last line ("No bootable device").
    pub fn start(dir: &Path) -> Desktop {
        Desktop::start_with(dir, |desktop| desktop)
    }

    /// [`Desktop::start`] with `displays` display devices (each its own
    /// Spice display channel; the firmware draws on the first).
    pub fn with_displays(dir: &Path, displays: u32) -> Desktop {
        Desktop::start_with(dir, |desktop| FirmwareDesktop {
            extra_displays: displays.saturating_sub(1),
            ..desktop
        })
    }

    /// [`Desktop::start`] with the command line changed by `configure`
    /// (more displays, a Spice password, the media port relayed to the
    /// daemon).
    pub fn start_with(
        dir: &Path,
        configure: impl FnOnce(FirmwareDesktop) -> FirmwareDesktop,
    ) -> Desktop {
        let spice = dir.join("spice.sock");
        let qmp_path = dir.join("qmp.sock");
        let firmware = configure(FirmwareDesktop::new(spice.clone(), qmp_path.clone()));
        let binary = qemu_binary();
        let mut qemu = ChildGuard::spawn(
            Command::new(&binary)
                .args(firmware.args())
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        )
        .expect("QEMU starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        let qmp = loop {
            match Qmp::connect(&qmp_path) {
                Ok(qmp) => break qmp,
                Err(e) if Instant::now() > deadline => panic!("QMP: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
            // A QEMU that refuses the command line (one without patch
            // 0004 has no `chardev-relay`) says why on stderr, above.
            if let Ok(Some(status)) = qemu.try_wait() {
                panic!("{} exited at start ({status})", binary.display());
            }
        };
        let mut desktop = Desktop {
            spice,
            qmp,
            dumps: dir.join("screendump.ppm"),
            _qemu: qemu,
        };
        // The text screen is drawn once the last boot attempt failed: it
        // then stays as it is (two dumps a second apart agree, but for the
        // blinking text cursor).
        let mut last: Option<Image> = None;
        loop {
            let now = desktop.screendump();
            let drawn = now.pixels.iter().filter(|&&p| p != now.pixels[0]).count();
            if drawn > 2000 && last.as_ref().is_some_and(|l| differing(l, &now) <= 64) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the firmware screen did not settle ({}x{}, {drawn} pixels drawn)",
                now.width,
                now.height
            );
            last = Some(now);
            std::thread::sleep(Duration::from_millis(1000));
        }
        desktop
    }

    /// What QEMU's display shows now.
    pub fn screendump(&mut self) -> Image {
        self.qmp.screendump(&self.dumps).expect("QMP screendump")
    }
}

/// How many pixels differ between two images of the same size (all of
/// them when the sizes differ).
pub fn differing(a: &Image, b: &Image) -> usize {
    if (a.width, a.height) != (b.width, b.height) {
        return a.pixels.len().max(b.pixels.len());
    }
    a.pixels
        .iter()
        .zip(&b.pixels)
        .filter(|(x, y)| x != y)
        .count()
}

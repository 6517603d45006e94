//! `cargo xtask fresh-check`: run a command of the project in a fresh Debian 12 root.
//!
//! Why: the project promises that `cargo xtask setup` then `cargo xtask
//! test` work on a fresh Debian 12 that has only the Rust toolchain (CI).
//! The machines it is developed on are not fresh: packages installed by
//! hand, caches under `~/.cache`, a warm `~/.cargo/registry` and `target/`
//! hide a missing package or step until CI fails. This task checks the
//! promise locally without a VM or a container engine:
//!
//! 1. base root: debootstrap makes a minimal bookworm once, cached outside
//!    the repository ([`base`]);
//! 2. copy: each run extracts a pristine copy into a new directory and
//!    brings in only the host settings needed to reach the network ([`host`]);
//! 3. clone: the project goes in as a `git clone` of HEAD, or with
//!    `--worktree` the working tree too ([`project`]);
//! 4. command: it runs chrooted in private mount and PID namespaces, with
//!    the host's Rust toolchain mounted read-only and a clean environment
//!    ([`namespace`], [`unshare`]); every mount and process goes away with
//!    it, and the root is removed afterwards (unless `--keep`).
//!
//! Each phase is timed; xtask exits with the command's status.

pub(crate) mod base;
mod host;
mod namespace;
mod project;
mod unshare;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::setup;
use crate::tempdir;
use crate::timing::{Outcome, Timings, format_duration};

pub(crate) use base::DEFAULT_MIRROR;

/// Name prefix of the per-run roots (in the temporary directory).
const ROOT_PREFIX: &str = "fresh-check-root";
/// Name prefix of the scratch directory debootstrap fills.
const BASE_PREFIX: &str = "fresh-check-base";
/// A root kept with `--keep` is renamed with this prefix, so that it is not
/// taken for the leftover of a crashed run.
const KEPT_PREFIX: &str = "fresh-check-kept";

/// Where the project is in the root.
const PROJECT_IN_ROOT: &str = "/root/vhost-device-media";

/// The command run when none is given.
pub(crate) const DEFAULT_COMMAND: &[&str] = &["cargo", "xtask", "test"];

/// What the host needs for this task.
const HOST_PACKAGES: &[&str] = &["debootstrap"];

/// The options of `fresh-check`.
#[derive(Debug)]
pub(crate) struct Options {
    /// The command (empty: [`DEFAULT_COMMAND`]).
    pub(crate) command: Vec<String>,
    /// Lay the working tree (uncommitted changes) over the clone.
    pub(crate) worktree: bool,
    /// Make the base root anew.
    pub(crate) rebuild_base: bool,
    /// Keep the root afterwards.
    pub(crate) keep: bool,
    /// The Debian mirror for debootstrap.
    pub(crate) mirror: String,
}

/// The command to run: the given one or the default.
pub(crate) fn command_or_default(command: &[String]) -> Vec<String> {
    if command.is_empty() {
        DEFAULT_COMMAND.iter().map(|w| w.to_string()).collect()
    } else {
        command.to_vec()
    }
}

/// Runs the check; returns the command's exit status as xtask's own.
pub(crate) fn run(opts: &Options) -> Result<ExitCode> {
    if !setup::is_root()? {
        bail!(
            "fresh-check runs as root only (debootstrap, mount and chroot need it); run it as root"
        );
    }
    setup::ensure_packages("fresh-check", HOST_PACKAGES)?;
    let toolchain = host::Toolchain::find()?;
    let workspace = std::env::current_dir().context("no current directory")?;
    remove_stale_roots();
    let command = command_or_default(&opts.command);
    let mut phases = Phases::default();

    let cache = base::Cache::locate()?;
    let stamp = base::stamp(&opts.mirror);
    let (phase, make) = if opts.rebuild_base || !cache.is_current(&stamp) {
        ("base root (debootstrap)", true)
    } else {
        ("base root (cached)", false)
    };
    phases.run(phase, || {
        if make {
            base::build(&cache, &opts.mirror, &stamp)
        } else {
            println!("fresh-check: base root cached in {}", cache.tar.display());
            Ok(())
        }
    })?;

    let root = Root::new()?;
    phases.run("copy", || {
        base::extract(&cache, root.path())?;
        for done in host::copy_settings(root.path())? {
            println!("fresh-check: {done}");
        }
        Ok(())
    })?;

    let dest = host::in_root(root.path(), PROJECT_IN_ROOT);
    phases.run("clone", || {
        let commit = project::clone_head(&workspace, &dest)?;
        let changes = project::uncommitted(&workspace)?;
        if opts.worktree {
            let (copied, removed) = project::overlay_worktree(&workspace, &dest)?;
            println!(
                "fresh-check: the project is HEAD {commit} with the working tree laid over it \
                 ({copied} files copied, {removed} removed; ignored files such as target/ left out)"
            );
        } else {
            println!(
                "fresh-check: the project is a clone of HEAD {commit}: uncommitted changes are \
                 NOT included ({changes} path(s) differ; --worktree includes them)"
            );
        }
        Ok(())
    })?;

    let steps = namespace::steps(&toolchain.rustup_home, &toolchain.cargo_bin);
    let env = host::environment(|name| std::env::var(name).ok());
    let inside = namespace::Inside {
        root: root.path(),
        steps: &steps,
        workdir: PROJECT_IN_ROOT,
        env: &env,
        command: &command,
    };
    let script = inside.script();
    println!("fresh-check: in private mount and PID namespaces:");
    for command in inside.commands() {
        println!("  {command}");
    }
    let started = Instant::now();
    let status = unshare::run(
        &unshare::unshare_argv(&script),
        &format!(
            "unshare ... chroot {} {}",
            root.path().display(),
            namespace::line(&command)
        ),
    )?;
    let code = unshare::exit_code(status);
    let outcome = if code == 0 {
        Outcome::Passed
    } else {
        Outcome::Failed
    };
    phases.record("command", started, outcome);

    let kept = if opts.keep {
        Some(root.keep()?)
    } else {
        phases.run("remove root", || {
            drop(root);
            Ok(())
        })?;
        None
    };
    println!("\nfresh-check: phases\n{}", phases.timings.table());
    if let Some(path) = kept {
        println!("fresh-check: root kept in {}", path.display());
    }
    if code == namespace::SETUP_FAILED {
        println!(
            "fresh-check: status {code}: preparing the root failed (see above), or the command exited with it"
        );
    }
    println!(
        "fresh-check: `{}` exit status: {code}",
        namespace::line(&command)
    );
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// The timed phases.
#[derive(Debug, Default)]
struct Phases {
    /// What has run so far.
    timings: Timings,
}

impl Phases {
    /// Runs one phase, prints and records its duration.
    fn run<T>(&mut self, name: &str, phase: impl FnOnce() -> Result<T>) -> Result<T> {
        println!("fresh-check: phase `{name}`");
        let started = Instant::now();
        let result = phase();
        let outcome = Outcome::of(&result);
        self.record(name, started, outcome);
        result
    }

    /// Records a phase that started at `started`.
    fn record(&mut self, name: &str, started: Instant, outcome: Outcome) {
        let took = started.elapsed();
        println!("fresh-check: phase `{name}` took {}", format_duration(took));
        self.timings.record(name, took, outcome);
    }
}

/// A per-run root in the temporary directory, removed on drop, but never
/// while something is mounted below it (so it holds the path, not a
/// `TempDir` that would remove it unchecked).
#[derive(Debug)]
struct Root {
    /// The directory; `None` once kept.
    dir: Option<PathBuf>,
}

impl Root {
    /// A new, empty root.
    fn new() -> Result<Self> {
        let dir = tempdir::new(ROOT_PREFIX)?.keep();
        println!("fresh-check: root {}", dir.display());
        Ok(Self { dir: Some(dir) })
    }

    /// The root directory.
    fn path(&self) -> &Path {
        self.dir.as_deref().expect("root used after keep")
    }

    /// Keeps the root: renamed so that no later run removes it.
    fn keep(mut self) -> Result<PathBuf> {
        let path = self.dir.take().expect("root kept twice");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(ROOT_PREFIX))
            .context("root name")?;
        let kept = path.with_file_name(format!("{KEPT_PREFIX}{name}"));
        std::fs::rename(&path, &kept).with_context(|| format!("renaming {}", path.display()))?;
        Ok(kept)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        // The mounts live in the command's namespace, never in this one; but
        // a bind mount of the toolchain below the root would make removing
        // the root delete the toolchain, so this is checked, not assumed.
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounts = unshare::mounts_under(&mountinfo, &dir);
        if mountinfo.is_empty() || !mounts.is_empty() {
            eprintln!(
                "fresh-check: NOT removing {}: mounts below it: {mounts:?}",
                dir.display()
            );
        } else {
            // Best effort: a leftover root is removed by a later run.
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// The PID in the name of a run's root or scratch directory, when the name
/// is one of a run (`<prefix>-<pid>-...`); kept roots are not.
fn run_pid(name: &str) -> Option<u32> {
    [ROOT_PREFIX, BASE_PREFIX]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix)?.strip_prefix('-'))
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse().ok())
}

/// Removes the roots of runs that died without cleaning up (xtask killed):
/// their process no longer exists. Their mounts died with them.
fn remove_stale_roots() {
    let tmp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(run_pid) else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        println!(
            "fresh-check: removing the leftover of a dead run: {}",
            entry.path().display()
        );
        // Dropping a `Root` removes it with the same mount check.
        drop(Root {
            dir: Some(entry.path()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_command_is_the_projects_test_command() {
        assert_eq!(command_or_default(&[]), ["cargo", "xtask", "test"]);
        let given = [
            "cargo".to_string(),
            "xtask".to_string(),
            "setup".to_string(),
        ];
        assert_eq!(command_or_default(&given), given);
    }

    #[test]
    fn leftovers_are_recognised_by_name() {
        assert_eq!(run_pid("fresh-check-root-1234-5678-0"), Some(1234));
        assert_eq!(run_pid("fresh-check-base-99-1-2"), Some(99));
        assert_eq!(run_pid("fresh-check-kept-1234-5678-0"), None);
        assert_eq!(run_pid("xtask-vm-1234-1-0"), None);
        assert_eq!(run_pid("fresh-check-rootx-1-1-1"), None);
    }

    #[test]
    fn a_root_is_removed_on_drop_and_kept_on_request() {
        let root = Root::new().unwrap();
        let path = root.path().to_path_buf();
        std::fs::write(path.join("f"), b"x").unwrap();
        drop(root);
        assert!(!path.exists());

        let root = Root::new().unwrap();
        let kept = root.keep().unwrap();
        let name = kept.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.starts_with(KEPT_PREFIX), "{name}");
        assert_eq!(run_pid(&name), None, "a later run must not remove it");
        std::fs::remove_dir(&kept).unwrap();
    }
}

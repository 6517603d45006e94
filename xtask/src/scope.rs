//! One run of a task that starts programs: it leaves nothing behind.
//!
//! `test`, `demo`, `bench` and `vm` start daemons, clients, X servers and
//! QEMU, directly or through the test binaries. A [`RunScope`] makes sure
//! that none of them outlives the run, whether it passes, fails, panics or
//! is interrupted:
//!
//! - xtask becomes the subreaper of everything below it ([`reaper`]), and
//!   after each step [`RunScope::check`] ends and names whatever is still
//!   running: a leak fails the step;
//! - every program gets `TMPDIR` pointing at one directory of the run,
//!   removed at the end, so scratch files of a crashed test do not pile up;
//!   and, where none is set (CI, a fresh root), an `XDG_RUNTIME_DIR` of the
//!   run inside it, as a desktop session has: libraries such as libpulse
//!   put their runtime files there instead of in `TMPDIR`;
//! - X sockets that appeared during the run and are still there at the end
//!   are removed and reported (an X server that was not stopped cleanly);
//! - `SIGINT`, `SIGTERM` and `SIGHUP` do not kill xtask: they are passed on
//!   to every process below it, the step in progress fails, no further step
//!   starts, the clean-up above runs and xtask exits with 128 + the signal;
//! - tests skipped outside CI (see the `test-support` crate) are recorded
//!   in a file of the run, read back by [`RunScope::skips`].
//!
//! [`reaper`]: crate::reaper

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use test_support::SKIP_LOG_ENV;

use crate::reaper::{self, ProcessInfo};

/// The signal that interrupted the run (0: none).
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// The run's `XDG_RUNTIME_DIR`, inside its `TMPDIR` (not a leftover).
const RUNTIME_DIR: &str = "xdg-runtime";

/// How long leftovers get between `SIGTERM` and `SIGKILL`.
const GRACE: Duration = Duration::from_secs(3);

/// The signal that interrupted the run, if one did.
pub(crate) fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// Fails when the run was interrupted (before a step starts).
pub(crate) fn check_not_interrupted() -> Result<()> {
    match interrupted() {
        Some(signal) => bail!("interrupted by signal {signal}"),
        None => Ok(()),
    }
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct RunScope {
    tmp: PathBuf,
    skip_log: PathBuf,
    x_before: Vec<String>,
    signals: signal_hook::iterator::Handle,
}

impl RunScope {
    /// Starts the scope. Call it first thing, while xtask has one thread:
    /// it sets `TMPDIR` and the skip log in xtask's own environment, which
    /// every program started afterwards inherits.
    pub(crate) fn start() -> Result<Self> {
        reaper::become_subreaper()?;
        // Short: Unix socket paths made under it must stay below 108 bytes.
        let tmp = std::env::temp_dir().join(format!("vdm-{}", std::process::id()));
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let skip_log = tmp.join("skipped.tsv");
        let mut vars = vec![("TMPDIR", tmp.clone()), (SKIP_LOG_ENV, skip_log.clone())];
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            let runtime = tmp.join(RUNTIME_DIR);
            std::fs::create_dir_all(&runtime)
                .and_then(|()| {
                    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))
                })
                .with_context(|| format!("cannot create {}", runtime.display()))?;
            vars.push(("XDG_RUNTIME_DIR", runtime));
        }
        for (key, value) in vars {
            // SAFETY: called before xtask starts any thread (the signal
            // thread below comes after), so nothing reads the environment
            // concurrently.
            unsafe { std::env::set_var(key, &value) };
        }
        let mut signals =
            Signals::new([SIGINT, SIGTERM, SIGHUP]).context("installing signal handlers")?;
        let handle = signals.handle();
        std::thread::Builder::new()
            .name("xtask-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    INTERRUPTED.store(signal, Ordering::SeqCst);
                    eprintln!("\nxtask: signal {signal}: stopping every process of the run");
                    reaper::signal_descendants(rustix::process::Signal::TERM);
                }
            })
            .context("starting the signal thread")?;
        Ok(Self {
            tmp,
            skip_log,
            x_before: reaper::x_sockets(),
            signals: handle,
        })
    }

    /// After a step: ends whatever the step left running and fails,
    /// naming it, if anything was.
    pub(crate) fn check(&self, step: &str) -> Result<()> {
        let leftovers = reaper::end_leftovers(GRACE);
        leftovers_result(step, &leftovers)
    }

    /// The tests skipped outside CI: (test, reason), in order.
    pub(crate) fn skips(&self) -> Vec<(String, String)> {
        parse_skips(&std::fs::read_to_string(&self.skip_log).unwrap_or_default())
    }

    /// The last clean-up: ends leftovers, removes new X sockets and the
    /// run's scratch directory. Fails if anything had to be ended or
    /// removed.
    pub(crate) fn finish(self) -> Result<()> {
        let leftovers = reaper::end_leftovers(GRACE);
        let sockets = reaper::remove_new_x_sockets(&self.x_before);
        let _ = std::fs::remove_file(&self.skip_log);
        let _ = std::fs::remove_dir_all(self.tmp.join(RUNTIME_DIR));
        let scratch = leftover_entries(&self.tmp);
        let _ = std::fs::remove_dir_all(&self.tmp);
        self.signals.close();
        leftovers_result("the run", &leftovers)?;
        if !sockets.is_empty() {
            bail!(
                "X sockets left behind (an X server not stopped cleanly): {}",
                sockets.join(", ")
            );
        }
        if !scratch.is_empty() {
            bail!(
                "scratch files left in the run's TMPDIR (removed now): {}",
                scratch.join(", ")
            );
        }
        Ok(())
    }
}

/// The error for processes that outlived `step`.
fn leftovers_result(step: &str, leftovers: &[ProcessInfo]) -> Result<()> {
    if leftovers.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = leftovers.iter().map(ToString::to_string).collect();
    bail!(
        "{} process(es) outlived {step} and were killed: {}",
        leftovers.len(),
        list.join("; ")
    )
}

/// The names of what is in `dir`.
fn leftover_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Parses the skip log: `test<TAB>reason` per line.
pub(crate) fn parse_skips(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(test, reason)| (test.to_owned(), reason.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_log_lines() {
        assert_eq!(
            parse_skips("a::b\tXvfb not installed\nbroken line\nc\tr\n"),
            [
                ("a::b".to_owned(), "Xvfb not installed".to_owned()),
                ("c".to_owned(), "r".to_owned())
            ]
        );
    }

    #[test]
    fn leftovers_fail_the_step_naming_them() {
        assert!(leftovers_result("demo", &[]).is_ok());
        let xvfb = ProcessInfo {
            pid: 42,
            ppid: 1,
            state: 'S',
            command: "Xvfb -displayfd 1".into(),
        };
        let err = leftovers_result("demo", &[xvfb]).unwrap_err().to_string();
        assert!(err.contains("outlived demo"), "{err}");
        assert!(err.contains("pid 42 `Xvfb -displayfd 1`"), "{err}");
    }
}

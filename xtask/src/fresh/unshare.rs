//! Starting the fresh root's namespaces, and what must hold around them.
//!
//! Why a module of its own: the namespaces are what makes fresh-check safe
//! to interrupt. `unshare --mount --propagation private --pid --fork
//! --kill-child` gives the command mount and PID namespaces that die with
//! it; `unshare` itself is killed when xtask dies (`PR_SET_PDEATHSIG`), and
//! xtask ignores Ctrl-C while the command runs (as `system(3)` does), so it
//! always gets to remove the root. Before removing it, [`mounts_under`]
//! checks that nothing is mounted below it in xtask's own namespace.

use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use anyhow::{Context, Result};

/// `unshare` running `sh -c <script>` as the first process of new mount
/// and PID namespaces.
pub(crate) fn unshare_argv(script: &str) -> Vec<String> {
    let mut argv = namespaced_prefix();
    argv.extend(["/bin/sh".into(), "-c".into(), script.into()]);
    argv
}

/// The `unshare` options that give a command private mount and PID
/// namespaces which die with it.
pub(crate) fn namespaced_prefix() -> Vec<String> {
    [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--kill-child",
        "--",
    ]
    .iter()
    .map(|w| w.to_string())
    .collect()
}

/// The exit code a shell would report: the code, or 128 + the signal.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1)
}

/// Runs an `unshare` command line (from [`namespaced_prefix`]) to its end
/// and returns its status: `unshare` dies with xtask, and xtask ignores
/// Ctrl-C meanwhile (as `system(3)` does) so that it can clean up after the
/// interrupted command.
pub(crate) fn run(argv: &[String], echo: &str) -> Result<ExitStatus> {
    println!("$ {echo}");
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec; it only
    // makes the system calls of `die_with_parent`, which are
    // async-signal-safe, and touches no memory shared with the parent
    // (`parent` is a copied integer).
    unsafe { cmd.pre_exec(move || die_with_parent(parent)) };
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{}`", argv[0]))?;
    let _ignored = IgnoreInterrupts::new();
    child.wait().context("waiting for unshare")
}

/// In a child before exec: be killed when the parent `parent` dies.
fn die_with_parent(parent: u32) -> std::io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    let ppid = rustix::process::Pid::as_raw(rustix::process::getppid());
    // The parent may have died before prctl: then nobody would kill us.
    if u32::try_from(ppid).ok() != Some(parent) {
        return Err(std::io::Error::other("xtask exited"));
    }
    Ok(())
}

/// SIGINT and SIGQUIT ignored until dropped.
struct IgnoreInterrupts {
    /// The previous dispositions.
    previous: [(libc::c_int, libc::sighandler_t); 2],
}

impl IgnoreInterrupts {
    /// Ignores the terminal's interrupt signals.
    fn new() -> Self {
        // SAFETY: setting a signal to SIG_IGN installs no handler code; the
        // previous disposition is kept to be restored.
        let previous = [libc::SIGINT, libc::SIGQUIT]
            .map(|signal| (signal, unsafe { libc::signal(signal, libc::SIG_IGN) }));
        Self { previous }
    }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        for (signal, handler) in self.previous {
            // SAFETY: restores the disposition `signal(2)` returned earlier.
            unsafe { libc::signal(signal, handler) };
        }
    }
}

/// The mount points at or below `dir` in `/proc/self/mountinfo` text
/// (field 5, with the kernel's octal escapes undone).
pub(crate) fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|point| point.starts_with(dir))
        .collect()
}

/// Undoes mountinfo's `\NNN` octal escapes (space, tab, newline, backslash).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_runs_with_the_parent_death_signal_set() {
        // `die_with_parent` runs in the child before exec: a failure there
        // would fail the spawn.
        let status = run(&["true".to_owned()], "true").expect("spawned");
        assert!(status.success());
    }

    #[test]
    fn unshare_gives_private_namespaces_that_die_with_it() {
        let argv = unshare_argv("echo hi");
        assert_eq!(argv[0], "unshare");
        let has = |option: &str| argv.iter().any(|word| word == option);
        assert!(has("--mount") && has("--pid"), "{argv:?}");
        // Without --fork the script would not be PID 1 of the namespace.
        assert!(has("--fork") && has("--kill-child"), "{argv:?}");
        let propagation = argv.iter().position(|w| w == "--propagation").unwrap();
        assert_eq!(argv[propagation + 1], "private");
        assert!(argv.ends_with(&["--".into(), "/bin/sh".into(), "-c".into(), "echo hi".into()]));
    }

    #[test]
    fn exit_codes_are_the_shell_ones() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        // Killed by SIGINT (2): 130, as a shell reports it.
        assert_eq!(exit_code(ExitStatus::from_raw(2)), 130);
    }

    #[test]
    fn finds_mounts_below_a_directory() {
        let mountinfo = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
23 22 0:5 / /tmp/r/proc rw - proc proc rw
24 22 0:6 / /tmp/r2 rw - tmpfs tmpfs rw
25 22 0:7 / /tmp/r/a\\040b rw - tmpfs tmpfs rw
";
        assert_eq!(
            mounts_under(mountinfo, Path::new("/tmp/r")),
            [PathBuf::from("/tmp/r/proc"), PathBuf::from("/tmp/r/a b")]
        );
        assert!(mounts_under(mountinfo, Path::new("/tmp/x")).is_empty());
    }
}

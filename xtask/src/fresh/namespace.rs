//! What runs inside the fresh root's namespaces: the script that mounts
//! what the root needs, then runs the command chrooted.
//!
//! Why a script in private namespaces rather than mounting on the host and
//! unmounting afterwards: a mount made on the host outlives a crash or a
//! Ctrl-C of xtask, and a later `rm -rf` of the root would then delete
//! through a bind mount into the host (the Rust toolchain). The script (the
//! [`Step`]s, then `chroot`) runs as the first process of new mount and PID
//! namespaces ([`unshare`](super::unshare)): every mount exists only there
//! and disappears with its last process, and when the script ends the
//! kernel kills every process left inside (a daemon or an Xvfb a test
//! forgot).
//!
//! `/dev` is a small tmpfs holding bind mounts of the host's harmless
//! device nodes, as container runtimes do: the command sees no host disk, no
//! `/dev/kvm` (the VM tests run QEMU with TCG), its own devpts and `/dev/shm`.
//! `/tmp` is the root's own directory on disk (mode 1777 from debootstrap),
//! so large test files do not fill memory and go away with the root.

use std::path::{Path, PathBuf};

use crate::process;

/// The exit status of the script when preparing the root failed (not the
/// command): like `docker run`, 125.
pub(crate) const SETUP_FAILED: i32 = 125;

/// Host device nodes bind-mounted into the root's `/dev`.
pub(crate) const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// The `/dev` symbolic links every Linux system has.
const DEV_LINKS: &[(&str, &str)] = &[
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"),
];

/// Where the host's rustup directory appears in the root (rustup's default
/// for `HOME=/root`).
pub(crate) const RUSTUP_IN_ROOT: &str = "/root/.rustup";

/// Where the host's `cargo`, `rustc`, ... (rustup proxies) appear: the bin
/// directory of the root's own, empty `CARGO_HOME` (`/root/.cargo`).
pub(crate) const CARGO_BIN_IN_ROOT: &str = "/root/.cargo/bin";

/// One step of preparing the root; paths in the root are absolute paths as
/// seen from inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A directory (`mkdir -p`).
    Dir(&'static str),
    /// An empty file to bind a device node onto.
    File(String),
    /// A new filesystem instance: `mount -t <fstype> -o <options>`.
    Fs {
        /// Filesystem type (also used as the source name).
        fstype: &'static str,
        /// Mount options.
        options: &'static str,
        /// Mount point in the root.
        target: &'static str,
    },
    /// A host path bind-mounted into the root.
    Bind {
        /// The host path.
        source: PathBuf,
        /// Mount point in the root.
        target: String,
        /// Mounted read-only.
        read_only: bool,
    },
    /// A symbolic link.
    Symlink {
        /// The link in the root.
        link: &'static str,
        /// What it points to.
        to: &'static str,
    },
}

impl Step {
    /// The command line of this step, for a root at `root` on the host.
    pub(crate) fn argv(&self, root: &Path) -> Vec<String> {
        let at = |path: &str| format!("{}{path}", root.display());
        let own = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        match self {
            Step::Dir(path) => vec!["mkdir".into(), "-p".into(), at(path)],
            Step::File(path) => vec!["touch".into(), at(path)],
            Step::Fs {
                fstype,
                options,
                target,
            } => {
                let mut argv = own(&["mount", "-t", fstype, "-o", options, fstype]);
                argv.push(at(target));
                argv
            }
            Step::Bind {
                source,
                target,
                read_only,
            } => {
                let options = if *read_only { "bind,ro" } else { "bind" };
                let mut argv = own(&["mount", "-o", options]);
                argv.push(source.display().to_string());
                argv.push(at(target));
                argv
            }
            Step::Symlink { link, to } => {
                vec!["ln".into(), "-sfn".into(), (*to).into(), at(link)]
            }
        }
    }
}

/// The steps that make the root usable, in order: kernel filesystems, a
/// minimal `/dev`, the host's Rust toolchain read-only.
pub(crate) fn steps(rustup_home: &Path, cargo_bin: &Path) -> Vec<Step> {
    let mut steps = Vec::new();
    steps.extend(new_fs("proc", "nosuid,nodev,noexec", "/proc"));
    steps.extend(new_fs("sysfs", "ro,nosuid,nodev,noexec", "/sys"));
    steps.extend(new_fs("tmpfs", "mode=755,nosuid,size=1m", "/dev"));
    for node in DEV_NODES {
        let path = format!("/dev/{node}");
        steps.push(Step::File(path.clone()));
        steps.push(Step::Bind {
            source: Path::new("/dev").join(node),
            target: path,
            read_only: false,
        });
    }
    steps.extend(
        DEV_LINKS
            .iter()
            .map(|&(link, to)| Step::Symlink { link, to }),
    );
    // gid 5 is Debian's `tty` group.
    let devpts = "newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec";
    steps.extend(new_fs("devpts", devpts, "/dev/pts"));
    steps.extend(new_fs("tmpfs", "mode=1777,nosuid,nodev", "/dev/shm"));
    steps.extend(read_only_bind(rustup_home, RUSTUP_IN_ROOT));
    steps.extend(read_only_bind(cargo_bin, CARGO_BIN_IN_ROOT));
    steps
}

/// A new filesystem instance at `target`, made first if needed.
fn new_fs(fstype: &'static str, options: &'static str, target: &'static str) -> [Step; 2] {
    [
        Step::Dir(target),
        Step::Fs {
            fstype,
            options,
            target,
        },
    ]
}

/// A host directory read-only at `target`, made first if needed.
fn read_only_bind(source: &Path, target: &'static str) -> [Step; 2] {
    [
        Step::Dir(target),
        Step::Bind {
            source: source.to_path_buf(),
            target: target.into(),
            read_only: true,
        },
    ]
}

/// What runs inside the root.
#[derive(Debug)]
pub(crate) struct Inside<'a> {
    /// The root on the host.
    pub(crate) root: &'a Path,
    /// Preparation steps.
    pub(crate) steps: &'a [Step],
    /// The command's working directory, inside the root.
    pub(crate) workdir: &'a str,
    /// The command's whole environment.
    pub(crate) env: &'a [(String, String)],
    /// The command.
    pub(crate) command: &'a [String],
}

/// A shell word list as one command line.
pub(crate) fn line(argv: &[String]) -> String {
    argv.iter()
        .map(|word| process::quote(word.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Inside<'_> {
    /// The chroot command line: a cleared environment (`env -i`), the
    /// working directory, the command.
    pub(crate) fn chroot_argv(&self) -> Vec<String> {
        let mut argv: Vec<String> = vec![
            "chroot".into(),
            self.root.display().to_string(),
            "/usr/bin/env".into(),
            "-i".into(),
            "-C".into(),
            self.workdir.into(),
        ];
        argv.extend(self.env.iter().map(|(k, v)| format!("{k}={v}")));
        argv.extend(self.command.iter().cloned());
        argv
    }

    /// The commands the script runs, in order: each step, the CA store
    /// rebuilt with the host's extra certificates, the command.
    pub(crate) fn commands(&self) -> Vec<String> {
        let update_ca: Vec<String> = [
            "chroot",
            &self.root.display().to_string(),
            "/usr/sbin/update-ca-certificates",
        ]
        .iter()
        .map(|w| w.to_string())
        .collect();
        let argvs = self.steps.iter().map(|step| step.argv(self.root));
        argvs
            .chain([update_ca, self.chroot_argv()])
            .map(|argv| line(&argv))
            .collect()
    }

    /// The script run as the namespace's first process: the
    /// [`commands`](Self::commands), each but the last failing with
    /// [`SETUP_FAILED`]; it exits with the command's status. The trailing
    /// `exit` keeps the shell from `exec`ing the command: the shell stays
    /// PID 1 (which ignores Ctrl-C) and the command can be interrupted.
    pub(crate) fn script(&self) -> String {
        let mut lines = vec![format!(
            "fail() {{ echo \"fresh-check: preparing the root failed at: $*\" >&2; exit {SETUP_FAILED}; }}"
        )];
        let mut commands = self.commands();
        let command = commands.pop().unwrap_or_default();
        for text in commands {
            lines.push(format!("{text} || fail {}", process::quote(text.as_ref())));
        }
        lines.push(command);
        lines.push("exit $?".into());
        lines.join("\n") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_steps() -> Vec<Step> {
        steps(
            Path::new("/home/u/.rustup"),
            Path::new("/home/u/.cargo/bin"),
        )
    }

    /// The mount points of the steps, in order.
    fn mount_points(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .filter_map(|step| match step {
                Step::Fs { target, .. } => Some(target.to_string()),
                Step::Bind { target, .. } => Some(target.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn root_gets_kernel_filesystems_a_small_dev_and_the_toolchain() {
        let points = mount_points(&test_steps());
        assert_eq!(
            points,
            [
                "/proc",
                "/sys",
                "/dev",
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
                "/dev/pts",
                "/dev/shm",
                "/root/.rustup",
                "/root/.cargo/bin",
            ]
        );
    }

    #[test]
    fn no_kvm_and_no_host_disk_in_dev() {
        for step in test_steps() {
            if let Step::Bind { source, .. } = &step {
                assert_ne!(source, Path::new("/dev/kvm"));
                assert_ne!(source, Path::new("/dev"), "the whole host /dev");
            }
        }
    }

    #[test]
    fn toolchain_is_read_only_and_devices_are_not() {
        for step in test_steps() {
            if let Step::Bind {
                target, read_only, ..
            } = step
            {
                assert_eq!(read_only, target.starts_with("/root/"), "{target}");
            }
        }
    }

    #[test]
    fn step_command_lines() {
        let root = Path::new("/tmp/r");
        let steps = test_steps();
        assert_eq!(
            steps[1].argv(root),
            [
                "mount",
                "-t",
                "proc",
                "-o",
                "nosuid,nodev,noexec",
                "proc",
                "/tmp/r/proc"
            ]
        );
        let rustup = steps
            .iter()
            .find(|s| matches!(s, Step::Bind { target, .. } if target == RUSTUP_IN_ROOT))
            .unwrap();
        assert_eq!(
            rustup.argv(root),
            [
                "mount",
                "-o",
                "bind,ro",
                "/home/u/.rustup",
                "/tmp/r/root/.rustup"
            ]
        );
        let ptmx = Step::Symlink {
            link: "/dev/ptmx",
            to: "pts/ptmx",
        };
        assert_eq!(
            ptmx.argv(root),
            ["ln", "-sfn", "pts/ptmx", "/tmp/r/dev/ptmx"]
        );
    }

    fn inside<'a>(steps: &'a [Step], env: &'a [(String, String)], cmd: &'a [String]) -> Inside<'a> {
        Inside {
            root: Path::new("/tmp/r"),
            steps,
            workdir: "/root/p",
            env,
            command: cmd,
        }
    }

    #[test]
    fn command_runs_chrooted_with_only_the_given_environment() {
        let env = [("HOME".to_string(), "/root".to_string())];
        let cmd = [
            "bash".to_string(),
            "-c".to_string(),
            "echo 'hi'".to_string(),
        ];
        let argv = inside(&[], &env, &cmd).chroot_argv();
        assert_eq!(
            argv,
            [
                "chroot",
                "/tmp/r",
                "/usr/bin/env",
                "-i",
                "-C",
                "/root/p",
                "HOME=/root",
                "bash",
                "-c",
                "echo 'hi'"
            ]
        );
    }

    #[test]
    fn script_guards_each_step_and_ends_with_the_command_status() {
        let steps = test_steps();
        let cmd = ["cargo".to_string(), "xtask".to_string(), "test".to_string()];
        let script = inside(&steps, &[], &cmd).script();
        let lines: Vec<&str> = script.lines().collect();
        assert!(lines[0].starts_with("fail() {"), "{script}");
        assert!(lines[0].contains("exit 125"), "{script}");
        // One guarded line per step, plus the CA store update.
        let guarded = lines.iter().filter(|l| l.contains(" || fail ")).count();
        assert_eq!(guarded, steps.len() + 1, "{script}");
        assert!(
            lines[lines.len() - 3].starts_with("chroot /tmp/r /usr/sbin/update-ca-certificates")
        );
        assert_eq!(
            lines[lines.len() - 2],
            "chroot /tmp/r /usr/bin/env -i -C /root/p cargo xtask test"
        );
        assert_eq!(lines[lines.len() - 1], "exit $?");
        // A quote in a step survives the `fail` message.
        assert!(script.contains("|| fail 'mount -t proc -o nosuid,nodev,noexec proc /tmp/r/proc'"));
    }

    #[test]
    fn script_really_stops_at_a_failed_step_with_125() {
        let steps = [Step::Dir("/a"), Step::File("/missing-dir/f".into())];
        let root = crate::tempdir::new("xtask-fresh-test").unwrap();
        let cmd = ["true".to_string()];
        let mut inside = inside(&steps, &[], &cmd);
        inside.root = root.path();
        let status = std::process::Command::new("sh")
            .args(["-c", &inside.script()])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(SETUP_FAILED));
        assert!(root.path().join("a").is_dir(), "the first step ran");
    }
}

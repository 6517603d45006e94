//! Running external programs.
//!
//! Nearly every task is "run this program, stop if it fails". This module
//! does that one way for all of them: echo the command line so the log shows
//! exactly what ran, let long tools (apt, pip, cargo) stream their output, and
//! turn a failure into an error that names the command.

use std::ffi::{OsStr, OsString};
use std::io::Read as _;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

/// The command line as one would type it in a shell (for logs and errors).
pub(crate) fn display(cmd: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            words.push(format!("{}={}", key.to_string_lossy(), quote(value)));
        }
    }
    words.push(quote(cmd.get_program()));
    words.extend(cmd.get_args().map(quote));
    words.join(" ")
}

/// Quotes a word for a POSIX shell when it needs it.
pub(crate) fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The cargo to run: `$CARGO` (set by `cargo run`, so the same toolchain)
/// or `cargo` from `PATH`.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A cargo invocation from its arguments.
///
/// Without the variables `cargo run` set for xtask itself
/// ([`is_cargo_run_var`]): build scripts that watch them (ring's watches
/// `CARGO_MANIFEST_DIR` and `CARGO_PKG_*`) would otherwise see them change
/// between the build of xtask and the builds xtask starts, and rebuild
/// ring, rustls and everything above them on every `cargo xtask`.
pub(crate) fn cargo_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        if is_cargo_run_var(&key) {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Whether `key` is one of the variables cargo sets for the program it
/// runs (the crate's manifest and package fields), as opposed to the
/// `CARGO_*` settings a user gives cargo (`CARGO_HOME`,
/// `CARGO_TARGET_DIR`, `CARGO_BUILD_*`, `CARGO_PROFILE_*`...), which the
/// builds xtask starts must keep.
fn is_cargo_run_var(key: &OsStr) -> bool {
    let Some(key) = key.to_str() else {
        return false;
    };
    key.starts_with("CARGO_PKG_")
        || matches!(
            key,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
        )
}

/// Runs a command with inherited stdio; fails unless it exits with 0.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    println!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Like [`run`], but the command's stdout goes through this process: it is
/// copied to `echo` as it arrives (not line by line, so progress still shows)
/// and every line is also handed to `on_line`. stderr is inherited.
pub(crate) fn run_watching_stdout(
    cmd: &mut Command,
    echo: &mut dyn std::io::Write,
    mut on_line: impl FnMut(&str),
) -> Result<()> {
    let line = display(cmd);
    println!("$ {line}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{line}`"))?;
    let mut stdout = child.stdout.take().context("child stdout was not piped")?;
    let mut pending = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match stdout.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err).with_context(|| format!("reading the output of `{line}`")),
        };
        // Echo failures (a closed stdout) must not stop the command itself.
        let _ = echo.write_all(&chunk[..n]).and_then(|()| echo.flush());
        pending.extend_from_slice(&chunk[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            on_line(&String::from_utf8_lossy(&pending[..end]));
            pending.drain(..=end);
        }
    }
    if !pending.is_empty() {
        on_line(&String::from_utf8_lossy(&pending));
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs a command quietly and returns its output, whatever its exit status.
/// Fails only if the program cannot be started.
pub(crate) fn capture(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{}`", display(cmd)))
}

/// Whether a command starts and exits with 0 (output discarded).
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let mut cmd = Command::new("dpkg-query");
        cmd.args(["-W", "-f=${Status}\n", "pkg-config"]);
        assert_eq!(display(&cmd), "dpkg-query -W '-f=${Status}\n' pkg-config");
    }

    #[test]
    fn display_shows_environment_overrides() {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive").arg("update");
        assert_eq!(
            display(&cmd),
            "DEBIAN_FRONTEND=noninteractive apt-get update"
        );
    }

    #[test]
    fn quote_escapes_single_quotes_and_empty_words() {
        assert_eq!(quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(quote(OsStr::new("")), "''");
    }

    #[test]
    fn cargo_command_uses_the_given_arguments() {
        let cmd = cargo_command(&["fmt", "--all"]);
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args, ["fmt", "--all"]);
    }

    #[test]
    fn cargo_run_variables_are_not_passed_on() {
        for key in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
        ] {
            assert!(is_cargo_run_var(OsStr::new(key)), "{key}");
        }
        for key in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_JOBS",
            "CARGO",
            "PATH",
        ] {
            assert!(!is_cargo_run_var(OsStr::new(key)), "{key}");
        }
        // xtask runs under `cargo run`, so its own manifest directory is set
        // here: the command must drop it.
        if std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
            let cmd = cargo_command(&["build"]);
            assert!(
                cmd.get_envs()
                    .any(|(k, v)| k == "CARGO_MANIFEST_DIR" && v.is_none()),
                "CARGO_MANIFEST_DIR is removed"
            );
        }
    }

    #[test]
    fn run_reports_the_failing_command() {
        let err = run(Command::new("false").arg("x")).unwrap_err();
        assert!(err.to_string().contains("`false x` failed"), "{err}");
        assert!(run(&mut Command::new("true")).is_ok());
    }

    #[test]
    fn watching_stdout_sees_every_line() {
        let mut lines = Vec::new();
        let mut echoed = Vec::new();
        let mut printf = Command::new("printf");
        printf.arg("a\\nbb\\nlast");
        run_watching_stdout(&mut printf, &mut echoed, |l| lines.push(l.to_owned())).unwrap();
        assert_eq!(lines, ["a", "bb", "last"]);
        assert_eq!(echoed, b"a\nbb\nlast");
        let mut sink = std::io::sink();
        assert!(run_watching_stdout(&mut Command::new("false"), &mut sink, |_| {}).is_err());
    }

    #[test]
    fn succeeds_is_false_for_missing_programs() {
        assert!(!succeeds(&mut Command::new("/nonexistent/program")));
        assert!(succeeds(&mut Command::new("true")));
    }
}

//! Tests that need an external program.
//!
//! A test that cannot run must never pass silently in CI: under `CI=true`
//! a missing program fails the test, naming the program and the Debian
//! package that provides it. Outside CI (a developer's machine without
//! `cargo xtask setup`) the test is skipped instead, and the skip is both
//! printed and appended to the file named by [`SKIP_LOG_ENV`], so that
//! `cargo xtask test` can list every skipped test by name in its summary
//! (libtest itself reports such a test as passed).

use std::io::Write as _;
use std::path::PathBuf;

/// The environment variable naming the file skips are appended to, one
/// line per skip: `test<TAB>reason`. Set by `cargo xtask test`.
pub const SKIP_LOG_ENV: &str = "VDM_SKIP_LOG";

/// An external program a test needs, and the Debian package providing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// The program's name, looked up on `PATH`.
    pub program: &'static str,
    /// The Debian package that provides it (named in the failure).
    pub package: &'static str,
}

/// What a test with missing tools does.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Run,
    Skip(String),
    Fail(String),
}

/// Whether this run is CI: `CI` is set to anything but empty, `0` or
/// `false` (CI systems set `CI=true`).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The path of `program` on `PATH`, if it is there.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// Returns `true` when every tool is on `PATH` and the test can run.
///
/// Otherwise: under CI it panics (the test fails) naming each missing
/// program and its package; elsewhere it records the skip of `test` and
/// returns `false`, and the caller returns at once.
pub fn require(test: &str, tools: &[Tool]) -> bool {
    let missing: Vec<Tool> = tools
        .iter()
        .copied()
        .filter(|t| find_program(t.program).is_none())
        .collect();
    match decide(ci(), test, &missing) {
        Decision::Run => true,
        Decision::Skip(reason) => {
            record_skip(test, &reason);
            false
        }
        Decision::Fail(message) => panic!("{message}"),
    }
}

fn decide(ci: bool, test: &str, missing: &[Tool]) -> Decision {
    if missing.is_empty() {
        return Decision::Run;
    }
    let programs: Vec<&str> = missing.iter().map(|t| t.program).collect();
    let mut packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    packages.dedup();
    let reason = format!(
        "{} not installed (Debian package {}; `cargo xtask setup` installs it)",
        programs.join(", "),
        packages.join(", ")
    );
    if ci {
        Decision::Fail(format!(
            "{test} cannot run: {reason}; under CI=true a test that cannot run fails"
        ))
    } else {
        Decision::Skip(reason)
    }
}

/// Prints the skip and appends it to the skip log, if one is set.
fn record_skip(test: &str, reason: &str) {
    eprintln!("SKIPPED (not in CI): {test}: {reason}");
    let Some(log) = std::env::var_os(SKIP_LOG_ENV) else {
        return;
    };
    let line = format!("{test}\t{reason}\n");
    // One write of one short line with O_APPEND: lines of tests running
    // in parallel processes do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(err) = written {
        eprintln!("cannot record the skip in {}: {err}", log.to_string_lossy());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MISSING: Tool = Tool {
        program: "no-such-program-vdm",
        package: "no-such-package",
    };

    #[test]
    fn present_tools_run() {
        assert_eq!(decide(true, "t", &[]), Decision::Run);
        assert!(require(
            "t",
            &[Tool {
                program: "sh",
                package: "dash"
            }]
        ));
    }

    #[test]
    fn missing_tool_fails_under_ci_naming_it() {
        let Decision::Fail(message) = decide(true, "geometry", &[MISSING]) else {
            panic!("a missing tool must fail under CI");
        };
        assert!(message.contains("geometry"), "{message}");
        assert!(message.contains("no-such-program-vdm"), "{message}");
        assert!(message.contains("no-such-package"), "{message}");
    }

    #[test]
    fn missing_tool_skips_outside_ci() {
        let Decision::Skip(reason) = decide(false, "geometry", &[MISSING]) else {
            panic!("a missing tool skips outside CI");
        };
        assert!(reason.contains("no-such-program-vdm"), "{reason}");
    }

    #[test]
    fn ci_values() {
        // Read from the real environment only in `ci()`; the parsing rule:
        for (value, expected) in [("true", true), ("1", true), ("", false), ("false", false)] {
            let is_ci = !matches!(value.trim(), "" | "0" | "false");
            assert_eq!(is_ci, expected, "{value}");
        }
    }
}

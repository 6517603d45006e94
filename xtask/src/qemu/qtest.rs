//! The `qemu qtest` step: QEMU's own test of the `chardev-relay` object
//! (patch 0004), run against the project's QEMU build.
//!
//! The relay joins the VM's Spice port to the daemon's Unix uplink; its
//! qtest (`tests/qtest/chardev-relay-test.c`, in the patch, written to
//! QEMU's standards so that it can go upstream with the object) drives it
//! with two socket chardevs: bytes both ways in order, back-pressure with
//! either side stalled, open/close seen on the other side, the service
//! restarting and the relay reconnecting, and QMP `object-add`/`-del`. The
//! QEMU build makes it in the same configure and installs it beside the
//! binary; here it runs with `QTEST_QEMU_BINARY` pointing at that binary,
//! and its TAP output is checked: every planned test ran and passed. A
//! QEMU without it (the system's) fails the step under CI; elsewhere the
//! step says it did not run.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::process;

/// The ninja target of the qtest in QEMU's build directory.
pub(crate) const NINJA_TARGET: &str = "tests/qtest/chardev-relay-test";
/// Its name beside the QEMU binary.
pub(crate) const BINARY: &str = "chardev-relay-test";
/// How long the whole qtest may take (it takes a few seconds).
const TIMEOUT_SECS: &str = "300";

/// `cargo xtask qemu --qtest`, and the `qemu qtest` step of `cargo xtask
/// test`.
pub(crate) fn run() -> Result<()> {
    let qemu = super::ensure()?;
    let Some(qtest) = qemu.qtest.filter(|path| path.is_file()) else {
        let why = format!(
            "{} comes with no {BINARY} (only the project's QEMU build has the relay)",
            qemu.binary.display()
        );
        if test_support::ci() {
            bail!("qemu qtest cannot run: {why}");
        }
        println!("qemu qtest: NOT RUN: {why}");
        return Ok(());
    };
    let mut cmd = Command::new("timeout");
    cmd.arg(TIMEOUT_SECS)
        .arg(&qtest)
        .args(["--tap", "-k"])
        .env("QTEST_QEMU_BINARY", &qemu.binary)
        .stdin(Stdio::null());
    // (`display` shows the environment set on the command too.)
    println!("$ {}", process::display(&cmd));
    let output = process::capture(&mut cmd).context("running the relay's qtest")?;
    let tap = String::from_utf8_lossy(&output.stdout);
    print!("{tap}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    let passed = check_tap(&tap)?;
    if !output.status.success() {
        bail!("{BINARY} exited with {}", output.status);
    }
    println!("qemu qtest: {passed} chardev-relay tests passed");
    Ok(())
}

/// Checks a TAP report: a plan `1..N`, N `ok` lines and no `not ok`.
/// Returns N.
pub(crate) fn check_tap(tap: &str) -> Result<usize> {
    let mut planned = None;
    let mut passed = 0;
    let mut failed = Vec::new();
    for line in tap.lines() {
        if let Some(n) = line.strip_prefix("1..") {
            planned = n.trim().parse::<usize>().ok();
        } else if line.starts_with("not ok") {
            failed.push(line.to_string());
        } else if line.starts_with("ok ") {
            passed += 1;
        }
    }
    let Some(planned) = planned else {
        bail!("the qtest printed no TAP plan");
    };
    if !failed.is_empty() {
        bail!("qtest failures:\n{}", failed.join("\n"));
    }
    if planned == 0 || passed != planned {
        bail!("the qtest planned {planned} tests and passed {passed}");
    }
    Ok(passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_reports_are_checked() {
        let good = "# seed\n1..2\nok 1 /x86_64/a\nok 2 /x86_64/b\n";
        assert_eq!(check_tap(good).unwrap(), 2);
        let failing = "1..2\nok 1 /a\nnot ok 2 /b\n";
        assert!(
            check_tap(failing)
                .unwrap_err()
                .to_string()
                .contains("not ok 2")
        );
        // A crash after the first test: fewer results than planned.
        assert!(check_tap("1..2\nok 1 /a\nBail out!\n").is_err());
        assert!(check_tap("ok 1 /a\n").is_err());
        assert!(check_tap("1..0\n").is_err());
    }
}

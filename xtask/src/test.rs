//! `cargo xtask test`: the project's one test command.
//!
//! The README names it and CI runs it (through `.ci/run`) on a fresh Debian
//! 12, so it first runs `setup`, then every check in order: the FlatBuffers
//! code check, formatting, clippy, the tests of every workspace member, and
//! a smoke run of the data-path benchmark (so the bench cannot rot; its
//! figures mean nothing at that size and unoptimised, see [`bench`](mod@bench)),
//! and `qemu attach`: a real QEMU (built once and cached by
//! [`qemu`](mod@qemu)) creates the device on the real daemon, `qemu qtest`
//! (QEMU's qtest of the relay object, [`qtest`](mod@qemu::qtest)), and `vm`
//! ([`vm`](mod@crate::vm)): QEMU boots a guest that plays clips through the
//! device over virtio-pci, with a daemon restart and a guest reset, and the
//! viewer shows a guest's desktop with the video in it. It stops at the first failing step
//! and names it. Every step is timed and
//! a summary table closes the run: CI has 90 minutes on 2 cores.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, anyhow};

use crate::process::cargo_command;
use crate::scope::{self, RunScope};
use crate::test_count::TestCounts;
use crate::timing::{Outcome, Timings, format_duration};
use crate::{
    bench, cbindgen_gen, demo, flatc_gen, fuzz, matrix, process, qemu, runtime_deps, setup,
};

/// The cargo argument lists of the cargo steps, with their step names.
pub(crate) fn cargo_steps() -> [(&'static str, &'static [&'static str]); 5] {
    [
        ("cargo fmt", &["fmt", "--all", "--check"]),
        (
            "cargo clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        ),
        // The server build of the daemon (no GStreamer) must keep building.
        (
            "server build",
            &[
                "clippy",
                "--package",
                "vhost-user-mediaredir",
                "--no-default-features",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        ),
        // The VDI server build: no GStreamer, with the Spice uplink.
        (
            "server build (spice)",
            &[
                "clippy",
                "--package",
                "vhost-user-mediaredir",
                "--no-default-features",
                "--features",
                "spice",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        ),
        ("cargo test", &["test", "--workspace", "--locked"]),
    ]
}

/// Runs every step, timed; fails at the first failing step, or when a
/// step leaves a process running (see [`RunScope::check`]).
pub(crate) fn run(run_scope: &RunScope) -> Result<()> {
    let started = Instant::now();
    let mut timings = Timings::default();
    let mut flatc: Option<PathBuf> = None;
    let mut counts: Option<TestCounts> = None;

    // setup, run-time packages, flatc check, cbindgen check; the cargo
    // steps; fuzz smoke, bench smoke, demo, demo matrix, qemu attach,
    // qemu qtest, vm.
    let steps = 4 + cargo_steps().len() + 7;
    let mut step = 0;
    let mut timed = |name: &str, body: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        step += 1;
        scope::check_not_interrupted()?;
        println!("\n==> [{step}/{steps}] {name}");
        let start = Instant::now();
        let result = body();
        // Whatever the step left running is ended; a leak fails the step.
        let result = match (result, run_scope.check(name)) {
            (result, Ok(())) => result,
            (Ok(()), Err(leak)) => Err(leak),
            (Err(err), Err(leak)) => Err(err.context(format!("also: {leak:#}"))),
        };
        let outcome = Outcome::of(&result);
        timings.record(name, start.elapsed(), outcome);
        result.map_err(|err| err.context(format!("step `{name}` failed")))
    };

    let result = (|| {
        timed("setup", &mut || {
            flatc = Some(setup::run()?);
            Ok(())
        })?;
        // Every factory and program the code and tests use comes from a
        // package setup installs (or the base system).
        timed("run-time packages", &mut || {
            runtime_deps::check(crate::workspace_root(), &setup::wanted_packages())
        })?;
        timed("flatc check", &mut || {
            let flatc = flatc
                .as_deref()
                .ok_or_else(|| anyhow!("setup did not provide flatc"))?;
            let dirs = flatc_gen::Dirs {
                schema_dir: flatc_gen::SCHEMA_DIR.into(),
                out_dir: flatc_gen::GENERATED_DIR.into(),
            };
            flatc_gen::check(flatc, &dirs)
        })?;
        timed("cbindgen check", &mut || {
            cbindgen_gen::check(Path::new(cbindgen_gen::CRATE_DIR))
        })?;
        for (name, args) in cargo_steps() {
            if args.first() == Some(&"test") {
                // Watch the test binaries' output to add up the results.
                timed(name, &mut || {
                    let mut seen = TestCounts::default();
                    // `cargo test --workspace` builds the binaries the
                    // end-to-end tests start; point the tests at them so
                    // they do not run a nested `cargo build`, whose
                    // different feature set would rebuild half the tree.
                    let debug = crate::workspace_root().join("target/debug");
                    // The viewer's test runs QEMU's Spice desktop: the
                    // project's QEMU (built with Spice, cached) first.
                    let qemu = qemu::ensure()?;
                    let mut cmd = cargo_command(args);
                    cmd.env("MEDIAREDIR_QEMU", &qemu.binary);
                    cmd.env("VDM_DAEMON", debug.join("vhost-user-mediaredir"))
                        .env("MEDIA_CLIENT", debug.join("media-client"))
                        .env("MEDIAREDIR_BROKER", debug.join("mediaredir-broker"))
                        .env("VERIFY_CLIP", debug.join("verify-clip"));
                    let result =
                        process::run_watching_stdout(&mut cmd, &mut std::io::stdout(), |line| {
                            seen.add_line(line);
                        });
                    counts = Some(seen);
                    result
                })?;
            } else {
                timed(name, &mut || process::run(&mut cargo_command(args)))?;
            }
        }
        // Every fuzz target on a fixed number of inputs with a fixed seed,
        // from the files the demuxer tests just made: deterministic.
        timed("fuzz smoke", &mut || {
            fuzz::run(&fuzz::FuzzOptions {
                targets: Vec::new(),
                budget: fuzz::Budget::Smoke(fuzz::SMOKE_RUNS),
            })
        })?;
        // `cargo xtask bench --smoke`: the whole report on short clips
        // with the debug binaries, so the bench cannot rot.
        timed("bench smoke", &mut || bench::run(true, None))?;
        // The whole stack on a generated clip, in process, over sockets to
        // media-client and over Spice to media-client: fails unless each is
        // bit-exact.
        timed("demo", &mut || {
            demo::run(
                None,
                demo::DemoUplink::Local,
                demo::DemoPlayer::RedirPlay,
                false,
            )?;
            demo::run(
                None,
                demo::DemoUplink::Unix,
                demo::DemoPlayer::RedirPlay,
                false,
            )?;
            demo::run(
                None,
                demo::DemoUplink::Tcp,
                demo::DemoPlayer::RedirPlay,
                false,
            )?;
            demo::run(
                None,
                demo::DemoUplink::Spice,
                demo::DemoPlayer::RedirPlay,
                false,
            )
        })?;
        // Every codec and container through the stack, bit-exact.
        timed("demo matrix", &mut || {
            matrix::run(&matrix::Plan::all(), None)
        })?;
        timed("qemu attach", &mut qemu::attach_check)?;
        // QEMU's own test of the relay (patch 0004) on the same build.
        timed("qemu qtest", &mut qemu::qtest::run)?;
        // A guest plays through the virtio-pci transport (bit-exact), the
        // daemon restarts under it, the guest resets the device.
        timed("vm", &mut crate::vm::test)?;
        Ok(())
    })();

    println!(
        "\n==> summary (wall clock {})",
        format_duration(started.elapsed())
    );
    print!("{}", timings.table());
    match &result {
        Ok(()) => println!("cargo xtask test: all {steps} steps passed"),
        Err(err) => println!("cargo xtask test: FAILED: {err:#}"),
    }
    // Tests that could not run: only outside CI (under CI=true they fail).
    let skips = run_scope.skips();
    if !skips.is_empty() {
        println!("skipped (not in CI): {} test(s)", skips.len());
        for (test, reason) in &skips {
            println!("  {test}: {reason}");
        }
    }
    // The last line: how many tests ran in all (if `cargo test` ran).
    if let Some(mut counts) = counts {
        counts.count_skipped(skips.len());
        println!("{}", counts.summary_line());
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_steps_are_the_documented_commands() {
        let lines: Vec<String> = cargo_steps()
            .iter()
            .map(|(_, args)| args.join(" "))
            .collect();
        assert_eq!(
            lines,
            [
                "fmt --all --check",
                "clippy --workspace --all-targets --locked -- -D warnings",
                "clippy --package vhost-user-mediaredir --no-default-features --locked -- -D warnings",
                "clippy --package vhost-user-mediaredir --no-default-features --features spice --locked -- -D warnings",
                "test --workspace --locked",
            ]
        );
    }
}

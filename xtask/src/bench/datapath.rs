//! The daemon's data-path benchmark, folded into `cargo xtask bench`.
//!
//! The benchmark itself is a bench target of the daemon crate
//! (`vhost-device-media/benches/datapath/`): it sends buffers from guest
//! memory through the socket uplink (zero copy, `writev` from guest memory)
//! and through a copying baseline in the same process, and prints the
//! machine, a Markdown table of throughput, ratios and latencies, and one
//! JSON line with every figure. This task only runs it with `cargo bench`,
//! which builds it with the optimised `bench` profile. `--smoke` runs small
//! budgets in a few seconds. Its JSON becomes the `datapath` member of the
//! bench's report, from which the results block of `docs/bench.md` is
//! rendered ([`super::render::datapath`]).
//!
//! `cargo xtask test` runs the smoke run too, after the tests, so the
//! benchmark keeps building and running; there it goes through `cargo test`
//! (the unoptimised `test` profile, whose dependencies `cargo test` has just
//! built) rather than `cargo bench`, which would build the daemon and all its
//! dependencies a second time, optimised, for figures nobody reads.

use anyhow::Result;

use crate::process;

/// The cargo arguments that run the benchmark (`--smoke`: the short run).
pub(crate) fn cargo_args(smoke: bool) -> Vec<&'static str> {
    let mut args = vec![
        "bench",
        "-p",
        "vhost-user-mediaredir",
        "--bench",
        "datapath",
        "--locked",
    ];
    if smoke {
        args.extend(["--", "--smoke"]);
    }
    args
}

/// The cargo arguments of the smoke run in `cargo xtask test`.
pub(crate) fn smoke_check_args() -> [&'static str; 8] {
    [
        "test",
        "-p",
        "vhost-user-mediaredir",
        "--bench",
        "datapath",
        "--locked",
        "--",
        "--smoke",
    ]
}

/// Runs the benchmark, its output streaming to the terminal, and returns
/// its last line (one JSON object with every figure). The smoke run goes
/// through `cargo test` (unoptimised, reusing the test build: it checks
/// that the bench builds, runs and passes its sanity checks), the full one
/// through `cargo bench`.
pub(crate) fn measure(smoke: bool) -> Result<String> {
    let args: Vec<&str> = if smoke {
        smoke_check_args().to_vec()
    } else {
        cargo_args(false)
    };
    let mut last = String::new();
    process::run_watching_stdout(
        &mut process::cargo_command(&args),
        &mut std::io::stdout(),
        |line| {
            if !line.trim().is_empty() {
                last = line.to_owned();
            }
        },
    )?;
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_smoke_command_lines() {
        assert_eq!(
            cargo_args(false).join(" "),
            "bench -p vhost-user-mediaredir --bench datapath --locked"
        );
        assert_eq!(
            cargo_args(true).join(" "),
            "bench -p vhost-user-mediaredir --bench datapath --locked -- --smoke"
        );
        assert_eq!(
            smoke_check_args().join(" "),
            "test -p vhost-user-mediaredir --bench datapath --locked -- --smoke"
        );
    }
}

//! The entry of the guest tools (`redir-play`, `redir-record`,
//! `redir-call`): the same logging set-up and the same error line and exit
//! status for each, so a script sees every tool fail the same way; and
//! the check of a tool's command line its tests share.

use std::ffi::OsString;
use std::fmt::Display;
use std::process::ExitCode;

use clap::Parser;

/// Sets up logging (warnings, or `RUST_LOG`), runs the tool and turns its
/// outcome into the exit status: `Ok(true)` success, `Ok(false)` a failure
/// the tool has already reported, `Err` a failure printed as
/// `<tool>: error: <error and its causes>`.
pub fn tool_main<E: Display>(tool: &str, run: impl FnOnce() -> Result<bool, E>) -> ExitCode {
    // A second initialisation (tests) keeps the first logger.
    let _ = env_logger::Builder::new()
        .parse_filters("warn")
        .parse_env("RUST_LOG")
        .try_init();
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{tool}: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// For a tool's tests: checks the definition of its options (clap's
/// `debug_assert`, which finds clashing or misspelt option names that
/// parsing alone finds only when a user gives them), then parses `argv`
/// (the tool's name first) with them.
///
/// # Panics
/// When the definition is inconsistent or `argv` does not parse.
pub fn parse_checked<A: Parser>(argv: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> A {
    A::command().debug_assert();
    A::parse_from(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_exit_statuses() {
        assert_eq!(tool_main("t", || Ok::<_, String>(true)), ExitCode::SUCCESS);
        assert_eq!(tool_main("t", || Ok::<_, String>(false)), ExitCode::FAILURE);
        assert_eq!(tool_main("t", || Err("broken")), ExitCode::FAILURE);
    }
}

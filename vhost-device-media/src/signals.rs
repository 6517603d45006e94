//! Signals: SIGUSR1 prints the counters, SIGTERM and SIGINT print them and
//! exit. Tests read the `counters:` line the daemon writes to standard
//! output. With `--verify-report PATH` (and `--uplink local:verify`) every
//! one of these signals first writes the engine's verification report to
//! PATH.
//!
//! The signals are caught with `signal-hook` (its handler only writes to a
//! self-pipe) and handled on a thread of their own, so the work they ask for
//! runs as ordinary code, never in a signal handler.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use rustix::time::{ClockId, clock_gettime};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::counters::Counters;

/// CPU microseconds this process has used (user + system, every thread,
/// including threads that have ended): the process CPU-time clock.
pub fn process_cpu_us() -> u64 {
    let t = clock_gettime(ClockId::ProcessCPUTime);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_nsec / 1_000).unwrap_or(0)
}

/// Prints `rusage: cpu_us=N` (the daemon's own CPU, for benchmarks: finer
/// than /proc's clock ticks) and then the `counters:` line.
fn print_counters(counters: &Counters) {
    let line = counters.snapshot().to_line();
    log::info!("{line}");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "rusage: cpu_us={}", process_cpu_us());
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// SIGTERM, SIGINT and SIGUSR1, caught since [`catch`] returned and
/// waiting for [`report_on_signals`] to handle them.
#[derive(Debug)]
pub struct Caught(Signals);

/// Catches SIGTERM, SIGINT and SIGUSR1 from now on; what arrives before the
/// handling thread starts waits for it. Call first thing in `main`, so that
/// an early SIGUSR1 does not end the process (its default action).
pub fn catch() -> std::io::Result<Caught> {
    Signals::new([SIGTERM, SIGINT, SIGUSR1]).map(Caught)
}

/// Handles the signals caught by [`catch`] on a thread of their own:
/// SIGUSR1 prints the counters, SIGTERM and SIGINT print them and exit.
pub fn report_counters_on_signals(signals: Caught, counters: Arc<Counters>) -> std::io::Result<()> {
    report_on_signals(signals, counters, None)
}

/// Where and from what to write a verification report on a signal.
pub struct ReportOnSignal {
    /// The file written (replaced) on every handled signal.
    pub path: PathBuf,
    /// The report's text, `None` when there is none (not `local:verify`).
    pub source: Box<dyn Fn() -> Option<String> + Send>,
}

impl std::fmt::Debug for ReportOnSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportOnSignal")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn write_report(report: &ReportOnSignal) {
    let Some(text) = (report.source)() else {
        log::warn!(
            "no verification report to write to {} (is the uplink local:verify?)",
            report.path.display()
        );
        return;
    };
    // Write a temporary file and rename it, so a reader never sees half.
    let tmp = report.path.with_extension("partial");
    match std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &report.path)) {
        Ok(()) => log::info!("verification report written to {}", report.path.display()),
        Err(e) => log::error!("writing {}: {e}", report.path.display()),
    }
}

/// Like [`report_counters_on_signals`]; with `report`, each signal also
/// writes the verification report, before the counters are printed.
pub fn report_on_signals(
    signals: Caught,
    counters: Arc<Counters>,
    report: Option<ReportOnSignal>,
) -> std::io::Result<()> {
    let Caught(mut signals) = signals;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if let Some(report) = &report {
                    write_report(report);
                }
                print_counters(&counters);
                if signal != SIGUSR1 {
                    std::process::exit(0);
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_cpu_grows_with_work() {
        let before = process_cpu_us();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(process_cpu_us() > before);
    }
}

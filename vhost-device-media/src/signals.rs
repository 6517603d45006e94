//! Signals: SIGUSR1 prints the counters, SIGTERM and SIGINT print them and
//! exit. Tests read the `counters:` line the daemon writes to standard
//! output. With `--verify-report PATH` (and `--uplink local:verify`) every
//! one of these signals first writes the engine's verification report to
//! PATH.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use crate::counters::Counters;

/// CPU microseconds this process has used (user + system, every thread,
/// including threads that have ended), from getrusage.
pub fn process_cpu_us() -> u64 {
    // SAFETY: rusage is plain data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a pointer to a live rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0;
    }
    let us = |t: libc::timeval| {
        u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_usec).unwrap_or(0)
    };
    us(usage.ru_utime) + us(usage.ru_stime)
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

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data that sigemptyset initialises.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t owned by this frame.
    unsafe { libc::sigemptyset(&mut set) };
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1] {
        // SAFETY: `set` is initialised and `signal` is a valid signal number.
        unsafe { libc::sigaddset(&mut set, signal) };
    }
    set
}

/// Blocks SIGTERM, SIGINT and SIGUSR1 in the calling thread; threads started
/// afterwards inherit the mask. Call first thing in `main`, before any
/// thread exists, so that only [`report_counters_on_signals`] receives them.
pub fn block() -> std::io::Result<()> {
    let set = signal_set();
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Handles the signals blocked by [`block`] on a thread of their own:
/// SIGUSR1 prints the counters, SIGTERM and SIGINT print them and exit.
pub fn report_counters_on_signals(counters: Arc<Counters>) -> std::io::Result<()> {
    report_on_signals(counters, None)
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
    counters: Arc<Counters>,
    report: Option<ReportOnSignal>,
) -> std::io::Result<()> {
    let set = signal_set();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                let mut signal: libc::c_int = 0;
                // SAFETY: `set` and `signal` are valid for the call.
                let rc = unsafe { libc::sigwait(&set, &mut signal) };
                if rc != 0 {
                    continue;
                }
                if let Some(report) = &report {
                    write_report(report);
                }
                print_counters(&counters);
                if signal != libc::SIGUSR1 {
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

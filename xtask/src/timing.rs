//! Step durations and the summary table `cargo xtask test` ends with.
//!
//! The project must show how long its test command takes: CI allows 90
//! minutes on 2 cores, so every step is timed and the total is printed.

use std::fmt::Write as _;
use std::time::Duration;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The step succeeded.
    Passed,
    /// The step failed (and the run stopped there).
    Failed,
}

impl Outcome {
    /// The outcome of a step that returned `result`.
    pub(crate) fn of<T, E>(result: &Result<T, E>) -> Self {
        if result.is_ok() {
            Self::Passed
        } else {
            Self::Failed
        }
    }
}

/// The steps run so far, in order, with their durations.
#[derive(Debug, Default)]
pub(crate) struct Timings {
    /// (step name, duration, outcome).
    rows: Vec<(String, Duration, Outcome)>,
}

impl Timings {
    /// Records one finished step.
    pub(crate) fn record(&mut self, step: &str, duration: Duration, outcome: Outcome) {
        self.rows.push((step.to_owned(), duration, outcome));
    }

    /// Sum of the recorded durations.
    pub(crate) fn total(&self) -> Duration {
        self.rows.iter().map(|(_, duration, _)| *duration).sum()
    }

    /// The summary table: one row per step, then the total.
    pub(crate) fn table(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|(step, _, _)| step.len())
            .chain(["step".len(), "total".len()])
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{:<width$}  {:>10}  result", "step", "time");
        let _ = writeln!(out, "{:-<width$}  {:->10}  ------", "", "");
        for (step, duration, outcome) in &self.rows {
            let result = match outcome {
                Outcome::Passed => "ok",
                Outcome::Failed => "FAILED",
            };
            let _ = writeln!(
                out,
                "{step:<width$}  {:>10}  {result}",
                format_duration(*duration)
            );
        }
        let _ = writeln!(out, "{:-<width$}  {:->10}  ------", "", "");
        let _ = writeln!(
            out,
            "{:<width$}  {:>10}",
            "total",
            format_duration(self.total())
        );
        out
    }
}

/// `12.3s` under a minute, `4m 05.6s` above; tenths of a second.
pub(crate) fn format_duration(duration: Duration) -> String {
    let tenths = duration.as_millis() / 100;
    let (minutes, tenths) = (tenths / 600, tenths % 600);
    let (seconds, tenth) = (tenths / 10, tenths % 10);
    if minutes == 0 {
        format!("{seconds}.{tenth}s")
    } else {
        format!("{minutes}m {seconds:02}.{tenth}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::ZERO), "0.0s");
        assert_eq!(format_duration(Duration::from_millis(12_345)), "12.3s");
        assert_eq!(format_duration(Duration::from_millis(59_999)), "59.9s");
        assert_eq!(format_duration(Duration::from_secs(60)), "1m 00.0s");
        assert_eq!(format_duration(Duration::from_millis(245_600)), "4m 05.6s");
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m 00.0s");
    }

    #[test]
    fn outcome_follows_the_result() {
        assert_eq!(Outcome::of(&Ok::<(), ()>(())), Outcome::Passed);
        assert_eq!(Outcome::of(&Err::<(), ()>(())), Outcome::Failed);
    }

    #[test]
    fn table_lists_steps_and_total() {
        let mut timings = Timings::default();
        timings.record("setup", Duration::from_secs(2), Outcome::Passed);
        timings.record("cargo clippy", Duration::from_secs(70), Outcome::Failed);
        assert_eq!(timings.total(), Duration::from_secs(72));
        let table = timings.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 6, "{table}");
        assert!(
            lines[2].starts_with("setup ") && lines[2].ends_with("2.0s  ok"),
            "{table}"
        );
        assert!(lines[3].ends_with("1m 10.0s  FAILED"), "{table}");
        assert!(
            lines[5].starts_with("total") && lines[5].ends_with("1m 12.0s"),
            "{table}"
        );
    }
}

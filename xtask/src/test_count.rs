//! Counting the tests `cargo test` ran, from the `test result:` lines.
//!
//! `cargo test --workspace` prints one `test result:` line per test binary
//! (and per doc-test run), the last of which often reads "0 passed" for a
//! crate without doc-tests. `cargo xtask test` adds them up and closes with
//! one plain `tests: N passed, N failed, N skipped` line, so a reader of the
//! log (person or CI) sees at once how many tests ran in all.

/// Totals over all `test result:` lines seen.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TestCounts {
    /// Tests that passed.
    pub(crate) passed: u64,
    /// Tests that failed.
    pub(crate) failed: u64,
    /// Tests marked `#[ignore]` (not run).
    pub(crate) ignored: u64,
    /// How many `test result:` lines were seen.
    pub(crate) binaries: u64,
    /// Tests that returned early because a tool was missing (outside CI):
    /// libtest counted them as passed.
    pub(crate) skipped: u64,
}

impl TestCounts {
    /// Adds the counts of one output line if it is a `test result:` line.
    pub(crate) fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        self.binaries += 1;
        // "ok. 27 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"
        let counts = rest.split_once(". ").map_or(rest, |(_, counts)| counts);
        for part in counts.split(';') {
            let mut words = part.split_whitespace();
            let (Some(number), Some(word)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            match word {
                "passed" => self.passed += number,
                "failed" => self.failed += number,
                "ignored" => self.ignored += number,
                _ => {}
            }
        }
    }

    /// Moves `n` tests that skipped themselves from passed to skipped.
    pub(crate) fn count_skipped(&mut self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX).min(self.passed);
        self.passed -= n;
        self.skipped += n;
    }

    /// The closing line, e.g. `tests: 120 passed, 0 failed, 3 skipped`
    /// (skipped: `#[ignore]`d tests and tests that skipped themselves).
    pub(crate) fn summary_line(&self) -> String {
        format!(
            "tests: {} passed, {} failed, {} skipped",
            self.passed,
            self.failed,
            self.ignored + self.skipped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_result_lines_and_ignores_the_rest() {
        let mut counts = TestCounts::default();
        for line in [
            "running 27 tests",
            "test setup::tests::apt_command_lines ... ok",
            "test result: ok. 27 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s",
            "",
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.20s",
            "   Doc-tests mediaredir_proto",
            "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
        ] {
            counts.add_line(line);
        }
        assert_eq!(
            counts,
            TestCounts {
                passed: 30,
                failed: 2,
                ignored: 1,
                binaries: 3,
                skipped: 0,
            }
        );
        assert_eq!(
            counts.summary_line(),
            "tests: 30 passed, 2 failed, 1 skipped"
        );
    }

    #[test]
    fn self_skipped_tests_are_not_counted_as_passed() {
        let mut counts = TestCounts::default();
        counts.add_line("test result: ok. 10 passed; 0 failed; 1 ignored; 0 measured");
        counts.count_skipped(2);
        assert_eq!(
            counts.summary_line(),
            "tests: 8 passed, 0 failed, 3 skipped"
        );
    }

    #[test]
    fn a_test_named_like_a_result_line_does_not_count() {
        let mut counts = TestCounts::default();
        counts.add_line("test test_result_parsing ... ok");
        assert_eq!(counts, TestCounts::default());
    }
}

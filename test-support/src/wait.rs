//! Polling until a condition holds, for tests that watch another process.

use std::time::{Duration, Instant};

/// Polls `f` every 50 ms for up to `secs` seconds; whether it became true
/// (it is tried once more at the deadline).
pub fn until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_when_true_and_tries_at_the_deadline() {
        let mut n = 0;
        assert!(until(5, || {
            n += 1;
            n == 3
        }));
        assert_eq!(n, 3);
        assert!(!until(0, || false));
    }
}

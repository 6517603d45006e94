//! Rate-limited warnings for problems caused by guest or client input.
//!
//! A guest can submit malformed chains as fast as it likes; logging each
//! one would let it fill the host's disk (spec DEV-SEC-9). At most
//! [`BURST`] such warnings are logged per second; the rest are counted and
//! reported in one line when logging resumes.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Warnings logged per one-second window.
pub const BURST: u32 = 20;

struct Window {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

static WINDOW: Mutex<Option<Window>> = Mutex::new(None);

/// Whether a warning may be logged now; logs how many were suppressed when a
/// new window opens.
pub fn allow() -> bool {
    let mut guard = WINDOW.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    let window = guard.get_or_insert(Window {
        start: now,
        logged: 0,
        suppressed: 0,
    });
    if now.duration_since(window.start) >= Duration::from_secs(1) {
        if window.suppressed > 0 {
            log::warn!("{} similar warnings suppressed", window.suppressed);
        }
        *window = Window {
            start: now,
            logged: 0,
            suppressed: 0,
        };
    }
    if window.logged < BURST {
        window.logged += 1;
        true
    } else {
        window.suppressed += 1;
        false
    }
}

/// `log::warn!` for input-caused problems, rate-limited.
#[macro_export]
macro_rules! input_warn {
    ($($arg:tt)*) => {
        if $crate::ratelimit::allow() {
            log::warn!($($arg)*);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_are_bounded() {
        let allowed = (0..1000).filter(|_| allow()).count();
        assert!(
            allowed <= BURST as usize,
            "{allowed} warnings logged in one burst"
        );
    }
}

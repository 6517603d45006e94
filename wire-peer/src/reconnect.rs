//! Reconnection: a peer whose connection ends connects again after a delay
//! that doubles with each failure up to a bound and starts over after a
//! connection that ended cleanly, so a daemon that restarts is found again
//! quickly and one that is gone is not hammered.

use std::fmt::Display;
use std::time::Duration;

/// Delays between connection attempts: `first`, doubling up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// `first`, then twice as long after each failure, at most `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay before the next attempt; the one after is longer.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// A connection went well: the next delay is the first again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Runs `session` (connect, then serve until the connection ends) again and
/// again, waiting `backoff`'s delay in between, until `again` says no after
/// a session. A session that ends `Ok` resets the back-off; an error is
/// logged (alternate form: with its causes).
pub fn reconnect_loop<E: Display>(
    mut backoff: Backoff,
    mut session: impl FnMut() -> Result<(), E>,
    mut again: impl FnMut() -> bool,
) {
    loop {
        match session() {
            Ok(()) => {
                log::info!("connection closed");
                backoff.reset();
            }
            Err(e) => log::warn!("{e:#}"),
        }
        if !again() {
            return;
        }
        let delay = backoff.next_delay();
        log::info!("reconnecting in {delay:?}");
        std::thread::sleep(delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_bound_and_reset() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(500), ms(5000));
        let got: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(
            got,
            [ms(500), ms(1000), ms(2000), ms(4000), ms(5000), ms(5000)]
        );
        b.reset();
        assert_eq!(b.next_delay(), ms(500));
    }

    #[test]
    fn the_loop_retries_until_told_to_stop() {
        let runs = std::cell::Cell::new(0);
        let mut results = vec![Ok(()), Err("refused"), Err("refused")].into_iter();
        reconnect_loop(
            Backoff::new(Duration::from_millis(1), Duration::from_millis(2)),
            || {
                runs.set(runs.get() + 1);
                results.next().unwrap_or(Ok(()))
            },
            || runs.get() < 3,
        );
        assert_eq!(runs.get(), 3);
    }
}

//! A child process a test started, killed and reaped however the test ends.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Kills and reaps its process when dropped.
#[derive(Debug)]
pub struct Reaped(pub Child);

impl Reaped {
    /// The exit status, waiting at most `timeout` (`None`: still running;
    /// it is killed when dropped).
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait for a child process") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

//! A private X server for tests that draw.
//!
//! `Xvfb -displayfd` picks a free display number itself and writes it once
//! it accepts connections, so tests neither guess numbers nor poll, and
//! never depend on an X server or socket a previous run left behind. When
//! dropped, the server gets `SIGTERM`, on which it removes its socket and
//! lock file; if it had to be killed, the guard removes them itself.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::child::ChildGuard;

/// How long Xvfb may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `Xvfb`, stopped when dropped.
#[derive(Debug)]
pub struct Xvfb {
    guard: ChildGuard,
    number: u32,
}

impl Xvfb {
    /// Starts `Xvfb` with one screen of `width` x `height` at 24 bits.
    ///
    /// `-noreset`: an X server resets when its last client leaves and
    /// refuses connections meanwhile; screen grabbers come and go while a
    /// sink may be opening its display.
    pub fn start(width: u32, height: u32) -> std::io::Result<Self> {
        let mut guard = ChildGuard::spawn(
            Command::new("Xvfb")
                .args(["-displayfd", "1", "-noreset", "-nolisten", "tcp"])
                .args(["-screen", "0", &format!("{width}x{height}x24")])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )?;
        let stdout = guard.child_mut().stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let number = rx
            .recv_timeout(START_TIMEOUT)
            .ok()
            .and_then(|line| line.trim().parse::<u32>().ok());
        match number {
            Some(number) => Ok(Self { guard, number }),
            // The guard stops the server on the way out.
            None => Err(std::io::Error::other(format!(
                "Xvfb did not report a display within {} s",
                START_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The display name, e.g. `:99`, for `DISPLAY`.
    pub fn display(&self) -> String {
        format!(":{}", self.number)
    }

    /// The display number.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The server's socket and lock file.
    fn files(&self) -> [PathBuf; 2] {
        [
            PathBuf::from(format!("/tmp/.X11-unix/X{}", self.number)),
            PathBuf::from(format!("/tmp/.X{}-lock", self.number)),
        ]
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.guard.stop(Duration::from_secs(3));
        // After SIGTERM Xvfb has removed these; after SIGKILL it could not.
        for file in self.files() {
            let _ = std::fs::remove_file(file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::require::{Tool, require};

    #[test]
    fn starts_on_a_free_display_and_leaves_nothing() {
        if !require(
            "test_support::xvfb::starts_on_a_free_display_and_leaves_nothing",
            &[Tool {
                program: "Xvfb",
                package: "xvfb",
            }],
        ) {
            return;
        }
        let x = Xvfb::start(64, 48).unwrap();
        let files = x.files();
        assert!(files[0].exists(), "no socket {}", files[0].display());
        let pid = x.guard.id();
        drop(x);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        for file in files {
            assert!(!file.exists(), "{} left behind", file.display());
        }
    }
}

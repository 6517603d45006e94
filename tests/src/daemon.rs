//! The real daemon binary as a child process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use test_support::Signal;

/// A running `vhost-user-mediaredir` process.
#[derive(Debug)]
pub struct DaemonProcess {
    child: Child,
    socket: PathBuf,
    stdout: Receiver<String>,
}

/// Counters the daemon reports (`counters:` line).
pub type Counters = std::collections::BTreeMap<String, u64>;

fn parse_counters(line: &str) -> Option<Counters> {
    let rest = line.split("counters: ").nth(1)?;
    rest.split_whitespace()
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

impl DaemonProcess {
    /// Starts the daemon binary at `binary` on `socket` with extra `args`,
    /// and waits until the vhost-user socket exists.
    pub fn start(binary: &Path, socket: &Path, args: &[&str]) -> DaemonProcess {
        DaemonProcess::start_logging(binary, socket, args, None)
    }

    /// [`DaemonProcess::start`], with the daemon's log (its stderr)
    /// appended to `log` instead of the test's stderr.
    pub fn start_logging(
        binary: &Path,
        socket: &Path,
        args: &[&str],
        log: Option<&Path>,
    ) -> DaemonProcess {
        let stderr = match log {
            Some(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(Stdio::from)
                .expect("open the daemon's log"),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(binary)
            .arg("--socket-path")
            .arg(socket)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start vhost-user-mediaredir");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "daemon did not create {}",
                socket.display()
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!("daemon exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        DaemonProcess {
            child,
            socket: socket.to_path_buf(),
            stdout: rx,
        }
    }

    /// The process id (for /proc readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The vhost-user socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn signal(&self, signal: Signal) {
        test_support::signal(&self.child, signal);
    }

    fn next_counters(&self) -> Counters {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stdout
                .recv_timeout(left)
                .expect("daemon printed no counters");
            if let Some(counters) = parse_counters(&line) {
                return counters;
            }
        }
    }

    /// The daemon's counters now (SIGUSR1).
    pub fn counters(&self) -> Counters {
        self.signal(Signal::USR1);
        self.next_counters()
    }

    /// Stops the daemon (SIGTERM) and returns its final counters.
    pub fn stop(mut self) -> Counters {
        self.signal(Signal::TERM);
        let counters = self.next_counters();
        let _ = self.child.wait();
        counters
    }

    /// Kills the daemon outright (a crash).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counter_lines() {
        let c = parse_counters("[INFO] counters: buffers=3 payload_bytes_copied=0").unwrap();
        assert_eq!(c["buffers"], 3);
        assert_eq!(c["payload_bytes_copied"], 0);
        assert!(parse_counters("no counters here").is_none());
    }
}

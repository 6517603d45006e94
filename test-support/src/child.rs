//! A child process that is terminated and reaped on every exit path.
//!
//! A test that panics halfway must not leave a daemon, a client or an X
//! server running: the guard's `Drop` runs during unwinding too. It asks
//! politely first (`SIGTERM`, so an X server removes its socket and a
//! daemon prints its counters), then kills (`SIGKILL`) after a grace
//! period, and always waits, so no zombie is left either.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// How long [`ChildGuard`]'s `Drop` waits after `SIGTERM`.
const DROP_GRACE: Duration = Duration::from_secs(3);

/// Owns a child process; terminates and reaps it when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    /// Spawns `cmd` under a guard.
    pub fn spawn(cmd: &mut Command) -> io::Result<Self> {
        cmd.spawn().map(Self::new)
    }

    /// Guards a child already started.
    pub fn new(child: Child) -> Self {
        Self { child: Some(child) }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The child, e.g. to take its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("the child is owned until stopped")
    }

    /// Whether it has exited (and its status), without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child_mut().try_wait()
    }

    /// Waits for it to exit by itself, at most `timeout`; `None` if it is
    /// still running then (it stays guarded).
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `SIGTERM`, waits up to `grace`, then `SIGKILL`s; always reaps.
    /// Returns the exit status.
    pub fn stop(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        let child = self.child_mut();
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        signal(child, Signal::TERM);
        if let Some(status) = self.wait_timeout(grace)? {
            return Ok(status);
        }
        let child = self.child_mut();
        let _ = child.kill();
        child.wait()
    }

    /// Gives the child up without stopping it (the caller waits for it).
    pub fn into_inner(mut self) -> Child {
        self.child.take().expect("the child is owned until stopped")
    }
}

/// Sends `signal` to `child`, which must not be reaped yet (so that its
/// pid is still its own); a child that already exited is not an error.
pub fn signal(child: &Child, signal: Signal) {
    if let Some(pid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, signal);
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop(DROP_GRACE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    #[test]
    fn drop_terminates_and_reaps() {
        let guard = ChildGuard::spawn(Command::new("sleep").arg("60")).unwrap();
        let pid = guard.id();
        assert!(alive(pid));
        drop(guard);
        // Reaped: no process (not even a zombie) with that pid of ours.
        assert!(!alive(pid), "sleep {pid} survived its guard");
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn drop_during_a_panic_still_reaps() {
        let pid = std::panic::catch_unwind(|| {
            let guard = ChildGuard::spawn(Command::new("sleep").arg("60")).unwrap();
            let pid = guard.id();
            std::panic::panic_any(pid);
        })
        .unwrap_err()
        .downcast::<u32>()
        .unwrap();
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_child_ignoring_sigterm_is_killed() {
        let mut guard =
            ChildGuard::spawn(Command::new("sh").args(["-c", "trap '' TERM; exec sleep 60"]))
                .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let status = guard.stop(Duration::from_millis(200)).unwrap();
        assert!(!status.success());
    }
}

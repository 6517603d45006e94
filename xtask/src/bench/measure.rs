//! What the bench measures of a process: CPU seconds of a child (from
//! `wait4`'s resource usage: every thread, microsecond steps) or of a
//! running process (`/proc/PID/stat`, clock ticks) and bytes a running
//! process wrote (`/proc/PID/io`). The daemon reports its own CPU
//! (getrusage) in its `rusage:` line, which the demo code reads.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::process;

/// CPU time and wall time of a finished child.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Usage {
    /// User plus system CPU seconds of the child (all its threads, and its
    /// own children that it waited for).
    pub(crate) cpu_s: f64,
    /// Wall-clock seconds from start to exit.
    pub(crate) wall_s: f64,
}

/// Waits for `child` and returns its exit status and CPU seconds.
pub(crate) fn wait_usage(child: &mut Child) -> Result<(ExitStatus, f64)> {
    let pid = libc::pid_t::try_from(child.id()).context("child pid")?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std's `Child`
        // reaps only in `wait`/`try_wait`, which we do not call before
        // this); the pointers are to live locals of the right types.
        let ret = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if ret == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = secs(usage.ru_utime) + secs(usage.ru_stime);
    use std::os::unix::process::ExitStatusExt as _;
    Ok((ExitStatus::from_raw(status), cpu))
}

/// Runs `cmd` (stdout and stderr discarded unless inherited by the caller)
/// and returns its CPU and wall time; fails unless it exits with 0.
pub(crate) fn run_measured(cmd: &mut Command) -> Result<Usage> {
    let line = process::display(cmd);
    println!("bench: $ {line}");
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start `{line}`"))?;
    let (status, cpu_s) = wait_usage(&mut child)?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(Usage {
        cpu_s,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// The value of `key` (`wchar`, `VmRSS`, ...) in a `key: value` file of
/// /proc, as a number (the first word of the value).
pub(crate) fn proc_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == key)
        .and_then(|(_, v)| v.split_whitespace().next()?.parse().ok())
}

/// Bytes the process has written through write-like system calls so far
/// (`wchar` of `/proc/PID/io`: sockets, pipes, files and eventfds).
pub(crate) fn process_wchar(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/io");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    proc_field(&text, "wchar").with_context(|| format!("no wchar in {path}"))
}

/// User plus system CPU seconds `pid` has used so far, every thread
/// (`utime` + `stime` of `/proc/PID/stat`, in clock ticks): the figure of a
/// process that does not exit when the measurement ends.
pub(crate) fn process_cpu_s(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ticks = stat_cpu_ticks(&stat).with_context(|| format!("no utime/stime in {path}"))?;
    // SAFETY: sysconf has no preconditions; it reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    Ok(ticks as f64 / hz)
}

/// `utime` + `stime` (fields 14 and 15) of a `/proc/PID/stat` line; the
/// fields are counted after the last `)`, as the name may hold spaces.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Whether `pid` (a child not reaped yet) has exited: a zombie, or gone.
pub(crate) fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| crate::reaper::parse_stat(&s))
        .is_none_or(|(_, state, _)| matches!(state, 'Z' | 'X'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields() {
        let io = "rchar: 10\nwchar: 4096\nsyscr: 3\n";
        assert_eq!(proc_field(io, "wchar"), Some(4096));
        let status = "Name:\tx\nVmRSS:\t   2048 kB\n";
        assert_eq!(proc_field(status, "VmRSS"), Some(2048));
        assert_eq!(proc_field(status, "VmHWM"), None);
    }

    #[test]
    fn cpu_ticks_of_a_stat_line() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 3 0";
        assert_eq!(stat_cpu_ticks(stat), Some(280));
        assert_eq!(stat_cpu_ticks("42 (x) S 1"), None);
        assert!(process_cpu_s(std::process::id()).unwrap() >= 0.0);
        assert!(!exited(std::process::id()));
    }

    #[test]
    fn a_child_that_spins_uses_cpu_and_our_own_counters_read() {
        let usage = run_measured(
            Command::new("sh").args(["-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"]),
        )
        .unwrap();
        assert!(usage.cpu_s > 0.0, "{usage:?}");
        assert!(usage.wall_s > 0.0);
        assert!(process_wchar(std::process::id()).is_ok());
        assert!(run_measured(&mut Command::new("false")).is_err());
    }
}

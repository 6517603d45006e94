//! What the bench measures of a process: CPU seconds (of a child, from
//! `wait4`'s resource usage; of a running process, from `/proc/PID/stat`),
//! and bytes it wrote (`/proc/PID/io`).

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

/// Clock ticks per second of `/proc/PID/stat` times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// utime + stime of a running process, in seconds, from the text of
/// `/proc/PID/stat`.
pub(crate) fn parse_stat_cpu(stat: &str, ticks: f64) -> Option<f64> {
    // The command name is in parentheses and may hold spaces: fields are
    // counted after the last ')'. utime and stime are fields 14 and 15,
    // that is the 12th and 13th after the state.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// CPU seconds a running process has used so far, from `/proc/PID/stat`
/// (clock ticks: 10 ms steps; includes threads that have exited).
pub(crate) fn process_cpu_s(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu(&text, clock_ticks()).with_context(|| format!("parsing {path}"))
}

/// CPU seconds of the live threads of a process, in nanosecond steps: the
/// first field of each `/proc/PID/task/TID/schedstat` (threads that have
/// exited are no longer there).
pub(crate) fn threads_cpu_s(pid: u32) -> Result<f64> {
    let dir = format!("/proc/{pid}/task");
    let mut ns = 0u64;
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let path = entry?.path().join("schedstat");
        // A thread that ends between the listing and the read is skipped.
        if let Ok(text) = std::fs::read_to_string(&path) {
            ns += text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(ns as f64 / 1e9)
}

/// A reading of a running process's CPU, both ways.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CpuProbe {
    /// From `/proc/PID/stat`.
    stat_s: f64,
    /// From the live threads' `schedstat`.
    threads_s: f64,
}

/// Reads a running process's CPU.
pub(crate) fn probe(pid: u32) -> Result<CpuProbe> {
    Ok(CpuProbe {
        stat_s: process_cpu_s(pid)?,
        threads_s: threads_cpu_s(pid)?,
    })
}

impl CpuProbe {
    /// CPU seconds used from `self` to `later`: the nanosecond figure of
    /// the threads, unless threads that exited in between took more than
    /// two clock ticks, which only the coarser `/proc/PID/stat` counts.
    pub(crate) fn until(&self, later: &CpuProbe) -> f64 {
        let fine = (later.threads_s - self.threads_s).max(0.0);
        let coarse = (later.stat_s - self.stat_s).max(0.0);
        if coarse > fine + 2.0 / clock_ticks() {
            coarse
        } else {
            fine
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_skips_a_command_name_with_spaces() {
        let stat = "1234 (a b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        assert_eq!(parse_stat_cpu(stat, 100.0), Some(3.0));
        assert_eq!(parse_stat_cpu("garbage", 100.0), None);
    }

    #[test]
    fn proc_fields() {
        let io = "rchar: 10\nwchar: 4096\nsyscr: 3\n";
        assert_eq!(proc_field(io, "wchar"), Some(4096));
        let status = "Name:\tx\nVmRSS:\t   2048 kB\n";
        assert_eq!(proc_field(status, "VmRSS"), Some(2048));
        assert_eq!(proc_field(status, "VmHWM"), None);
    }

    #[test]
    fn a_child_that_spins_uses_cpu_and_our_own_counters_read() {
        let usage = run_measured(
            Command::new("sh").args(["-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"]),
        )
        .unwrap();
        assert!(usage.cpu_s > 0.0, "{usage:?}");
        assert!(usage.wall_s > 0.0);
        let me = std::process::id();
        assert!(process_cpu_s(me).unwrap() >= 0.0);
        let a = probe(me).unwrap();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 50 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let b = probe(me).unwrap();
        assert!(a.until(&b) > 0.02, "{a:?} {b:?}");
        assert!(b.until(&a) >= 0.0);
        assert!(process_wchar(me).is_ok());
        assert!(run_measured(&mut Command::new("false")).is_err());
    }
}

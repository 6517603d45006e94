//! Finding and ending the processes a task left behind.
//!
//! A test that forgets to reap its daemon, or a run cut short, must not
//! leave processes that the next run trips over (a busy socket, an X
//! server). `cargo xtask` makes itself a *child subreaper*
//! (`PR_SET_CHILD_SUBREAPER`): every process it starts, directly or through
//! cargo and the test binaries, that outlives its own parent is re-parented
//! to xtask instead of to init. So after each step, any child xtask did not
//! start itself is a leak: [`end_leftovers`] names it, stops it and reaps
//! it, and the caller fails the step.
//!
//! The process table is read from `/proc` (Linux only, as is the project).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustix::process::{Pid, Signal, WaitOptions};

/// One process found in `/proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessInfo {
    /// Its pid.
    pub(crate) pid: i32,
    /// Its parent's pid.
    pub(crate) ppid: i32,
    /// Its state letter (`Z`: a zombie, exited but not reaped).
    pub(crate) state: char,
    /// Its command line (or its name in brackets when it has none).
    pub(crate) command: String,
}

impl std::fmt::Display for ProcessInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} `{}`", self.pid, self.command)
    }
}

/// Makes this process the subreaper of everything it starts.
pub(crate) fn become_subreaper() -> Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .context("prctl(PR_SET_CHILD_SUBREAPER)")
}

/// Parses `/proc/PID/stat`: `pid (comm) state ppid ...`. The name may hold
/// spaces and parentheses, so the fields are read after the last `)`.
pub(crate) fn parse_stat(stat: &str) -> Option<(String, char, i32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut fields = stat.get(close + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((name, state, ppid))
}

/// Every process now in `/proc` (those that vanish while it is read are
/// left out).
fn processes() -> Vec<ProcessInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let dir = entry.path();
        let Some((name, state, ppid)) = std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
        else {
            continue;
        };
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let words: Vec<String> = cmdline
            .split(|&b| b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let command = if words.is_empty() {
            format!("[{name}]")
        } else {
            words.join(" ")
        };
        found.push(ProcessInfo {
            pid,
            ppid,
            state,
            command,
        });
    }
    found
}

/// The processes below `root` in `table` (children, their children, ...).
pub(crate) fn descendants_in(table: &[ProcessInfo], root: i32) -> Vec<ProcessInfo> {
    let mut out: Vec<ProcessInfo> = Vec::new();
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for p in table.iter().filter(|p| p.ppid == parent) {
            if !out.iter().any(|o| o.pid == p.pid) {
                parents.push(p.pid);
                out.push(p.clone());
            }
        }
    }
    out
}

/// The live processes below this one.
pub(crate) fn descendants() -> Vec<ProcessInfo> {
    descendants_in(&processes(), own_pid())
}

/// Reaps the zombies among this process's own children, without blocking.
/// Called only when xtask is not waiting for a child of its own.
fn reap_zombies() {
    while let Ok(Some(_)) = rustix::process::waitpid(None, WaitOptions::NOHANG) {}
}

/// Ends everything still running below this process: names it, sends
/// `SIGTERM`, then `SIGKILL` after `grace`, and reaps it. Returns what was
/// running (empty when nothing leaked). Only call it between steps, when
/// xtask itself waits for no child.
pub(crate) fn end_leftovers(grace: Duration) -> Vec<ProcessInfo> {
    reap_zombies();
    let leftovers: Vec<ProcessInfo> = descendants()
        .into_iter()
        .filter(|p| p.state != 'Z')
        .collect();
    end(&leftovers, grace);
    reap_zombies();
    leftovers
}

/// Sends `signal` to every live descendant (on Ctrl-C: the test binaries
/// and what they started).
pub(crate) fn signal_descendants(signal: Signal) {
    for p in descendants() {
        send(&p, signal);
    }
}

fn send(p: &ProcessInfo, signal: Signal) {
    if p.state != 'Z'
        && let Some(pid) = Pid::from_raw(p.pid)
    {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Whether `p` has gone; reaps it first if it is a child of this process
/// (a zombie child of another process is that process's to reap).
fn gone(p: &ProcessInfo) -> bool {
    if p.ppid == own_pid()
        && let Some(pid) = Pid::from_raw(p.pid)
    {
        let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
    }
    std::fs::read_to_string(format!("/proc/{}/stat", p.pid))
        .ok()
        .and_then(|s| parse_stat(&s))
        .is_none_or(|(_, state, ppid)| state == 'Z' && ppid != own_pid())
}

fn own_pid() -> i32 {
    i32::try_from(std::process::id()).unwrap_or(i32::MAX)
}

/// Stops the given processes: `SIGTERM`, `SIGKILL` after `grace`; reaps
/// those that are this process's children.
pub(crate) fn end(procs: &[ProcessInfo], grace: Duration) {
    for p in procs {
        send(p, Signal::TERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !procs.iter().all(gone) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in procs.iter().filter(|p| !gone(p)) {
        send(p, Signal::KILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !procs.iter().all(gone) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The X server sockets in `/tmp/.X11-unix` now.
pub(crate) fn x_sockets() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/tmp/.X11-unix")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Removes the X sockets (and their lock files) that are not in `before`:
/// a server started during the run and not stopped cleanly. Returns them.
pub(crate) fn remove_new_x_sockets(before: &[String]) -> Vec<String> {
    let mut removed = Vec::new();
    for name in x_sockets() {
        if before.contains(&name) {
            continue;
        }
        let _ = std::fs::remove_file(Path::new("/tmp/.X11-unix").join(&name));
        if let Some(number) = name.strip_prefix('X') {
            let _ = std::fs::remove_file(format!("/tmp/.X{number}-lock"));
        }
        removed.push(format!("/tmp/.X11-unix/{name}"));
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn stat_lines_are_parsed() {
        assert_eq!(
            parse_stat("1234 (Xvfb) S 99 1234 1234 0 -1"),
            Some(("Xvfb".into(), 'S', 99))
        );
        // Names with spaces and parentheses.
        assert_eq!(
            parse_stat("7 (a (b) c) Z 1 7 7"),
            Some(("a (b) c".into(), 'Z', 1))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn descendants_follow_the_tree() {
        let p = |pid, ppid| ProcessInfo {
            pid,
            ppid,
            state: 'S',
            command: String::new(),
        };
        let table = [p(10, 1), p(11, 10), p(12, 11), p(13, 1), p(14, 10)];
        let mut pids: Vec<i32> = descendants_in(&table, 10).iter().map(|p| p.pid).collect();
        pids.sort_unstable();
        assert_eq!(pids, [11, 12, 14]);
    }

    /// What `cargo xtask test` checks after each step: a process that
    /// outlives the program that started it is found, named and ended.
    /// Here `sh` starts `sleep` in the background and exits; as subreaper
    /// this test process inherits the orphan, and `end_leftovers` must
    /// report it; without the subreaper (or with a broken scan) the orphan
    /// would go to init unseen and this test fails.
    #[test]
    fn an_orphaned_child_is_found_and_ended() {
        become_subreaper().unwrap();
        let out = Command::new("sh")
            .args(["-c", "sleep 120 >/dev/null 2>&1 & echo $!"])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        let orphan: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let me = i32::try_from(std::process::id()).unwrap();
        let table = processes();
        let found = table
            .iter()
            .find(|p| p.pid == orphan)
            .expect("orphan in /proc");
        assert_eq!(
            found.ppid, me,
            "the orphan was not re-parented to the subreaper"
        );
        // Other tests of this binary run children concurrently: end only
        // the orphan (xtask ends every leftover, between steps).
        let leftovers: Vec<ProcessInfo> = descendants()
            .into_iter()
            .filter(|p| p.pid == orphan)
            .collect();
        assert_eq!(leftovers.len(), 1, "the orphan is not seen as a descendant");
        assert!(leftovers[0].command.contains("sleep 120"), "{leftovers:?}");
        end(&leftovers, Duration::from_secs(2));
        assert!(
            !Path::new(&format!("/proc/{orphan}")).exists(),
            "not reaped"
        );
    }
}

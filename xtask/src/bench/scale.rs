//! Scale: N concurrent 1080p streams through one daemon, run by the
//! `bench-scale` binary of the conformance-tests crate (which links the
//! guest driver and the wire client; xtask links neither), one JSON line
//! per N read back here.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::process;

/// One N of the scale run: the keys of a `bench-scale` line that the
/// report uses (the others are ignored).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct ScalePoint {
    /// Concurrent streams.
    pub(crate) streams: u64,
    /// Media seconds per stream.
    pub(crate) seconds: f64,
    /// Daemon CPU seconds over the run.
    pub(crate) daemon_cpu_s: f64,
    /// Daemon resident memory before the first frame.
    pub(crate) rss_idle_bytes: u64,
    /// Daemon resident memory, the highest seen during the run.
    pub(crate) rss_bytes: u64,
    /// Median latency guest-queue -> client-receive, µs.
    pub(crate) p50_us: u64,
    /// 99th percentile of it, µs.
    pub(crate) p99_us: u64,
    /// Frames sent (all streams).
    pub(crate) frames: u64,
}

impl ScalePoint {
    /// Daemon CPU seconds per media second per stream.
    pub(crate) fn cpu_per_stream(&self) -> f64 {
        self.daemon_cpu_s / self.seconds / self.streams as f64
    }

    /// Resident memory per stream above the idle daemon's.
    pub(crate) fn rss_per_stream(&self) -> f64 {
        self.rss_bytes.saturating_sub(self.rss_idle_bytes) as f64 / self.streams as f64
    }
}

/// Parses one line of `bench-scale` (None: not one of its JSON lines).
pub(crate) fn parse_line(line: &str) -> Option<ScalePoint> {
    serde_json::from_str(line).ok()
}

/// Runs `bench-scale` from `bin` for each of `streams`, `seconds` each.
pub(crate) fn measure(bin: &Path, streams: &[u32], seconds: u32) -> Result<Vec<ScalePoint>> {
    let list: Vec<String> = streams.iter().map(u32::to_string).collect();
    let mut cmd = Command::new(bin.join("bench-scale"));
    cmd.arg("--daemon")
        .arg(bin.join("vhost-user-mediaredir"))
        .arg("--streams")
        .arg(list.join(","))
        .arg("--seconds")
        .arg(seconds.to_string())
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    println!("bench: $ {}", process::display(&cmd));
    let out = cmd.output().context("running bench-scale")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let points: Vec<ScalePoint> = text.lines().filter_map(parse_line).collect();
    for line in text.lines() {
        println!("bench-scale: {line}");
    }
    if !out.status.success() || points.len() != streams.len() {
        bail!("bench-scale failed ({})", out.status);
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_line_and_divides_per_stream() {
        let line = "{\"streams\":8,\"seconds\":2.000,\"wall_s\":1.99,\"frames\":480,\
                    \"received\":480,\"daemon_cpu_s\":0.0800,\"rss_idle_bytes\":1000,\
                    \"rss_bytes\":9000,\"p50_us\":253,\"p99_us\":33910,\"max_us\":1,\
                    \"payload_bytes\":5}";
        let p = parse_line(line).unwrap();
        assert_eq!((p.streams, p.p99_us, p.frames), (8, 33910, 480));
        assert!((p.cpu_per_stream() - 0.005).abs() < 1e-12);
        assert_eq!(p.rss_per_stream(), 1000.0);
        assert!(parse_line("daemon: hello").is_none());
    }
}

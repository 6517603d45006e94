//! The demo's verdict: one line of JSON a script can read (serde_json),
//! and the readers of the `key=N` counter lines and the JSON lines the
//! demo's programs print.

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};
use serde::Serialize;

/// The result of a demo run: the last stdout line, as JSON (keys in the
/// order of the fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Summary {
    /// Everything worked and the output is bit-exact.
    pub(crate) ok: bool,
    /// The clip played.
    pub(crate) input: String,
    /// `local`, `unix`, `tcp`, `tls`, `spice` or `qemu-spice`.
    pub(crate) uplink: String,
    /// `redir-play` or `sink`.
    pub(crate) player: String,
    /// Streams in the client's report.
    pub(crate) streams: u64,
    /// Video frames the client decoded.
    pub(crate) video_frames_decoded: u64,
    /// Audio samples (per channel) the client decoded.
    pub(crate) audio_buffers_decoded: u64,
    /// The client's output equals a local decode of the file.
    pub(crate) bit_exact: bool,
    /// Payload bytes the daemon forwarded (its `counters:` line).
    pub(crate) payload_bytes: u64,
    /// Payload bytes the daemon copied (0: zero copy).
    pub(crate) payload_bytes_copied: u64,
    /// Bytes the daemon's uplink wrote to the client (its `wire_bytes`
    /// counter: frame headers and payloads).
    pub(crate) wire_bytes: u64,
    /// Bytes the daemon wrote through write-like system calls while the
    /// clip played (`wchar` of /proc/PID/io: the uplink socket including
    /// Spice's own framing, plus eventfd kicks and logs).
    pub(crate) daemon_wchar: u64,
    /// CPU the daemon used while the clip played, in microseconds.
    pub(crate) daemon_cpu_us: u64,
    /// CPU the player used (redir-play with its in-process broker, or
    /// redir-gst-play without the broker), in microseconds.
    pub(crate) player_cpu_us: u64,
    /// `qemu-spice`: CPU QEMU used while the clip played beyond its idle
    /// rate (its relay and Spice server), in microseconds; 0 on the other
    /// uplinks.
    pub(crate) qemu_cpu_us: u64,
    /// `qemu-spice`: bytes QEMU wrote while the clip played (to the Spice
    /// client, and acknowledgements to the daemon); 0 on the other uplinks.
    pub(crate) qemu_wchar: u64,
    /// From starting the daemon to the verdict, in milliseconds.
    pub(crate) elapsed_ms: u64,
}

impl Summary {
    /// Ends a run that started at `t0` with `result`: the verdict, printed
    /// as the last stdout line; an error unless the run was bit-exact.
    pub(crate) fn conclude(
        mut self,
        result: &Result<()>,
        t0: Instant,
        log: Option<&Path>,
    ) -> Result<()> {
        self.elapsed_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Err(e) = result {
            println!("demo: FAILED: {e:#}");
        }
        self.ok = result.is_ok() && self.bit_exact && self.streams > 0;
        if !self.ok
            && let Some(log) = log
        {
            // What went wrong is in the components' log: its end here.
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            println!("demo: the last lines of {}:", log.display());
            for line in &lines[lines.len().saturating_sub(40)..] {
                println!("  {line}");
            }
        }
        println!("{}", self.human_line(log));
        println!("{}", self.to_json_line());
        if !self.ok {
            bail!("the demo failed");
        }
        Ok(())
    }

    /// One line for people: what played, where, bit-exact or not, bytes.
    pub(crate) fn human_line(&self, log: Option<&Path>) -> String {
        let name = Path::new(&self.input)
            .file_name()
            .map_or_else(|| self.input.clone(), |n| n.to_string_lossy().into_owned());
        format!(
            "demo: {name} ({} streams: {} video frames, {} audio buffers) played by {} over {}: \
             {}, {} payload bytes forwarded, {} copied, {:.1} s{}",
            self.streams,
            self.video_frames_decoded,
            self.audio_buffers_decoded,
            self.player,
            self.uplink,
            if self.bit_exact {
                "bit-exact"
            } else {
                "NOT bit-exact"
            },
            self.payload_bytes,
            self.payload_bytes_copied,
            self.elapsed_ms as f64 / 1000.0,
            log.map_or_else(String::new, |l| format!("; logs: {}", l.display()))
        )
    }

    /// One line of JSON, keys in a fixed order.
    pub(crate) fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a summary is plain data")
    }
}

/// The value of `key=N` in the daemon's `counters:` line.
pub(crate) fn counter(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

/// The value of `key` in the JSON object `json`, if `json` is one and
/// has it.
pub(crate) fn json_field(json: &str, key: &str) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()?
        .get(key)
        .cloned()
}

/// The value of `key` in the JSON object `json`, if it is `true`.
pub(crate) fn json_true(json: &str, key: &str) -> bool {
    json_field(json, key).and_then(|v| v.as_bool()) == Some(true)
}

/// The value of `key` in the JSON object `json`, if it is a whole number.
pub(crate) fn json_u64(json: &str, key: &str) -> Option<u64> {
    json_field(json, key)?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_one_json_line() {
        let summary = Summary {
            ok: true,
            input: "/tmp/a \"b\".webm".into(),
            uplink: "local".into(),
            player: "redir-play".into(),
            streams: 2,
            video_frames_decoded: 60,
            audio_buffers_decoded: 96000,
            bit_exact: true,
            payload_bytes: 12345,
            payload_bytes_copied: 0,
            wire_bytes: 12400,
            daemon_wchar: 13000,
            daemon_cpu_us: 5000,
            player_cpu_us: 6000,
            qemu_cpu_us: 0,
            qemu_wchar: 0,
            elapsed_ms: 789,
        };
        assert_eq!(
            summary.to_json_line(),
            "{\"ok\":true,\"input\":\"/tmp/a \\\"b\\\".webm\",\"uplink\":\"local\",\
             \"player\":\"redir-play\",\"streams\":2,\"video_frames_decoded\":60,\"audio_buffers_decoded\":96000,\
             \"bit_exact\":true,\"payload_bytes\":12345,\"payload_bytes_copied\":0,\
             \"wire_bytes\":12400,\"daemon_wchar\":13000,\"daemon_cpu_us\":5000,\
             \"player_cpu_us\":6000,\"qemu_cpu_us\":0,\"qemu_wchar\":0,\"elapsed_ms\":789}"
        );
        assert!(!summary.to_json_line().contains('\n'));
    }

    #[test]
    fn reads_counters_and_verify_json() {
        let line = "counters: streams_created=2 payload_bytes=100 payload_bytes_copied=0 events=4";
        assert_eq!(counter(line, "payload_bytes"), Some(100));
        assert_eq!(counter(line, "payload_bytes_copied"), Some(0));
        assert_eq!(counter(line, "nothing"), None);
        let json = "{\"bit_exact\":true,\"streams\":2,\"video_frames\":60,\"audio_buffers\":9}";
        assert!(json_true(json, "bit_exact"));
        assert_eq!(json_u64(json, "audio_buffers"), Some(9));
        assert_eq!(json_field(json, "missing"), None);
        assert!(!json_true("{\"ok\":false}", "ok"));
        assert!(!json_true("not json", "ok"));
    }
}

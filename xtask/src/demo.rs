//! `cargo xtask demo`: the first end-to-end demo. A clip (generated with
//! `gst-launch-1.0` unless `--input` names one) is played by `redir-play`
//! through the daemon, whose client engine (in process with `--uplink
//! local`, `media-client` on a Unix socket with `--uplink unix`, on
//! loopback TCP with `--uplink tcp`, or as a Spice client of the daemon's
//! Spice server, with a password, with `--uplink spice`) decodes
//! it in verify mode; `verify-clip` then compares that report with a local
//! decode of the file. xtask links no GStreamer: the comparison runs in the
//! `verify-clip` binary of client-engine.
//!
//! The last line on stdout is one JSON object (see [`Summary`]); the task
//! fails when `ok` is false.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use crate::bench::measure;
use crate::process::{self, cargo_command};
use crate::tempdir::TempDir;

/// Where the daemon sends the media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DemoUplink {
    /// The client engine inside the daemon (`--uplink local:verify`).
    Local,
    /// `media-client` on a Unix socket (`--uplink unix:PATH`).
    Unix,
    /// `media-client` on loopback TCP (`--uplink tcp:127.0.0.1:PORT`).
    Tcp,
    /// `media-client --spice` on the daemon's Spice server, loopback, with
    /// a password (`--uplink spice:port=N,addr=127.0.0.1,password-file=F`).
    Spice,
}

impl DemoUplink {
    fn name(self) -> &'static str {
        match self {
            DemoUplink::Local => "local",
            DemoUplink::Unix => "unix",
            DemoUplink::Tcp => "tcp",
            DemoUplink::Spice => "spice",
        }
    }

    /// Whether `media-client` runs as a separate process.
    fn separate_client(self) -> bool {
        self != DemoUplink::Local
    }
}

/// The result of a demo run: the last stdout line, as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Everything worked and the output is bit-exact.
    pub(crate) ok: bool,
    /// The clip played.
    pub(crate) input: String,
    /// `local`, `unix` or `spice`.
    pub(crate) uplink: String,
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
    /// CPU redir-play (the guest's player and in-process broker) used, in
    /// microseconds.
    pub(crate) player_cpu_us: u64,
    /// From starting the daemon to the verdict, in milliseconds.
    pub(crate) elapsed_ms: u64,
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Summary {
    /// One line of JSON, keys in a fixed order.
    pub(crate) fn to_json_line(&self) -> String {
        format!(
            "{{\"ok\":{},\"input\":{},\"uplink\":{},\"streams\":{},\"video_frames_decoded\":{},\
             \"audio_buffers_decoded\":{},\"bit_exact\":{},\"payload_bytes\":{},\
             \"payload_bytes_copied\":{},\"wire_bytes\":{},\"daemon_wchar\":{},\
             \"daemon_cpu_us\":{},\"player_cpu_us\":{},\"elapsed_ms\":{}}}",
            self.ok,
            json_string(&self.input),
            json_string(&self.uplink),
            self.streams,
            self.video_frames_decoded,
            self.audio_buffers_decoded,
            self.bit_exact,
            self.payload_bytes,
            self.payload_bytes_copied,
            self.wire_bytes,
            self.daemon_wchar,
            self.daemon_cpu_us,
            self.player_cpu_us,
            self.elapsed_ms
        )
    }
}

/// The value of `key=N` in the daemon's `counters:` line.
pub(crate) fn counter(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

/// The value of `"key":V` in a flat JSON object of numbers and booleans.
pub(crate) fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\":");
    let start = json.find(&needle)? + needle.len();
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// A child process killed (if still running) on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `path` exists.
fn wait_path(path: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() >= deadline {
            bail!("{} did not appear within {timeout:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Waits for `child` to exit.
fn wait_exit(child: &mut Child, what: &str, timeout: Duration) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            bail!("{what} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Generates a 2-second VP9 + Opus WebM clip at `path`.
fn generate_clip(path: &Path) -> Result<()> {
    let location = format!("location={}", path.display());
    let pipeline = [
        "-q",
        "videotestsrc",
        "num-buffers=60",
        "pattern=ball",
        "!",
        "video/x-raw,format=I420,width=320,height=240,framerate=30/1",
        "!",
        "vp9enc",
        "deadline=1",
        "!",
        "queue",
        "!",
        "webmmux",
        "name=mux",
        "!",
        "filesink",
        &location,
        "audiotestsrc",
        "num-buffers=100",
        "samplesperbuffer=960",
        "!",
        "audio/x-raw,rate=48000,channels=2",
        "!",
        "opusenc",
        "!",
        "queue",
        "!",
        "mux.",
    ];
    process::run(Command::new("gst-launch-1.0").args(pipeline))
        .context("generating the clip (is GStreamer installed? `cargo xtask setup`)")
}

/// Asks the daemon for its counters (SIGUSR1) and returns the CPU
/// microseconds of the `rusage:` line it prints first (None if it prints
/// none within 5 s).
fn daemon_rusage(pid: u32, seen: &Mutex<Vec<u64>>) -> Result<Option<u64>> {
    let count = || seen.lock().unwrap_or_else(|p| p.into_inner()).len();
    let before = count();
    process::run(Command::new("kill").arg("-USR1").arg(pid.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while count() == before {
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(before)
        .copied())
}

/// Seconds as whole microseconds.
fn micros(seconds: f64) -> u64 {
    u64::try_from(Duration::from_secs_f64(seconds.max(0.0)).as_micros()).unwrap_or(u64::MAX)
}

/// Runs redir-play to its end; returns its CPU seconds.
fn run_player(cmd: &mut Command) -> Result<f64> {
    let line = process::display(cmd);
    println!("$ {line}");
    let mut child = cmd
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start `{line}`"))?;
    let (status, cpu) = measure::wait_usage(&mut child)?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(cpu)
}

/// A TCP port on loopback nobody listens on now.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr().context("finding a free port")?.port())
}

/// Builds the daemon, redir-play and verify-clip (and media-client when
/// `client`): what a demo, in process or in a VM, runs.
pub(crate) fn build_stack(client: bool) -> Result<()> {
    let mut build = vec![
        "build",
        "-p",
        "vhost-device-media",
        "-p",
        "redir-play",
        "-p",
        "client-engine",
        "--bin",
        "vhost-device-media",
        "--bin",
        "redir-play",
        "--bin",
        "verify-clip",
    ];
    if client {
        build.extend(["--bin", "media-client"]);
    }
    process::run(&mut cargo_command(&build))
}

/// Runs the demo and prints its summary as the last stdout line.
pub(crate) fn run(input: Option<PathBuf>, uplink: DemoUplink) -> Result<()> {
    build_stack(uplink.separate_client())?;
    let bin = Path::new("target/debug")
        .canonicalize()
        .context("target/debug")?;
    let dir = TempDir::new("xtask-demo")?;
    let input = match input {
        Some(path) => path
            .canonicalize()
            .with_context(|| format!("--input {}", path.display()))?,
        None => {
            let clip = dir.path().join("clip.webm");
            println!("demo: generating a 2 s VP9 + Opus WebM clip");
            generate_clip(&clip)?;
            clip
        }
    };
    let mut summary = Summary {
        input: input.display().to_string(),
        uplink: uplink.name().into(),
        ..Summary::default()
    };
    let t0 = Instant::now();
    let result = play(&bin, dir.path(), &input, uplink, &mut summary);
    summary.elapsed_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    if let Err(e) = &result {
        println!("demo: FAILED: {e:#}");
    }
    summary.ok = result.is_ok() && summary.bit_exact && summary.streams > 0;
    println!("{}", summary.to_json_line());
    if !summary.ok {
        bail!("the demo failed");
    }
    Ok(())
}

/// Daemon, client, player, then the comparison; fills `summary`. `bin`
/// holds the binaries (target/debug for the demo, target/release for the
/// bench).
pub(crate) fn play(
    bin: &Path,
    dir: &Path,
    input: &Path,
    uplink: DemoUplink,
    summary: &mut Summary,
) -> Result<()> {
    let socket = dir.join("vhost.sock");
    let report = dir.join("report.txt");
    let client_socket = dir.join("uplink.sock");
    let password = dir.join("spice-password");
    let client_addr = match uplink {
        DemoUplink::Local => String::new(),
        DemoUplink::Unix => format!("unix:{}", client_socket.display()),
        DemoUplink::Tcp => format!("tcp:127.0.0.1:{}", free_port()?),
        DemoUplink::Spice => format!("127.0.0.1:{}", free_port()?),
    };
    let mut daemon_cmd = Command::new(bin.join("vhost-device-media"));
    daemon_cmd.arg("--socket-path").arg(&socket);
    match uplink {
        DemoUplink::Local => {
            daemon_cmd
                .args(["--uplink", "local:verify", "--verify-report"])
                .arg(&report);
        }
        DemoUplink::Unix | DemoUplink::Tcp => {
            daemon_cmd.arg("--uplink").arg(&client_addr);
        }
        DemoUplink::Spice => {
            std::fs::write(&password, "demo ticket\n").context("writing the Spice password")?;
            let port = client_addr.rsplit(':').next().unwrap_or_default();
            daemon_cmd.arg("--uplink").arg(format!(
                "spice:port={port},addr=127.0.0.1,password-file={}",
                password.display()
            ));
        }
    }
    println!("demo: $ {}", process::display(&daemon_cmd));
    let mut daemon = Guard(
        daemon_cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting vhost-device-media")?,
    );
    // The daemon's stdout: echoed; the last `counters:` line kept, and the
    // CPU of each `rusage:` line (in order).
    let counters = Arc::new(Mutex::new(String::new()));
    let rusage = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stdout = daemon.0.stdout.take().context("daemon stdout")?;
    let reader = {
        let counters = Arc::clone(&counters);
        let rusage = Arc::clone(&rusage);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("daemon: {line}");
                if line.starts_with("counters:") {
                    *counters.lock().unwrap_or_else(|p| p.into_inner()) = line;
                } else if line.starts_with("rusage:")
                    && let Some(us) = counter(&line, "cpu_us")
                {
                    rusage.lock().unwrap_or_else(|p| p.into_inner()).push(us);
                }
            }
        })
    };
    wait_path(&socket, Duration::from_secs(20))?;
    let mut client = None;
    if uplink.separate_client() {
        // The daemon binds its uplink (and starts its Spice server) before
        // its vhost-user socket.
        if uplink == DemoUplink::Unix {
            wait_path(&client_socket, Duration::from_secs(20))?;
        }
        let mut cmd = Command::new(bin.join("media-client"));
        if uplink == DemoUplink::Spice {
            cmd.arg("--spice")
                .arg(&client_addr)
                .arg("--password-file")
                .arg(&password);
        } else {
            cmd.arg("--connect").arg(&client_addr);
        }
        cmd.args([
            "--headless",
            "--once",
            "--stats-interval",
            "0",
            "--verify-report",
        ])
        .arg(&report);
        println!("demo: $ {}", process::display(&cmd));
        client = Some(Guard(
            cmd.stdin(Stdio::null())
                .spawn()
                .context("starting media-client")?,
        ));
    }
    let daemon_pid = daemon.0.id();
    // The daemon's own CPU reading (getrusage: every thread, even those
    // that end with the guest's connection) before the clip.
    let cpu0 = daemon_rusage(daemon_pid, &rusage)?;
    let wchar0 = measure::process_wchar(daemon_pid)?;
    let mut player = Command::new(bin.join("redir-play"));
    player.arg("--vhost-user").arg(&socket).arg(input);
    let played = run_player(&mut player).map(|cpu| {
        summary.player_cpu_us = micros(cpu);
    });
    summary.daemon_wchar = measure::process_wchar(daemon_pid)?.saturating_sub(wchar0);
    if let Some(client) = &mut client
        && played.is_ok()
    {
        let status = wait_exit(&mut client.0, "media-client", Duration::from_secs(30))?;
        println!("demo: media-client exited ({status})");
    }
    // SIGTERM: the daemon writes its report (local) and counters, and exits.
    process::run(
        Command::new("kill")
            .arg("-TERM")
            .arg(daemon.0.id().to_string()),
    )?;
    let status = wait_exit(&mut daemon.0, "vhost-device-media", Duration::from_secs(20))?;
    println!("demo: daemon exited ({status})");
    let _ = reader.join();
    // The last `rusage:` line, printed on SIGTERM.
    let cpu1 = rusage
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .last()
        .copied();
    if let (Some(cpu0), Some(cpu1)) = (cpu0, cpu1) {
        summary.daemon_cpu_us = cpu1.saturating_sub(cpu0);
    }
    let line = counters.lock().unwrap_or_else(|p| p.into_inner()).clone();
    summary.payload_bytes = counter(&line, "payload_bytes").unwrap_or(0);
    summary.payload_bytes_copied = counter(&line, "payload_bytes_copied").unwrap_or(0);
    summary.wire_bytes = counter(&line, "wire_bytes").unwrap_or(0);
    played?;
    let mut verify = Command::new(bin.join("verify-clip"));
    verify
        .arg("--input")
        .arg(input)
        .arg("--report")
        .arg(&report);
    println!("demo: $ {}", process::display(&verify));
    let out = verify
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running verify-clip")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let json = text.lines().last().unwrap_or_default().to_owned();
    println!("demo: verify-clip: {json}");
    let num = |key: &str| json_field(&json, key).and_then(|v| v.parse::<u64>().ok());
    summary.bit_exact = json_field(&json, "bit_exact") == Some("true");
    summary.streams = num("streams").unwrap_or(0);
    summary.video_frames_decoded = num("video_frames").unwrap_or(0);
    summary.audio_buffers_decoded = num("audio_buffers").unwrap_or(0);
    if !out.status.success() && json.is_empty() {
        bail!("verify-clip failed ({})", out.status);
    }
    Ok(())
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
            elapsed_ms: 789,
        };
        assert_eq!(
            summary.to_json_line(),
            "{\"ok\":true,\"input\":\"/tmp/a \\\"b\\\".webm\",\"uplink\":\"local\",\
             \"streams\":2,\"video_frames_decoded\":60,\"audio_buffers_decoded\":96000,\
             \"bit_exact\":true,\"payload_bytes\":12345,\"payload_bytes_copied\":0,\
             \"wire_bytes\":12400,\"daemon_wchar\":13000,\"daemon_cpu_us\":5000,\
             \"player_cpu_us\":6000,\"elapsed_ms\":789}"
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
        assert_eq!(json_field(json, "bit_exact"), Some("true"));
        assert_eq!(json_field(json, "audio_buffers"), Some("9"));
        assert_eq!(json_field(json, "missing"), None);
    }
}

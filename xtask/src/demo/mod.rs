//! `cargo xtask demo`: the first end-to-end demo. A clip (generated with
//! `gst-launch-1.0` unless `--input` names one) is played by `redir-play`
//! through the daemon, whose client engine (in process with `--uplink
//! local`, `media-client` on a Unix socket with `--uplink unix`, on
//! loopback TCP with `--uplink tcp`, or as a Spice client of the daemon's
//! Spice server, with a password, with `--uplink spice`) decodes
//! it in verify mode; `verify-clip` then compares that report with a local
//! decode of the file. xtask links no GStreamer: the comparison runs in the
//! `verify-clip` binary of media-client.
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
use crate::tempdir;
use test_support::Pki;

pub(crate) mod logs;
mod qemu_session;
mod summary;
pub(crate) mod viewer;

pub(crate) use summary::{Summary, counter, json_true, json_u64};

/// Where the daemon sends the media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DemoUplink {
    /// The client engine inside the daemon (`--uplink local:verify`).
    Local,
    /// `media-client` on a Unix socket (`--uplink unix:PATH`).
    Unix,
    /// `media-client` on loopback TCP (`--uplink tcp:127.0.0.1:PORT`).
    Tcp,
    /// `media-client` on loopback TCP with TLS 1.3 and client
    /// certificates (a CA made for the run).
    Tls,
    /// `media-client --spice` on the daemon's Spice server, loopback, with
    /// a password (`--uplink spice:port=N,addr=127.0.0.1,password-file=F`).
    Spice,
    /// `media-client --spice` on QEMU's own Spice session (with a
    /// password), whose media port QEMU relays to the daemon's Unix uplink
    /// (`chardev-relay`, docs/qemu-relay.md).
    QemuSpice,
}

impl DemoUplink {
    pub(crate) fn name(self) -> &'static str {
        match self {
            DemoUplink::Local => "local",
            DemoUplink::Unix => "unix",
            DemoUplink::Tcp => "tcp",
            DemoUplink::Tls => "tls",
            DemoUplink::Spice => "spice",
            DemoUplink::QemuSpice => "qemu-spice",
        }
    }

    /// Whether `media-client` runs as a separate process.
    fn separate_client(self) -> bool {
        self != DemoUplink::Local
    }
}

/// What plays the file in the "guest".
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DemoPlayer {
    /// `redir-play`: the project's demuxers (`redir-demux`) and the player
    /// API, with the broker in its process.
    RedirPlay,
    /// `redir-gst-play`: GStreamer's `playbin` with `mediaredirsink`
    /// (GStreamer's demuxers and parsers) on a `mediaredir-broker`.
    Sink,
}

impl DemoPlayer {
    pub(crate) fn name(self) -> &'static str {
        match self {
            DemoPlayer::RedirPlay => "redir-play",
            DemoPlayer::Sink => "sink",
        }
    }
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
pub(crate) fn wait_path(path: &Path, timeout: Duration) -> Result<()> {
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

/// `input` made absolute, or else a clip `generate` makes at `path`.
fn input_or_generated(
    input: Option<PathBuf>,
    path: &Path,
    what: &str,
    generate: fn(&Path) -> Result<()>,
) -> Result<PathBuf> {
    match input {
        Some(path) => path
            .canonicalize()
            .with_context(|| format!("--input {}", path.display())),
        None => {
            println!("demo: generating {what}");
            generate(path)?;
            Ok(path.to_path_buf())
        }
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
    if !process::succeeds(Command::new("kill").arg("-USR1").arg(pid.to_string())) {
        bail!("cannot signal the daemon ({pid})");
    }
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
    logs::line(&format!("$ {line}"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(logs::stdio())
        .stderr(logs::stdio())
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

/// The cargo arguments of the daemon built with `verify` (the demo's and
/// the bench's `--uplink local:verify`) and of redir-play.
pub(crate) const VERIFYING_DAEMON_AND_PLAYER: [&str; 6] = [
    "--features",
    "vhost-user-mediaredir/verify",
    "--bin",
    "vhost-user-mediaredir",
    "--bin",
    "redir-play",
];

/// Builds the daemon (with `verify`), both players (redir-play;
/// redir-gst-play with its broker) and verify-clip (and media-client when
/// `client`, the viewer when `viewer`): what a demo, in process or in a
/// VM, runs.
pub(crate) fn build_stack(client: bool, viewer: bool) -> Result<()> {
    let mut build = vec![
        "build",
        "-p",
        "vhost-user-mediaredir",
        "-p",
        "redir-play",
        "-p",
        "guest-driver-shim",
        "-p",
        "gst-plugin-mediaredir",
        "-p",
        "media-client",
    ];
    build.extend(VERIFYING_DAEMON_AND_PLAYER);
    build.extend([
        "--bin",
        "mediaredir-broker",
        "--bin",
        "redir-gst-play",
        "--bin",
        "verify-clip",
    ]);
    if client {
        build.extend(["--bin", "media-client"]);
    }
    // In the same build, not a second one: two builds of different sets
    // unify features differently and rebuild the crates they share.
    if viewer {
        build.extend(["-p", "mediaredir-viewer", "--bin", "mediaredir-viewer"]);
    }
    process::run(&mut cargo_command(&build))
}

/// Runs the demo and prints its summary as the last stdout line; the
/// components' logs go to a file under `target/demo-logs/` unless
/// `verbose`.
pub(crate) fn run(
    input: Option<PathBuf>,
    uplink: DemoUplink,
    player: DemoPlayer,
    verbose: bool,
) -> Result<()> {
    build_stack(uplink.separate_client(), false)?;
    run_built(input, uplink, player, None, verbose)
}

/// [`run`] with the binaries built already (the matrix builds once);
/// `reference_cache` keeps verify-clip's local decode of `input` for the
/// next run of the same file.
pub(crate) fn run_built(
    input: Option<PathBuf>,
    uplink: DemoUplink,
    player: DemoPlayer,
    reference_cache: Option<&Path>,
    verbose: bool,
) -> Result<()> {
    let bin = Path::new("target/debug")
        .canonicalize()
        .context("target/debug")?;
    let dir = tempdir::new("xtask-demo")?;
    let input = input_or_generated(
        input,
        &dir.path().join("clip.webm"),
        "a 2 s VP9 + Opus WebM clip",
        generate_clip,
    )?;
    let mut summary = Summary {
        input: input.display().to_string(),
        uplink: uplink.name().into(),
        player: player.name().into(),
        ..Summary::default()
    };
    if verbose {
        logs::to_terminal();
    } else {
        let stem = input
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        logs::to_file(&crate::workspace_root().join(format!(
            "target/demo-logs/demo-{}-{}-{stem}.log",
            uplink.name(),
            player.name()
        )))?;
    }
    let t0 = Instant::now();
    let result = play(
        &bin,
        dir.path(),
        &input,
        (uplink, player),
        reference_cache,
        &mut summary,
    );
    let log = logs::path();
    logs::to_terminal();
    summary.conclude(&result, t0, log.as_deref())
}

/// Daemon, client, player, then the comparison; fills `summary`. `bin`
/// holds the binaries (target/debug for the demo, target/release for the
/// bench); `reference_cache` as in [`verify_clip`].
pub(crate) fn play(
    bin: &Path,
    dir: &Path,
    input: &Path,
    (uplink, player): (DemoUplink, DemoPlayer),
    reference_cache: Option<&Path>,
    summary: &mut Summary,
) -> Result<()> {
    let socket = dir.join("vhost.sock");
    let report = dir.join("report.txt");
    let client_socket = dir.join("uplink.sock");
    let password = dir.join("spice-password");
    let pki = match uplink {
        DemoUplink::Tls => Some(Pki::write(dir).context("writing the TLS certificates")?),
        _ => None,
    };
    let client_addr = match uplink {
        DemoUplink::Local => String::new(),
        DemoUplink::Unix | DemoUplink::QemuSpice => format!("unix:{}", client_socket.display()),
        DemoUplink::Tcp | DemoUplink::Tls => format!("tcp:127.0.0.1:{}", free_port()?),
        DemoUplink::Spice => format!("127.0.0.1:{}", free_port()?),
    };
    let mut daemon_cmd = Command::new(bin.join("vhost-user-mediaredir"));
    daemon_cmd.arg("--socket-path").arg(&socket);
    match uplink {
        DemoUplink::Local => {
            daemon_cmd
                .args(["--uplink", "local:verify", "--verify-report"])
                .arg(&report);
        }
        DemoUplink::Unix | DemoUplink::Tcp | DemoUplink::QemuSpice => {
            daemon_cmd.arg("--uplink").arg(&client_addr);
        }
        DemoUplink::Tls => {
            let pki = pki.as_ref().context("the TLS files")?;
            daemon_cmd
                .arg("--uplink")
                .arg(&client_addr)
                .arg("--tls-cert")
                .arg(&pki.server_cert)
                .arg("--tls-key")
                .arg(&pki.server_key)
                .arg("--tls-client-ca")
                .arg(&pki.ca);
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
    logs::line(&format!("demo: $ {}", process::display(&daemon_cmd)));
    let mut daemon = Guard(
        daemon_cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(logs::stdio())
            .spawn()
            .context("starting vhost-user-mediaredir")?,
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
                logs::line(&format!("daemon: {line}"));
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
    let mut qemu = None;
    if uplink.separate_client() {
        // The daemon binds its uplink (and starts its Spice server) before
        // its vhost-user socket.
        if matches!(uplink, DemoUplink::Unix | DemoUplink::QemuSpice) {
            wait_path(&client_socket, Duration::from_secs(20))?;
        }
        let mut cmd = Command::new(bin.join("media-client"));
        if uplink == DemoUplink::QemuSpice {
            let session = qemu_session::QemuSession::start(dir, &client_socket)?;
            cmd.args(session.client_args());
            qemu = Some(session);
        } else if uplink == DemoUplink::Spice {
            cmd.arg("--spice")
                .arg(&client_addr)
                .arg("--password-file")
                .arg(&password);
        } else {
            cmd.arg("--connect").arg(&client_addr);
        }
        if let Some(pki) = &pki {
            cmd.arg("--tls-ca")
                .arg(&pki.ca)
                .arg("--tls-cert")
                .arg(&pki.client_cert)
                .arg("--tls-key")
                .arg(&pki.client_key);
        }
        cmd.args([
            "--headless",
            "--once",
            "--stats-interval",
            "0",
            "--verify-report",
        ])
        .arg(&report);
        logs::line(&format!("demo: $ {}", process::display(&cmd)));
        client = Some(Guard(
            cmd.stdin(Stdio::null())
                .stdout(logs::stdio())
                .stderr(logs::stdio())
                .spawn()
                .context("starting media-client")?,
        ));
    }
    let daemon_pid = daemon.0.id();
    // The daemon's own CPU reading (getrusage: every thread, even those
    // that end with the guest's connection) before the clip.
    let cpu0 = daemon_rusage(daemon_pid, &rusage)?;
    let wchar0 = measure::process_wchar(daemon_pid)?;
    let qemu0 = qemu
        .as_ref()
        .map(qemu_session::QemuSession::usage)
        .transpose()?;
    // The sink player's broker; redir-play has its broker in process.
    let mut broker = None;
    let mut player = match player {
        DemoPlayer::RedirPlay => {
            let mut cmd = Command::new(bin.join("redir-play"));
            cmd.arg("--vhost-user").arg(&socket).arg(input);
            cmd
        }
        DemoPlayer::Sink => {
            let broker_socket = dir.join("broker.sock");
            let mut cmd = Command::new(bin.join("mediaredir-broker"));
            cmd.arg("--vhost-user")
                .arg(&socket)
                .arg("--socket")
                .arg(&broker_socket);
            logs::line(&format!("demo: $ {}", process::display(&cmd)));
            broker = Some(Guard(
                cmd.stdin(Stdio::null())
                    .stdout(logs::stdio())
                    .stderr(logs::stdio())
                    .spawn()
                    .context("starting mediaredir-broker")?,
            ));
            wait_path(&broker_socket, Duration::from_secs(20))?;
            let mut cmd = Command::new(bin.join("redir-gst-play"));
            cmd.arg("--socket").arg(&broker_socket).arg(input);
            cmd
        }
    };
    let played = run_player(&mut player).map(|cpu| {
        summary.player_cpu_us = micros(cpu);
    });
    summary.daemon_wchar = measure::process_wchar(daemon_pid)?.saturating_sub(wchar0);
    if let Some(client) = &mut client
        && played.is_ok()
    {
        let status = wait_exit(&mut client.0, "media-client", Duration::from_secs(30))?;
        logs::line(&format!("demo: media-client exited ({status})"));
    }
    if let (Some(session), Some(before)) = (&qemu, qemu0) {
        (summary.qemu_cpu_us, summary.qemu_wchar) = session.since(before)?;
    }
    drop(qemu);
    drop(broker);
    // SIGTERM: the daemon writes its report (local) and counters, and exits.
    if !process::succeeds(
        Command::new("kill")
            .arg("-TERM")
            .arg(daemon.0.id().to_string()),
    ) {
        bail!("cannot stop the daemon");
    }
    let status = wait_exit(
        &mut daemon.0,
        "vhost-user-mediaredir",
        Duration::from_secs(20),
    )?;
    logs::line(&format!("demo: daemon exited ({status})"));
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
    let verdict = verify_clip(bin, input, &report, reference_cache, "demo")?;
    summary.bit_exact = verdict.bit_exact;
    summary.streams = verdict.streams;
    summary.video_frames_decoded = verdict.video_frames;
    summary.audio_buffers_decoded = verdict.audio_samples;
    Ok(())
}

/// What `verify-clip` says of a client's report against a local decode.
pub(crate) struct Verdict {
    pub(crate) bit_exact: bool,
    pub(crate) streams: u64,
    pub(crate) video_frames: u64,
    pub(crate) audio_samples: u64,
}

/// Runs `verify-clip` on `report` of `input`; `who` prefixes the lines it
/// echoes (`demo`, `vm`). With `reference_cache`, verify-clip keeps its
/// local decode of `input` there, or reads it from there (the matrix plays
/// each file several times).
pub(crate) fn verify_clip(
    bin: &Path,
    input: &Path,
    report: &Path,
    reference_cache: Option<&Path>,
    who: &str,
) -> Result<Verdict> {
    let mut cmd = Command::new(bin.join("verify-clip"));
    cmd.arg("--input").arg(input).arg("--report").arg(report);
    if let Some(cache) = reference_cache {
        cmd.arg("--reference-cache").arg(cache);
    }
    logs::line(&format!("{who}: $ {}", process::display(&cmd)));
    let out = cmd
        .stdin(Stdio::null())
        .stderr(logs::stdio())
        .output()
        .context("running verify-clip")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let json = text.lines().last().unwrap_or_default().to_owned();
    logs::line(&format!("{who}: verify-clip: {json}"));
    if !out.status.success() && json.is_empty() {
        bail!("verify-clip failed ({})", out.status);
    }
    let num = |key: &str| json_u64(&json, key);
    Ok(Verdict {
        bit_exact: json_true(&json, "bit_exact"),
        streams: num("streams").unwrap_or(0),
        video_frames: num("video_frames").unwrap_or(0),
        audio_samples: num("audio_buffers").unwrap_or(0),
    })
}

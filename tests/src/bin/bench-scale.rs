//! `bench-scale`: N concurrent 1080p30 H.264-sized video streams through one
//! daemon (the real `vhost-device-media` binary, socket uplink), for the
//! report of `cargo xtask bench`.
//!
//! The guest side is the project's driver over vhost-user (one presentation
//! and one stream per viewer, spread over the daemon's txqs); the client is
//! a wire-protocol client that reads every frame and acks it at once (no
//! decoding: what is measured is the daemon). Each stream sends 30 frames a
//! second at 5 Mbit/s (a keyframe 8 times the size of the other frames
//! every 2 s), the streams' frames staggered over the frame period. Every
//! frame's pts carries the time the guest queued it (ns since the start of
//! the run, one clock for driver and client, both in this process), so the
//! client's arrival time minus the pts is the latency guest-queue ->
//! client-receive.
//!
//! Prints one JSON line per N:
//! `{"streams":N,"seconds":S,"frames":F,"daemon_cpu_s":C,"rss_idle_bytes":R0,
//!  "rss_bytes":R,"p50_us":..,"p99_us":..,"max_us":..}`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use conformance_tests::client::{AckPolicy, TestClient, decode_everything};
use conformance_tests::daemon::DaemonProcess;
use conformance_tests::rig::{Driver, h264, try_ok, wait_client};
use conformance_tests::scratch::Scratch;
use guest_driver_shim::{DriverOptions, MediaDevice, VhostUserOptions, VhostUserTransport};
use mediaredir_proto::control::Request;
use mediaredir_proto::data::{DataHeader, FLAG_KEYFRAME};
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::Message;

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "N concurrent 1080p streams through one daemon: CPU, memory, latency")]
struct Args {
    /// The daemon binary.
    #[arg(long)]
    daemon: PathBuf,
    /// Stream counts to run, one daemon each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
    streams: Vec<u32>,
    /// Seconds of media per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Bits per second of each stream.
    #[arg(long, default_value_t = 5_000_000)]
    bitrate: u64,
    /// The daemon's playback queues.
    #[arg(long, default_value_t = 4)]
    txqs: u32,
}

const FPS: u64 = 30;
const FRAME_NS: u64 = 1_000_000_000 / FPS;
/// A keyframe every 2 s, 8 times the size of the other frames.
const GOP: u64 = 60;
const KEY_FACTOR: u64 = 8;

/// Frame `i`'s payload size for a stream of `bitrate` bits per second.
fn frame_size(bitrate: u64, i: u64) -> usize {
    let per_gop = bitrate / 8 * GOP / FPS;
    let p = per_gop / (GOP - 1 + KEY_FACTOR);
    let size = if i.is_multiple_of(GOP) {
        p * KEY_FACTOR
    } else {
        p
    };
    usize::try_from(size).unwrap_or(usize::MAX)
}

/// The quantile `per_mille`/1000 of sorted values (nearest rank).
fn quantile(sorted: &[u64], per_mille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() - 1) * per_mille + 500) / 1000;
    sorted[idx.min(sorted.len() - 1)]
}

fn read_proc(pid: u32, file: &str) -> Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .with_context(|| format!("/proc/{pid}/{file}"))
}

/// CPU seconds of the daemon's threads, in nanosecond steps (the first
/// field of each thread's schedstat; the daemon's threads live through a
/// run, and /proc/PID/stat's 10 ms ticks are too coarse for one stream).
fn cpu_s(pid: u32) -> Result<f64> {
    let mut ns = 0u64;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).context("/proc/PID/task")? {
        if let Ok(text) = std::fs::read_to_string(entry?.path().join("schedstat")) {
            ns += text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(ns as f64 / 1e9)
}

fn rss_bytes(pid: u32) -> Result<u64> {
    let status = read_proc(pid, "status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .context("VmRSS")
}

fn ok(dev: &mut Driver, target: u32, request: Request) -> Result<u32> {
    try_ok(dev, target, request).map_err(anyhow::Error::msg)
}

/// Takes every completion of every txq; fails on a non-OK status.
fn reap(dev: &mut Driver, txqs: u32) -> Result<()> {
    for q in 0..txqs {
        let q = u16::try_from(q)?;
        for done in dev.poll_data_completions(q)? {
            if done.status != Ok(Status::Ok) {
                bail!("a buffer completed with {:?}", done.status);
            }
        }
    }
    Ok(())
}

fn in_flight(dev: &Driver, txqs: u32) -> Result<usize> {
    let mut n = 0;
    for q in 0..txqs {
        n += dev.data_in_flight(u16::try_from(q)?)?;
    }
    Ok(n)
}

/// `v` to `digits` decimals (the JSON line's precision).
fn round(v: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

/// One run with `n` streams; prints its JSON line.
fn run(args: &Args, n: u32) -> Result<()> {
    let scratch = Scratch::new(&format!("bench-scale-{n}"));
    let socket = scratch.path("vhost.sock");
    let uplink = scratch.path("uplink.sock");
    let uplink_arg = format!("unix:{}", uplink.display());
    let limit = n.max(16).to_string();
    let txqs = args.txqs.to_string();
    let daemon = DaemonProcess::start(
        &args.daemon,
        &socket,
        &[
            "--uplink",
            &uplink_arg,
            "--num-txqs",
            &txqs,
            "--max-presentations",
            &limit,
            "--max-streams",
            &limit,
            "--log-level",
            "warn",
        ],
    );
    let pid = daemon.pid();
    let client = TestClient::connect(&uplink, decode_everything(), AckPolicy::Immediate);
    let transport = VhostUserTransport::connect_new(&socket, VhostUserOptions::default())
        .context("vhost-user connect")?;
    let mut dev = MediaDevice::new(transport, DriverOptions::default()).context("driver")?;
    wait_client(&mut dev, true);
    let mut streams = Vec::new();
    for i in 0..n {
        let pres = ok(&mut dev, 0, Request::PresCreate { live: false })?;
        let txq = i % args.txqs;
        let id = ok(&mut dev, pres, Request::StreamCreate(h264(txq, 1920, 1080)))?;
        ok(&mut dev, pres, Request::PresPlay)?;
        streams.push((id, u16::try_from(txq)?));
    }
    let rss_idle = rss_bytes(pid)?;
    let epoch = Instant::now();
    // The client side: arrival time minus the pts the guest stamped.
    let done = Arc::new(AtomicBool::new(false));
    let receiver = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut latencies = Vec::new();
            while !done.load(Ordering::Relaxed) {
                if let Some(r) = client.next(Duration::from_millis(100))
                    && let Message::Sample(s) = r.msg
                    && let Some(pts) = s.pts
                {
                    let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    latencies.push(now.saturating_sub(pts) / 1000);
                }
            }
            latencies
        })
    };
    let cpu0 = cpu_s(pid)?;
    let frames_per_stream = args.seconds * FPS;
    let slot_ns = FRAME_NS / u64::from(n);
    let payload = vec![0x5au8; frame_size(args.bitrate, 0)];
    let mut rss_peak = rss_idle;
    let mut sent = 0u64;
    for frame in 0..frames_per_stream {
        for (k, &(id, txq)) in streams.iter().enumerate() {
            let due = Duration::from_nanos(frame * FRAME_NS + k as u64 * slot_ns);
            while epoch.elapsed() < due {
                reap(&mut dev, args.txqs)?;
                let left = due.saturating_sub(epoch.elapsed());
                std::thread::sleep(left.min(Duration::from_millis(1)));
            }
            let size = frame_size(args.bitrate, frame);
            let pts = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let header = DataHeader {
                clip: Default::default(),
                stream_id: id,
                generation: 0,
                flags: if frame.is_multiple_of(GOP) {
                    FLAG_KEYFRAME
                } else {
                    0
                },
                payload_len: 0,
                pts: Some(pts),
                dts: None,
                duration: Some(FRAME_NS),
            };
            loop {
                match dev.submit_data_copy(txq, &header, &payload[..size]) {
                    Ok(_) => break,
                    Err(err) if in_flight(&dev, args.txqs)? > 0 => {
                        log::debug!("queue full ({err}); reaping");
                        reap(&mut dev, args.txqs)?;
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    Err(err) => return Err(err).context("submitting a frame"),
                }
            }
            sent += 1;
        }
        if frame % FPS == 0 {
            rss_peak = rss_peak.max(rss_bytes(pid)?);
        }
    }
    let wall = epoch.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(30);
    while in_flight(&dev, args.txqs)? > 0 {
        if Instant::now() > deadline {
            bail!("buffers never completed");
        }
        reap(&mut dev, args.txqs)?;
        std::thread::sleep(Duration::from_millis(1));
    }
    let cpu = cpu_s(pid)? - cpu0;
    rss_peak = rss_peak.max(rss_bytes(pid)?);
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::Relaxed);
    let mut lat = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))?;
    lat.sort_unstable();
    let counters = daemon.stop();
    let line = serde_json::json!({
        "streams": n,
        "seconds": args.seconds,
        "wall_s": round(wall, 3),
        "frames": sent,
        "received": lat.len(),
        "daemon_cpu_s": round(cpu, 4),
        "rss_idle_bytes": rss_idle,
        "rss_bytes": rss_peak,
        "p50_us": quantile(&lat, 500),
        "p99_us": quantile(&lat, 990),
        "max_us": lat.last().copied().unwrap_or(0),
        "payload_bytes": counters.get("payload_bytes").copied().unwrap_or(0),
    });
    println!("{line}");
    if lat.len() as u64 != sent {
        bail!("the client received {} of {sent} frames", lat.len());
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    for &n in &args.streams {
        if n == 0 {
            bail!("--streams: 0 streams");
        }
        run(&args, n).with_context(|| format!("{n} streams"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_average_the_bitrate() {
        let total: usize = (0..GOP).map(|i| frame_size(5_000_000, i)).sum();
        let per_s = total as f64 / 2.0 * 8.0;
        assert!((per_s - 5e6).abs() / 5e6 < 0.01, "{per_s}");
        assert_eq!(frame_size(5_000_000, 0), frame_size(5_000_000, 1) * 8);
    }

    #[test]
    fn quantiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 500), 51);
        assert_eq!(quantile(&v, 990), 99);
        assert_eq!(quantile(&[], 990), 0);
    }
}

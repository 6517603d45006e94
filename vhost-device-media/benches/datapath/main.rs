//! Data-path benchmark: the socket uplink's zero-copy `writev` from guest
//! memory against a copying baseline, in one process, on one machine.
//!
//! For every payload size, the same buffers (one payload segment each, in a
//! `GuestMemoryMmap`) go through two uplinks to the same kind of client:
//!
//! - zero copy: the daemon's real [`SocketUplink`] on a Unix socket; each
//!   buffer is a [`GuestBuffer`](vhost_user_mediaredir::guest_buffer::GuestBuffer) that the uplink's writer thread sends with
//!   one `writev` of [prefix + FlatBuffers header][payload straight from guest
//!   memory];
//! - copy (baseline): a minimal uplink written here ([`CopyUplink`]) that does
//!   what a daemon without zero copy does (vhost-device-sound's GStreamer
//!   backend copies each period into a `gst::Buffer`): it copies the payload
//!   into a freshly allocated `Vec` (one `memcpy` into uninitialised memory,
//!   the cheapest copy there is) on the sending thread, then its writer thread
//!   sends [prefix + header][Vec] with the same `writev` code. Everything else
//!   is the same: queue and writer thread, held buffers completed on the
//!   client's ack, stream credit, the client.
//!
//! The client is a thread of this process: it reads each frame (prefix,
//! header, payload into a reused buffer), checks the payload's pattern and
//! acks the sample, as the client engine does. Send time travels in the
//! sample's `pts` (nanoseconds since a shared `Instant`), so the client
//! measures each buffer's latency from `send_sample` to "whole frame read".
//!
//! Two measurements per size and path:
//! - throughput: a fixed number of buffers with the daemon's default stream
//!   credit (16 MiB, and at most 256 buffers, about what a 1024-entry
//!   virtqueue holds) in flight; MB/s (10^6 bytes) and buffers/s from the
//!   first `send_sample` to the last completion. The latency seen in this run
//!   (buffers queue behind the window) is reported as "under load";
//! - latency: one buffer in flight at a time (the next is sent when the
//!   previous is acked): p50 and p99 of send-to-frame-read.
//!
//! Rounds alternate which path goes first; throughput is the median of the
//! rounds, latency percentiles pool the rounds' samples. A full run takes
//! well under a minute on 2 CPUs; `--smoke` (or `VDM_BENCH_SMOKE=1`) runs
//! small budgets in a few seconds, and so does a run without cargo's
//! `--bench` flag (`cargo test --bench datapath`), as with libtest benches.
//! The last stdout line is one JSON object with every figure.
//!
//! Sanity checks, not timing asserts: every buffer completes `OK`, every
//! payload arrives intact, and the zero-copy path's `payload_bytes_copied`
//! counter stays 0 (the baseline counts its copies in its own counters).
//!
//! The benchmark's parts each have a module: the guest memory and its
//! pattern (`guest_memory`), the completion plumbing (`completion`), the
//! client (`client`), the copying baseline (`copy_uplink`), one path and its
//! runs (`path`), the figures (`figures`) and the report (`report`).

mod client;
mod completion;
mod copy_uplink;
mod figures;
mod guest_memory;
mod path;
mod report;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use mediaredir_proto::wire::{self, Capabilities, ClientFeatures, Hello, Message};
use vhost_user_mediaredir::counters::Counters;
use vhost_user_mediaredir::uplink::socket::{ListenAddr, SocketUplink};

use client::{ClientLog, Connection, spawn_client};
use copy_uplink::CopyUplink;
use figures::Figures;
use guest_memory::guest_memory;
use path::Path;
use report::{Report, size_label};

/// Payload sizes measured.
const SIZES: [u64; 6] = [1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20];

/// How much to run.
#[derive(Debug, Clone, Copy)]
struct Budget {
    smoke: bool,
    /// Payload bytes of one throughput run (before the buffer-count clamp).
    bytes: u64,
    /// Fewest and most buffers of one throughput run.
    min_buffers: u64,
    max_buffers: u64,
    /// Buffers of one latency run.
    latency_buffers: u64,
    /// Rounds (each runs both paths).
    rounds: usize,
}

impl Budget {
    fn new(smoke: bool) -> Budget {
        if smoke {
            Budget {
                smoke,
                bytes: 4 << 20,
                min_buffers: 64,
                max_buffers: 1000,
                latency_buffers: 50,
                rounds: 1,
            }
        } else {
            Budget {
                smoke,
                bytes: 512 << 20,
                min_buffers: 1000,
                max_buffers: 65536,
                latency_buffers: 1000,
                rounds: 5,
            }
        }
    }

    fn throughput_buffers(&self, size: u64) -> u64 {
        (self.bytes / size).clamp(self.min_buffers, self.max_buffers)
    }
}

/// Nanoseconds since `base`.
fn nanos_since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
}

fn parse_args() -> Budget {
    let mut smoke = std::env::var("VDM_BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut bench_flag = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--smoke" => smoke = true,
            "--bench" => bench_flag = true,
            "--help" | "-h" => {
                println!(
                    "usage: cargo bench -p vhost-user-mediaredir --bench datapath [-- --smoke]\n\
                     --smoke (or VDM_BENCH_SMOKE=1): small budgets, a few seconds"
                );
                std::process::exit(0);
            }
            // libtest-style filters and flags passed by cargo are ignored.
            _ => {}
        }
    }
    if !bench_flag && !smoke {
        println!("(run without cargo's --bench flag, as by `cargo test`: smoke run)");
        smoke = true;
    }
    Budget::new(smoke)
}

fn main() {
    let budget = parse_args();
    let report = Report::new(budget);
    report.print_header();

    let base = Instant::now();
    let mem = guest_memory();

    // Zero copy: the daemon's socket uplink and a client that says Hello.
    let scratch = test_support::scratch("vdm-bench");
    let sock = scratch.path().join("uplink.sock");
    let zc_counters = Arc::new(Counters::default());
    let uplink = SocketUplink::listen(ListenAddr::Unix(sock.clone()), Arc::clone(&zc_counters), 1)
        .expect("listen");
    let connection = Arc::new(Connection::default());
    let weak: Weak<Connection> = Arc::downgrade(&connection);
    uplink.set_events(weak);
    let mut zc_socket = UnixStream::connect(&sock).expect("connect to the uplink");
    let hello = Message::Hello(Hello {
        major: wire::PROTOCOL_MAJOR,
        minor: wire::PROTOCOL_MINOR,
        name: "datapath bench".into(),
        caps: Capabilities {
            codecs: vec![],
            sources: vec![],
            features: ClientFeatures::empty(),
        },
    });
    zc_socket
        .write_all(&wire::encode_frame(&hello, 0).expect("encode Hello"))
        .expect("send Hello");
    let zc_log = Arc::new(ClientLog::default());
    spawn_client(
        zc_socket.try_clone().expect("clone"),
        zc_socket,
        base,
        Arc::clone(&zc_log),
    );
    assert!(
        connection.wait_connected(Duration::from_secs(10)),
        "the socket uplink did not report the client"
    );
    let mut zero_copy = Path::new(
        "zero-copy",
        Box::new(uplink),
        &mem,
        Arc::clone(&zc_counters),
        zc_log,
    );

    // Copy: the baseline uplink on a socket pair, the same client.
    let (daemon_end, client_end) = UnixStream::pair().expect("socket pair");
    let copy_counters = Arc::new(Counters::default());
    let copy_log = Arc::new(ClientLog::default());
    spawn_client(
        client_end.try_clone().expect("clone"),
        client_end,
        base,
        Arc::clone(&copy_log),
    );
    let mut copying = Path::new(
        "copy",
        Box::new(CopyUplink::new(daemon_end, Arc::clone(&copy_counters))),
        &mem,
        Arc::clone(&copy_counters),
        copy_log,
    );

    let mut results: Vec<(u64, Figures, Figures)> = Vec::new();
    for size in SIZES {
        let count = budget.throughput_buffers(size);
        let mut zc = Figures::default();
        let mut cp = Figures::default();
        // Warm-up: threads, socket buffers, allocator, caches.
        for path in [&mut zero_copy, &mut copying] {
            path.throughput(size, (count / 4).max(16), base);
        }
        for round in 0..budget.rounds {
            let order: [(&mut Path, &mut Figures); 2] = if round % 2 == 0 {
                [(&mut zero_copy, &mut zc), (&mut copying, &mut cp)]
            } else {
                [(&mut copying, &mut cp), (&mut zero_copy, &mut zc)]
            };
            for (path, figures) in order {
                figures.add_throughput(path.throughput(size, count, base));
                figures.add_latency(path.latency(size, budget.latency_buffers, base));
            }
        }
        zc.finish();
        cp.finish();
        eprintln!(
            "{:>8}: zero-copy {:.0} MB/s, copy {:.0} MB/s ({count} buffers per run)",
            size_label(size),
            zc.mb_s(),
            cp.mb_s()
        );
        results.push((size, zc, cp));
    }

    // Sanity checks (not timing asserts).
    for path in [&zero_copy, &copying] {
        assert_eq!(
            path.ring.not_ok.load(Ordering::Relaxed),
            0,
            "{}: a buffer completed with a status other than OK",
            path.name
        );
        assert_eq!(
            path.client.bad_payloads.load(Ordering::Relaxed),
            0,
            "{}: a payload arrived damaged",
            path.name
        );
        // A buffer's drop completes it on the ring and then counts it: the
        // last count may land just after the ring shows the completion.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut snap = path.counters.snapshot();
        while snap.buffers_completed < path.next_seq - 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
            snap = path.counters.snapshot();
        }
        assert_eq!(snap.uplink_errors, 0, "{}: uplink errors", path.name);
        assert_eq!(
            snap.buffers_completed,
            path.next_seq - 1,
            "{}: every buffer completes",
            path.name
        );
    }
    let zc_snap = zc_counters.snapshot();
    let copy_snap = copy_counters.snapshot();
    assert_eq!(
        zc_snap.payload_bytes_copied, 0,
        "the zero-copy path copied payload bytes"
    );
    assert!(zc_snap.payload_bytes > 0);

    report.print_results(&results, &zc_snap, &copy_snap);

    zero_copy.uplink.shutdown();
    copying.uplink.shutdown();
}

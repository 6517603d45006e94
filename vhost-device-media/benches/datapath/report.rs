//! The report: the machine the figures come from, the Markdown tables and
//! the last stdout line, one JSON object with every figure (which
//! `cargo xtask bench` parses: its keys and format must not change).

use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use vhost_user_mediaredir::counters::Snapshot;

use crate::Budget;
use test_support::serde_json::{Value, json};

use crate::figures::{Figures, percentile_us, round};
use crate::path::MAX_INFLIGHT_BUFFERS;

/// The machine the figures come from.
struct Machine {
    cpu: String,
    cpus_online: usize,
    nproc: usize,
    mem_gib: f64,
    kernel: String,
    loadavg: String,
}

impl Machine {
    fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string());
        let cpus_online = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into())
        };
        let loadavg = read("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        Machine {
            cpu,
            cpus_online,
            nproc: thread::available_parallelism().map_or(0, |n| n.get()),
            mem_gib: mem_kib as f64 / 1_048_576.0,
            kernel: read("/proc/sys/kernel/osrelease"),
            loadavg,
        }
    }

    fn line(&self) -> String {
        format!(
            "{}, {} CPUs online (nproc {}), {:.1} GiB RAM, Linux {}, load average {}",
            self.cpu, self.cpus_online, self.nproc, self.mem_gib, self.kernel, self.loadavg
        )
    }

    fn json(&self) -> Value {
        json!({
            "cpu": self.cpu,
            "cpus_online": self.cpus_online,
            "nproc": self.nproc,
            "mem_gib": round(self.mem_gib, 1),
            "kernel": self.kernel,
            "loadavg": self.loadavg,
        })
    }
}

/// Today's UTC date, `YYYY-MM-DD`, from the system clock.
fn utc_date(unix_secs: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let days = i64::try_from(unix_secs / 86_400).unwrap_or(0) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A payload size as people write it.
pub(crate) fn size_label(size: u64) -> String {
    if size >= 1 << 20 {
        format!("{} MiB", size >> 20)
    } else {
        format!("{} KiB", size >> 10)
    }
}

fn us_pair(sorted: &[u64]) -> String {
    format!(
        "{:.1} / {:.1}",
        percentile_us(sorted, 50),
        percentile_us(sorted, 99)
    )
}

/// What the figures were measured on, and when: the report's frame.
pub(crate) struct Report {
    date: String,
    unix_secs: u64,
    budget: Budget,
    machine: Machine,
}

impl Report {
    /// Probes the machine and reads the clock, at the start of a run.
    pub(crate) fn new(budget: Budget) -> Report {
        let machine = Machine::probe();
        let unix_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let date = utc_date(unix_secs);
        Report {
            date,
            unix_secs,
            budget,
            machine,
        }
    }

    /// The title, machine, setup and mode lines, before the runs.
    pub(crate) fn print_header(&self) {
        let Report {
            date,
            budget,
            machine,
            ..
        } = self;
        println!("# vhost-device-media data-path benchmark ({date})");
        println!();
        println!("machine: {}", machine.line());
        println!(
            "setup: guest memory is an anonymous mmap (GuestMemoryMmap::from_ranges) standing in \
             for the memfd QEMU shares; one payload segment per buffer; Unix stream sockets; the \
             client is a thread of this process that reads every frame and acks it"
        );
        println!(
            "mode: {} ({} round(s); MB = 10^6 bytes)",
            if budget.smoke { "smoke" } else { "full" },
            budget.rounds
        );
    }

    /// The tables, the copy counters and the JSON line, after the runs:
    /// `results` holds each size's zero-copy and copy figures, `zc_snap` and
    /// `copy_snap` the two paths' counters.
    pub(crate) fn print_results(
        &self,
        results: &[(u64, Figures, Figures)],
        zc_snap: &Snapshot,
        copy_snap: &Snapshot,
    ) {
        let Report {
            date,
            unix_secs,
            budget,
            machine,
        } = self;
        println!();
        println!(
            "| payload | zero-copy MB/s | copy MB/s | ratio (zero-copy / copy) | zero-copy p50 / p99 µs | copy p50 / p99 µs |"
        );
        println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
        for (size, zc, cp) in results {
            println!(
                "| {} | {:.0} | {:.0} | {:.2} | {} | {} |",
                size_label(*size),
                zc.mb_s(),
                cp.mb_s(),
                zc.mb_s() / cp.mb_s(),
                us_pair(&zc.idle_ns),
                us_pair(&cp.idle_ns),
            );
        }
        println!();
        println!(
            "Latency above: one buffer in flight, send_sample to whole frame read by the client. \
             Throughput: median of the rounds, up to {MAX_INFLIGHT_BUFFERS} buffers / 16 MiB in flight."
        );
        println!();
        println!(
            "| payload | zero-copy buffers/s | copy buffers/s | zero-copy MB/s range | copy MB/s range | \
             zero-copy p50 / p99 µs under load | copy p50 / p99 µs under load |"
        );
        println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (size, zc, cp) in results {
            println!(
                "| {} | {:.0} | {:.0} | {} | {} | {} | {} |",
                size_label(*size),
                zc.buffers_s(),
                cp.buffers_s(),
                zc.mb_s_range(),
                cp.mb_s_range(),
                us_pair(&zc.loaded_ns),
                us_pair(&cp.loaded_ns),
            );
        }
        println!();
        println!(
            "Under load: the latency of the throughput runs, where buffers wait behind the credit \
             window; range: slowest and fastest round."
        );
        println!();
        println!(
            "payload_bytes_copied: zero-copy path {} (asserted 0; {} payload bytes sent), \
             copy baseline {} (its copies, counted the same way)",
            zc_snap.payload_bytes_copied, zc_snap.payload_bytes, copy_snap.payload_bytes_copied
        );

        let sizes: Vec<Value> = results
            .iter()
            .map(|(size, zc, cp)| {
                json!({
                    "size": size,
                    "zero_copy": zc.json(),
                    "copy": cp.json(),
                    "ratio": round(zc.mb_s() / cp.mb_s(), 3),
                })
            })
            .collect();
        let report = json!({
            "bench": "datapath",
            "date": date,
            "unix_time": unix_secs,
            "mode": if budget.smoke { "smoke" } else { "full" },
            "rounds": budget.rounds,
            "machine": machine.json(),
            "guest_memory": "anonymous mmap (stands in for QEMU's memfd)",
            "sizes": sizes,
            "payload_bytes_copied": {
                "zero_copy": zc_snap.payload_bytes_copied,
                "copy": copy_snap.payload_bytes_copied,
            },
        });
        println!("{report}");
    }
}

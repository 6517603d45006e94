//! `cargo xtask bench`: the case for redirection, measured (issue 9).
//!
//! On one machine and in one run: host CPU per stream, network bytes per
//! stream and picture quality of what a Spice desktop does without
//! redirection ([`baseline`]: decode in the guest, re-encode on the host)
//! against redirection through this project's daemon ([`redirect`]: the
//! compressed stream goes to the user's device, over a Unix socket and
//! over Spice, bit-exact), the ratios, the daemon at N concurrent streams
//! ([`scale`]), the per-call figures ([`calls`]) and the data-path
//! benchmark of the daemon ([`datapath`]), and the viewer's CPU per
//! stream beside the headless engine's and its geometry latency
//! ([`viewer`]). Clips come from [`clips`]
//! (cached), quality from [`quality`], the JSON line from [`report`], the
//! tables from that JSON by [`render`], the SVG chart from [`chart`];
//! [`measure`] reads CPU, bytes and memory of processes.
//!
//! A full run leaves its report in `docs/bench/latest.json` and its chart in
//! `docs/bench/latest.svg`, and re-renders the results block of
//! `docs/bench.md` from that JSON, so the figures in the docs are never
//! copied by hand; `--render-docs` re-renders the block alone (after a
//! change of [`render`]). A smoke run writes nothing under `docs/`.
//!
//! The full run builds what it runs optimised (`cargo build --release` of
//! the daemon, the player, the client binaries and `bench-scale` only);
//! `--smoke` (2 s 320x240 clips, N = 1, 2; part of `cargo xtask test`) uses
//! the debug binaries `cargo test` has just built, so its figures mean
//! little: it keeps the bench building and running. xtask links no
//! GStreamer: every media pipeline runs in a `gst-launch-1.0` child or in
//! the project's own binaries.

pub(crate) mod baseline;
pub(crate) mod calls;
pub(crate) mod chart;
pub(crate) mod clips;
pub(crate) mod datapath;
pub(crate) mod measure;
pub(crate) mod quality;
pub(crate) mod redirect;
pub(crate) mod render;
pub(crate) mod report;
pub(crate) mod scale;
pub(crate) mod viewer;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::process::{self, cargo_command};
use crate::tempdir;

/// Where a full run writes its chart (committed; `docs/bench.md` embeds it).
pub(crate) const CHART: &str = "docs/bench/latest.svg";
/// Where a full run writes its JSON report (committed; the source of the
/// results block of [`DOC`]).
pub(crate) const JSON: &str = "docs/bench/latest.json";
/// The document whose results block a full run re-renders.
pub(crate) const DOC: &str = "docs/bench.md";
/// [`JSON`] as [`DOC`] links it.
const JSON_LINK: &str = "bench/latest.json";

/// The build of everything the bench runs (`release`: optimised).
pub(crate) fn build_args(release: bool) -> Vec<&'static str> {
    let mut args = vec!["build"];
    if release {
        args.push("--release");
    }
    args.extend([
        "--locked",
        "-p",
        "vhost-user-mediaredir",
        "-p",
        "redir-play",
        "-p",
        "media-client",
        "-p",
        "conformance-tests",
        "-p",
        "mediaredir-viewer",
    ]);
    args.extend(crate::demo::VERIFYING_DAEMON_AND_PLAYER);
    args.extend([
        "--bin",
        "media-client",
        "--bin",
        "verify-clip",
        "--bin",
        "bench-scale",
        "--bin",
        "mediaredir-viewer",
    ]);
    args
}

/// The viewer's section: the H.264 clip of `seconds`; the geometry moves
/// play a clip of at least 10 s (the smoke run's 2 s could end before its
/// five moves do).
fn measure_viewer(seconds: u32, smoke: bool, bin: &Path) -> Result<viewer::ViewerBench> {
    println!("\n==> bench: the viewer against the headless engine");
    let cache = clips::cache_dir()?;
    let h264 = |c: &clips::Clip| c.kind == clips::Kind::H264Mp4;
    let clip = clips::clips(seconds, smoke)
        .into_iter()
        .find(h264)
        .context("no H.264 clip")?;
    let file = clips::ensure(&clip, &cache)?;
    let latency_clip = clips::clips(seconds.max(10), smoke)
        .into_iter()
        .find(h264)
        .context("no H.264 clip")?;
    let latency_file = clips::ensure(&latency_clip, &cache)?;
    viewer::measure(&clip, &file, &latency_file, bin)
}

/// The machine, one line: CPU model, cores, RAM, kernel, date.
pub(crate) fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_owned(), |(_, v)| v.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_gib = measure::proc_field(&meminfo, "MemTotal").unwrap_or(0) as f64 / 1048576.0;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "{model}, {cores} CPUs, {ram_gib:.1} GiB RAM, Linux {}, {date}, load average {} at the start",
        kernel.trim(),
        load.split_whitespace().next().unwrap_or("?")
    )
}

/// A section `cargo xtask bench --only` measures by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Section {
    /// The viewer against the headless engine, and the geometry latency.
    Viewer,
}

/// Runs the bench; the last line of stdout is the JSON report. With
/// `only`, that section alone, its figures printed and nothing written.
pub(crate) fn run(smoke: bool, only: Option<Section>) -> Result<()> {
    let start = Instant::now();
    let machine = machine();
    println!("bench: {machine}");
    process::run(&mut cargo_command(&build_args(!smoke)))?;
    if only == Some(Section::Viewer) {
        let bin = Path::new("target/release")
            .canonicalize()
            .context("the target directory")?;
        let figures = measure_viewer(30, false, &bin)?;
        println!("\n==> bench: the viewer alone ({machine})\n{figures:#?}");
        return Ok(());
    }
    let bin = Path::new(if smoke {
        "target/debug"
    } else {
        "target/release"
    })
    .canonicalize()
    .context("the target directory")?;
    let seconds = if smoke { 2 } else { 30 };
    let clips = clips::clips(seconds, smoke);
    let cache = clips::cache_dir()?;
    let files = clips
        .iter()
        .map(|c| clips::ensure(c, &cache))
        .collect::<Result<Vec<PathBuf>>>()?;
    println!("\n==> bench: data path");
    let datapath_json = datapath::measure(smoke)?;
    let scratch = tempdir::new("xtask-bench")?;
    let mut report = report::Report {
        smoke,
        machine,
        datapath_json,
        ..report::Report::default()
    };
    for (clip, file) in clips.iter().zip(&files) {
        println!("\n==> bench: baseline of {}", clip.name);
        report
            .baselines
            .push(baseline::measure(clip, file, scratch.path())?);
    }
    for (clip, file) in clips.iter().zip(&files) {
        for uplink in redirect::UPLINKS {
            println!("\n==> bench: {} redirected over {uplink:?}", clip.name);
            report
                .redirects
                .push(redirect::measure(clip, file, &bin, uplink)?);
        }
    }
    println!("\n==> bench: scale");
    let (ns, scale_s): (&[u32], u32) = if smoke {
        (&[1, 2], 2)
    } else {
        (&[1, 8, 32, 64], 10)
    };
    report.scale = scale::measure(&bin, ns, scale_s)?;
    println!("\n==> bench: calls");
    report.calls = calls::measure(seconds, smoke)?;
    report.viewer = Some(measure_viewer(seconds, smoke, &bin)?);
    report.elapsed_s = start.elapsed().as_secs_f64();
    let chart_path = if smoke {
        scratch.path().join("smoke.svg")
    } else {
        PathBuf::from(CHART)
    };
    chart::write(&report, &chart_path)?;
    let json = report.json();
    let parsed: serde_json::Value =
        serde_json::from_str(&json).context("the bench's own JSON report")?;
    println!("\n==> bench: report ({})\n", report.machine);
    print!("{}", render::tables(&parsed)?);
    println!(
        "\nchart: {}{}",
        chart_path.display(),
        if smoke { " (smoke: deleted)" } else { "" }
    );
    println!("bench: {:.0} s in all", report.elapsed_s);
    if !smoke {
        std::fs::write(JSON, format!("{json}\n")).with_context(|| format!("writing {JSON}"))?;
        render_docs()?;
    }
    println!("{json}");
    Ok(())
}

/// Re-renders the results block of [`DOC`] from [`JSON`] (`cargo xtask
/// bench --render-docs`, and the end of a full run).
pub(crate) fn render_docs() -> Result<()> {
    let changed = render::render_docs(Path::new(JSON), Path::new(DOC), JSON_LINK)?;
    println!(
        "bench: {DOC} {} from {JSON}",
        if changed {
            "re-rendered"
        } else {
            "already rendered"
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_only_what_the_bench_runs() {
        let full = build_args(true).join(" ");
        assert!(full.starts_with("build --release --locked -p vhost-user-mediaredir"));
        assert!(full.contains("--bin bench-scale") && full.contains("--bin verify-clip"));
        assert!(full.contains("--bin mediaredir-viewer"));
        assert!(!build_args(false).contains(&"--release"));
        assert!(machine().contains("CPUs"));
    }
}

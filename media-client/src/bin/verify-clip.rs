//! `verify-clip`: compares a verification report (`media-client
//! --verify-report`, `vhost-user-mediaredir --verify-report`) with decoding the
//! original file locally, and prints one JSON line:
//! `{"bit_exact":bool,"streams":N,"video_frames":N,"audio_buffers":N}`.
//!
//! Streams are matched in order: the report's streams by id (the order the
//! player created them in, one per track) against the reference decode's
//! streams of the same kind, in the order decodebin exposed them.
//! `video_frames` counts the frames the client decoded, `audio_buffers` the
//! audio samples per channel it decoded (the report keeps sample counts,
//! not buffer boundaries). Exits 1 when the output is not bit-exact.
//!
//! `--reference-cache FILE` keeps the local decode in FILE (the report's
//! text format) and reads it from there next time: a test that plays one
//! file through several players and uplinks decodes it locally once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use client_engine::VerificationReport;
use client_engine::verify::{MediaKind, StreamReport, reference_decode};

/// Compares a verification report with a local decode of the file.
#[derive(Debug, Parser)]
#[command(name = "verify-clip", version)]
struct Args {
    /// The original media file.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The verification report (text format `mediaredir-verify 1`).
    #[arg(long, value_name = "FILE")]
    report: PathBuf,
    /// Keep the local decode of the file here, and reuse it when the
    /// file exists (written by an earlier run on the same input).
    #[arg(long, value_name = "FILE")]
    reference_cache: Option<PathBuf>,
    /// Seconds the local decode may take.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// The local decode of the input, from the cache when it holds one.
fn reference(args: &Args) -> anyhow::Result<Vec<StreamReport>> {
    if let Some(cache) = &args.reference_cache
        && let Ok(text) = std::fs::read_to_string(cache)
    {
        let cached = VerificationReport::from_text(&text)
            .with_context(|| format!("parsing the cached reference {}", cache.display()))?;
        return Ok(cached.streams.into_values().collect());
    }
    let reference = reference_decode(&args.input, Duration::from_secs(args.timeout))
        .with_context(|| format!("decoding {} locally", args.input.display()))?;
    if let Some(cache) = &args.reference_cache {
        let report = VerificationReport {
            streams: (0u32..).zip(reference.iter().cloned()).collect(),
        };
        // Whole or not at all: runs in parallel may read it meanwhile.
        let partial = cache.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, report.to_text())
            .and_then(|()| std::fs::rename(&partial, cache))
            .with_context(|| format!("writing {}", cache.display()))?;
    }
    Ok(reference)
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.report)
        .with_context(|| format!("reading {}", args.report.display()))?;
    let report = VerificationReport::from_text(&text).context("parsing the report")?;
    let reference = reference(&args)?;
    let mut bit_exact = !report.streams.is_empty() && report.streams.len() == reference.len();
    let mut video_frames = 0u64;
    let mut audio_buffers = 0u64;
    for kind in [MediaKind::Video, MediaKind::Audio] {
        let got = report.streams.iter().filter(|(_, r)| r.kind == kind);
        let want = reference.iter().filter(|r| r.kind == kind);
        for ((id, got), want) in got.zip(want) {
            let same = got.count() > 0 && got.bit_exact(want);
            eprintln!(
                "verify-clip: stream {id} {kind:?}: client {} x {:x}, reference {} x {:x}: {}",
                got.count(),
                got.digest(),
                want.count(),
                want.digest(),
                if same { "bit-exact" } else { "DIFFERENT" }
            );
            bit_exact &= same;
        }
    }
    for r in report.streams.values() {
        match r.kind {
            MediaKind::Video => video_frames += r.count(),
            MediaKind::Audio => audio_buffers += r.count(),
        }
    }
    let verdict = serde_json::json!({
        "bit_exact": bit_exact,
        "streams": report.streams.len(),
        "video_frames": video_frames,
        "audio_buffers": audio_buffers,
    });
    println!("{verdict}");
    Ok(if bit_exact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

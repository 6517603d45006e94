//! `cargo xtask fuzz`: coverage-guided fuzzing of the untrusted-input
//! parsers on the stable toolchain.
//!
//! `cargo fuzz` wants nightly for its sanitizer flags; libFuzzer itself
//! does not. What it needs is SanitizerCoverage instrumentation, which
//! stable rustc emits with `-Cpasses=sancov-module` and the `-sanitizer-*`
//! LLVM options in [`RUSTFLAGS`], plus `--cfg fuzzing` (libfuzzer-sys and
//! the targets key on it). The build names `--target` explicitly so that
//! cargo applies `RUSTFLAGS` to the targets only, never to build scripts
//! (an instrumented build script would not link). Only AddressSanitizer
//! needs nightly; Rust's own bounds checks, overflow checks (on in the
//! fuzz profile) and libFuzzer's `-rss_limit_mb`/`-timeout` catch the
//! rest.
//!
//! Seeds are the files the demuxer tests make with the tools users' files
//! come from (their cache), copied into a corpus per target kept outside
//! the repository; findings land in `fuzz/artifacts/<target>/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process;

/// The instrumentation flags (see the module documentation).
pub(crate) const RUSTFLAGS: &str = "--cfg fuzzing -Cpasses=sancov-module \
     -Cllvm-args=-sanitizer-coverage-level=4 \
     -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
     -Cllvm-args=-sanitizer-coverage-pc-table \
     -Cllvm-args=-sanitizer-coverage-trace-compares";

/// The host target, named so that build scripts stay uninstrumented.
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The targets and the seed files each starts from (by extension).
pub(crate) const TARGETS: &[(&str, &[&str])] = &[
    ("demux_ivf", &["ivf"]),
    ("demux_matroska", &["mkv", "webm"]),
    ("demux_ogg", &["ogg", "opus", "oga"]),
    ("demux_mp4", &["mp4", "m4a", "mov"]),
    ("demux_annexb", &["h264", "h265", "264", "265"]),
    ("demux_mp3", &["mp3"]),
    ("demux_adts", &["aac", "adts"]),
    ("demux_flac", &["flac"]),
    ("demux_wav", &["wav"]),
    ("demux_ts", &["ts", "m2ts"]),
    ("demux_ps", &["vob", "mpg", "mpeg"]),
    ("demux_ac3", &["ac3", "eac3"]),
    ("demux_avi", &["avi"]),
    ("demux_mpv", &["m2v", "m1v", "mpv"]),
    (
        "demux_sniffed",
        &[
            "ivf", "mkv", "webm", "ogg", "mp4", "mp3", "aac", "flac", "wav", "ts", "vob", "ac3",
            "avi",
        ],
    ),
];

/// Largest seed copied into a corpus: libFuzzer works best on small inputs.
const MAX_SEED_BYTES: u64 = 256 * 1024;

/// How much of each target one run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    /// Fuzz for this many seconds, growing the corpus kept in the cache.
    Seconds(u32),
    /// The deterministic smoke run of `cargo xtask test`: this many
    /// inputs with a fixed random seed, from the seed files alone (a fresh
    /// corpus each time), so the step cannot flake.
    Smoke(u32),
}

/// Options of one fuzzing run.
#[derive(Debug, Clone)]
pub(crate) struct FuzzOptions {
    /// Targets to run (empty: all).
    pub(crate) targets: Vec<String>,
    /// How long each runs.
    pub(crate) budget: Budget,
}

/// Inputs per target in the smoke run.
pub(crate) const SMOKE_RUNS: u32 = 3000;

/// Builds the targets and runs each for `seconds`; fails on any finding.
pub(crate) fn run(options: &FuzzOptions) -> Result<()> {
    let chosen = chosen_targets(&options.targets)?;
    build()?;
    let seeds = seed_files();
    let mut findings = Vec::new();
    for (name, extensions) in chosen {
        // The smoke run's corpus is scratch; a real run's grows in the cache.
        let scratch = match options.budget {
            Budget::Smoke(_) => Some(crate::tempdir::new(name)?),
            Budget::Seconds(_) => None,
        };
        let corpus = match &scratch {
            Some(dir) => dir.path().to_owned(),
            None => corpus_dir(name)?,
        };
        let copied = copy_seeds(&seeds, extensions, &corpus)?;
        let artifacts = Path::new("fuzz/artifacts").join(name);
        std::fs::create_dir_all(&artifacts)?;
        println!("fuzz: {name}: {:?}, {copied} new seeds", options.budget);
        let mut cmd = Command::new(binary(name));
        cmd.args(fuzzer_args(options.budget, &artifacts))
            .arg(&corpus);
        if process::run(&mut cmd).is_err() {
            findings.push(format!("{name} (see {})", artifacts.display()));
        }
    }
    if !findings.is_empty() {
        bail!(
            "fuzzing found crashes, hangs or leaks in: {}",
            findings.join(", ")
        );
    }
    Ok(())
}

/// The targets named (all when none), with their seed extensions.
pub(crate) fn chosen_targets(
    names: &[String],
) -> Result<Vec<(&'static str, &'static [&'static str])>> {
    if names.is_empty() {
        return Ok(TARGETS.to_vec());
    }
    names
        .iter()
        .map(|n| {
            TARGETS
                .iter()
                .find(|(t, _)| t == n)
                .copied()
                .with_context(|| {
                    format!("no fuzz target {n}; `cargo xtask fuzz --list` lists them")
                })
        })
        .collect()
}

/// libFuzzer's options: stop after the budget; a run over 10 s on one
/// input is a hang; over 2 GiB of memory is unbounded memory; one process.
pub(crate) fn fuzzer_args(budget: Budget, artifacts: &Path) -> Vec<String> {
    let stop = match budget {
        Budget::Seconds(seconds) => vec![format!("-max_total_time={seconds}")],
        Budget::Smoke(runs) => vec![format!("-runs={runs}"), "-seed=1".into()],
    };
    stop.into_iter()
        .chain([
            "-timeout=10".into(),
            "-rss_limit_mb=2048".into(),
            "-max_len=1048576".into(),
            "-print_final_stats=1".into(),
            format!("-artifact_prefix={}/", artifacts.display()),
        ])
        .collect()
}

fn build() -> Result<()> {
    let mut cmd = process::cargo_command(&[
        "build",
        "--release",
        "--manifest-path",
        "fuzz/Cargo.toml",
        "--target",
        TARGET,
        "--bins",
    ]);
    cmd.env("RUSTFLAGS", RUSTFLAGS);
    process::run(&mut cmd)
}

fn binary(name: &str) -> PathBuf {
    Path::new("fuzz/target")
        .join(TARGET)
        .join("release")
        .join(name)
}

/// Where the corpus of `target` grows between runs.
fn corpus_dir(target: &str) -> Result<PathBuf> {
    let dir = crate::flatc_install::project_cache()?
        .join("fuzz-corpus")
        .join(target);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// The test files the demuxer tests made (cached).
fn seed_files() -> Vec<PathBuf> {
    let Ok(cache) = crate::flatc_install::project_cache() else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for dir in ["clips-demux"] {
        if let Ok(entries) = std::fs::read_dir(cache.join(dir)) {
            files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    files
}

/// Copies the seeds with one of `extensions` (and small enough) into
/// `corpus`; returns how many were new.
fn copy_seeds(seeds: &[PathBuf], extensions: &[&str], corpus: &Path) -> Result<usize> {
    let mut copied = 0;
    for seed in seeds {
        let ext = seed.extension().and_then(|e| e.to_str()).unwrap_or("");
        let small = std::fs::metadata(seed).is_ok_and(|m| m.len() <= MAX_SEED_BYTES);
        if !small || !extensions.contains(&ext) {
            continue;
        }
        let Some(name) = seed.file_name() else {
            continue;
        };
        let to = corpus.join(name);
        if !to.exists() {
            std::fs::copy(seed, &to).with_context(|| format!("copying {}", seed.display()))?;
            copied += 1;
        }
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_has_a_source_and_a_manifest_entry() {
        let root = crate::workspace_root().join("fuzz");
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        for (name, extensions) in TARGETS {
            assert!(!extensions.is_empty());
            assert!(
                root.join("fuzz_targets")
                    .join(format!("{name}.rs"))
                    .is_file(),
                "no source for {name}"
            );
            assert!(
                manifest.contains(&format!("name = \"{name}\"")),
                "{name} not a [[bin]]"
            );
        }
    }

    #[test]
    fn unknown_targets_are_refused() {
        assert!(chosen_targets(&["nope".into()]).is_err());
        assert_eq!(chosen_targets(&[]).unwrap().len(), TARGETS.len());
        assert_eq!(
            chosen_targets(&["demux_ts".into()]).unwrap()[0].0,
            "demux_ts"
        );
    }

    #[test]
    fn flags_are_the_stable_recipe() {
        assert!(RUSTFLAGS.contains("--cfg fuzzing"));
        assert!(RUSTFLAGS.contains("-Cpasses=sancov-module"));
        assert!(!RUSTFLAGS.contains("-Zsanitizer"), "nightly-only flag");
        let args = fuzzer_args(Budget::Seconds(5), Path::new("fuzz/artifacts/x"));
        assert!(args.contains(&"-max_total_time=5".to_owned()));
        assert!(args.contains(&"-artifact_prefix=fuzz/artifacts/x/".to_owned()));
        // The smoke run is deterministic: a count and a fixed seed, no clock.
        let args = fuzzer_args(Budget::Smoke(100), Path::new("a"));
        assert!(args.contains(&"-runs=100".to_owned()) && args.contains(&"-seed=1".to_owned()));
        assert!(!args.iter().any(|a| a.starts_with("-max_total_time")));
    }
}

//! `cargo xtask demo --matrix`: the demo on every clip of the codec and
//! container matrix (`tests/data/clip-matrix.txt`), each made by the tool
//! users' files come from (GStreamer, ffmpeg, or a shell line running
//! mkvmerge, opusenc, oggenc, lame, flac...) and played through the whole
//! stack; every run must come out bit-exact against GStreamer's own
//! playback of the file.
//!
//! Every clip plays through `redir-play` (the project's demuxers) on the
//! local and the Unix-socket uplink, and through the guest GStreamer sink
//! (`redir-gst-play`: playbin's demuxers and parsers into
//! `mediaredirsink`); the first clip of each container also over TCP, TLS
//! and Spice. Generated clips are cached by a hash of their command in
//! `$XDG_CACHE_HOME/vhost-device-media/clip-matrix`.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::demo::{self, DemoPlayer, DemoUplink};
use crate::process;
use crate::tempdir;

/// One clip of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clip {
    pub(crate) name: String,
    pub(crate) file: String,
    /// The command with `{V}`/`{A}` expanded; `{out}` still to fill in.
    pub(crate) pipeline: String,
    /// Players that cannot take this form, each with the reason (`X`
    /// lines of the matrix file).
    pub(crate) excluded: Vec<(DemoPlayer, String)>,
}

impl Clip {
    /// The container, from the file name's extension: the first clip of
    /// each container also runs over the network uplinks.
    fn container(&self) -> &str {
        let ext = self.file.rsplit('.').next().unwrap_or_default();
        match ext {
            "m4a" | "mov" | "m4v" | "3gp" => "mp4",
            "webm" | "mka" => "mkv",
            "opus" | "oga" => "ogg",
            "m2ts" | "mts" => "ts",
            "vob" | "mpeg" => "mpg",
            "m2v" => "mpv",
            "eac3" => "ac3",
            "mp2" => "mp3",
            other => other,
        }
    }
}

/// Parses the matrix file: `V`/`A` source lines, `X NAME PLAYER REASON`
/// exclusions, then `NAME FILE COMMAND`.
pub(crate) fn parse(text: &str) -> Result<Vec<Clip>> {
    let (mut video, mut audio) = (String::new(), String::new());
    let mut clips: Vec<Clip> = Vec::new();
    let mut exclusions = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, ' ');
        let (Some(first), Some(second)) = (parts.next(), parts.next()) else {
            bail!("clip matrix: bad line {line:?}");
        };
        let rest = parts.next().unwrap_or_default();
        match first {
            "V" => video = format!("{second} {rest}"),
            "A" => audio = format!("{second} {rest}"),
            "X" => exclusions.push((second.to_owned(), rest.to_owned())),
            name => {
                if rest.is_empty() {
                    bail!("clip matrix: {name} has no command");
                }
                clips.push(Clip {
                    name: name.to_owned(),
                    file: second.to_owned(),
                    pipeline: rest.replace("{V}", &video).replace("{A}", &audio),
                    excluded: Vec::new(),
                });
            }
        }
    }
    for (name, rest) in exclusions {
        let (player, reason) = rest.split_once(' ').unwrap_or((&rest, ""));
        let player = match player {
            "sink" => DemoPlayer::Sink,
            "redir-play" => DemoPlayer::RedirPlay,
            other => bail!("clip matrix: X {name}: unknown player {other:?}"),
        };
        if reason.trim().is_empty() {
            bail!("clip matrix: X {name} {}: say why", player.name());
        }
        let clip = clips
            .iter_mut()
            .find(|c| c.name == name)
            .with_context(|| format!("clip matrix: X names no clip {name:?}"))?;
        clip.excluded.push((player, reason.trim().to_owned()));
    }
    Ok(clips)
}

/// The matrix of this checkout.
fn clips() -> Result<Vec<Clip>> {
    let path = crate::workspace_root().join("tests/data/clip-matrix.txt");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text)
}

/// The command that writes `clip` to `out` (by its first word: `sh`,
/// `ffmpeg` or a GStreamer pipeline).
fn generator(clip: &Clip, out: &Path) -> Command {
    test_support::clips::generator_command(
        &clip.pipeline.replace("{out}", &out.display().to_string()),
    )
}

/// The cached file of `clip`, generated first unless it is there.
fn ensure(clip: &Clip, cache: &Path) -> Result<PathBuf> {
    let mut hash = DefaultHasher::new();
    clip.pipeline.hash(&mut hash);
    let path = cache.join(format!("{:016x}-{}", hash.finish(), clip.file));
    if path.is_file() {
        return Ok(path);
    }
    // A scratch directory as the working directory, for commands that
    // write intermediate files (DASH segments, WAV input of an encoder).
    let work = tempdir::new("xtask-matrix")?;
    let partial = work.path().join(&clip.file);
    process::run(generator(clip, &partial).current_dir(work.path()))
        .with_context(|| format!("generating the {} clip", clip.name))?;
    if !partial.is_file() {
        bail!("generating the {} clip wrote no {}", clip.name, clip.file);
    }
    std::fs::copy(&partial, &path).with_context(|| format!("caching {}", path.display()))?;
    Ok(path)
}

/// Which player on which uplink each clip plays through.
pub(crate) struct Plan {
    /// Runs of every clip.
    every: Vec<(DemoPlayer, DemoUplink)>,
    /// Runs of the first clip of each container.
    per_container: Vec<(DemoPlayer, DemoUplink)>,
}

impl Plan {
    /// Every clip through both players on the local and Unix-socket
    /// uplinks; one clip per container over TCP and TLS (redir-play) and
    /// Spice (the guest sink, as a guest desktop application in a VM's
    /// Spice session plays).
    pub(crate) fn all() -> Plan {
        Plan {
            every: vec![
                (DemoPlayer::RedirPlay, DemoUplink::Local),
                (DemoPlayer::RedirPlay, DemoUplink::Unix),
                (DemoPlayer::Sink, DemoUplink::Local),
            ],
            per_container: vec![
                (DemoPlayer::RedirPlay, DemoUplink::Tcp),
                (DemoPlayer::RedirPlay, DemoUplink::Tls),
                (DemoPlayer::Sink, DemoUplink::Spice),
            ],
        }
    }

    /// The runs of `clips`: (clip index, player, uplink), pass by pass
    /// (every clip through the first player and uplink, then every clip
    /// through the next...), so that a clip's first run, which makes its
    /// local reference decode, ends before its next one starts.
    fn runs(&self, clips: &[Clip]) -> Vec<(usize, DemoPlayer, DemoUplink)> {
        let mut containers = BTreeSet::new();
        let first: Vec<bool> = clips
            .iter()
            .map(|clip| containers.insert(clip.container().to_owned()))
            .collect();
        let passes = (self.every.iter().map(|run| (run, false)))
            .chain(self.per_container.iter().map(|run| (run, true)));
        let mut runs = Vec::new();
        for (&(player, uplink), first_only) in passes {
            for (i, clip) in clips.iter().enumerate() {
                let excluded = clip.excluded.iter().any(|(p, _)| *p == player);
                if !excluded && (first[i] || !first_only) {
                    runs.push((i, player, uplink));
                }
            }
        }
        runs
    }
}

/// Runs the plan on every clip, `jobs` runs at a time (default: twice the
/// number of CPUs); the last stdout line is a JSON summary.
///
/// Each run is a `cargo xtask demo-run` child of its own (this program,
/// inside this task's scope) writing to a log of its own: a guest-sink run
/// plays in real time (the sink syncs to the pipeline clock, as in a guest
/// desktop) and every run waits on processes and sockets, so runs overlap
/// well (84 clips on 2 CPUs: one run at a time 3 min 52 s, two about 2 min,
/// four 1 min 20 s).
/// A failed run's log is printed whole; a passing run prints its summary.
/// The clip's local reference decode is made by its first run and kept
/// for the others.
pub(crate) fn run(plan: &Plan, jobs: Option<u16>) -> Result<()> {
    let all = clips()?;
    let cache = crate::flatc_install::project_cache()?.join("clip-matrix");
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    demo::build_stack(true, false)?;
    let mut failed: Vec<String> = Vec::new();
    let mut files = Vec::new();
    for clip in &all {
        for (player, reason) in &clip.excluded {
            println!(
                "matrix: {}: not with {}: {reason}",
                clip.name,
                player.name()
            );
        }
        match ensure(clip, &cache) {
            Ok(path) => files.push(Some(path)),
            Err(e) => {
                println!("matrix: {}: FAILED: {e:#}", clip.name);
                failed.push(clip.name.clone());
                files.push(None);
            }
        }
    }
    let runs: Vec<Run> = plan
        .runs(&all)
        .into_iter()
        .filter_map(|(i, player, uplink)| {
            Some(Run {
                label: format!("{}/{}/{}", all[i].name, player.name(), uplink.name()),
                file: files[i].clone()?,
                reference: format!("{}.reference", all[i].name),
                player,
                uplink,
            })
        })
        .collect();
    let jobs = jobs.map_or_else(
        || std::thread::available_parallelism().map_or(2, |n| 2 * usize::from(n)),
        usize::from,
    );
    println!("matrix: {} runs, {jobs} at a time", runs.len());
    failed.extend(run_all(&runs, jobs)?);
    let summary = MatrixSummary {
        ok: failed.is_empty(),
        clips: all.len(),
        runs: runs.len(),
        bit_exact: runs.len().saturating_sub(failed.len()),
        failed: &failed,
    };
    println!("{}", serde_json::to_string(&summary)?);
    if !failed.is_empty() {
        bail!("the matrix failed on {}", failed.join(", "));
    }
    Ok(())
}

/// The matrix's verdict, its last stdout line (keys in this order).
#[derive(Debug, Serialize)]
struct MatrixSummary<'a> {
    /// Every run was bit-exact and every clip was made.
    ok: bool,
    /// Clips in the matrix.
    clips: usize,
    /// Runs played.
    runs: usize,
    /// Runs that came out bit-exact.
    bit_exact: usize,
    /// The clips that could not be made and the runs that failed.
    failed: &'a [String],
}

/// One run of the matrix.
struct Run {
    /// `clip/player/uplink`.
    label: String,
    file: PathBuf,
    /// The reference cache's file name (one per clip).
    reference: String,
    player: DemoPlayer,
    uplink: DemoUplink,
}

/// Plays `runs` on `jobs` threads, each starting one `demo-run` at a
/// time; prints each run's outcome as it ends and returns the labels of
/// the failed runs. Stops starting runs once the task is interrupted.
fn run_all(runs: &[Run], jobs: usize) -> Result<Vec<String>> {
    let exe = std::env::current_exe().context("finding xtask's own program")?;
    let work = tempdir::new("xtask-matrix")?;
    let next = AtomicUsize::new(0);
    let (done, outcomes) = mpsc::channel::<(usize, Result<String, String>)>();
    let mut failed = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            let (done, next, exe, dir) = (done.clone(), &next, &exe, work.path());
            s.spawn(move || {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= runs.len() || crate::scope::interrupted().is_some() {
                        break;
                    }
                    let outcome = run_one(exe, dir, &runs[n], n);
                    if done.send((n, outcome)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        for (n, outcome) in outcomes {
            match outcome {
                Ok(summary) => println!("matrix: {}: {summary}", runs[n].label),
                Err(log) => {
                    println!("matrix: {}: FAILED; its log:", runs[n].label);
                    println!("{log}");
                    println!("matrix: {}: end of its log", runs[n].label);
                    failed.push(runs[n].label.clone());
                }
            }
        }
    });
    if let Some(signal) = crate::scope::interrupted() {
        bail!("interrupted by signal {signal}");
    }
    Ok(failed)
}

/// One `demo-run` of `run` with its output in a log of its own in `dir`:
/// its summary line when it passed, its whole log when it failed.
fn run_one(exe: &Path, dir: &Path, run: &Run, n: usize) -> Result<String, String> {
    let log_path = dir.join(format!("run-{n}.log"));
    let mut cmd = Command::new(exe);
    cmd.arg("demo-run")
        .arg("--input")
        .arg(&run.file)
        .args(["--uplink", run.uplink.name(), "--player", run.player.name()])
        .arg("--reference-cache")
        .arg(dir.join(&run.reference));
    let line = process::display(&cmd);
    let status = std::fs::File::create(&log_path)
        .and_then(|log| Ok((log.try_clone()?, log)))
        .and_then(|(out, err)| cmd.stdin(Stdio::null()).stdout(out).stderr(err).status());
    let log = std::fs::read(&log_path).unwrap_or_default();
    let log = format!("$ {line}\n{}", String::from_utf8_lossy(&log));
    match status {
        Ok(status) if status.success() => Ok(log.lines().last().unwrap_or_default().to_owned()),
        Ok(status) => Err(format!("{log}\n(exited: {status})")),
        Err(e) => Err(format!("{log}\ncannot start it: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_file_parses() {
        let all = clips().expect("the matrix parses");
        assert!(all.len() >= 10, "{} clips", all.len());
        for clip in &all {
            assert!(clip.pipeline.contains("{out}"), "{}: no {{out}}", clip.name);
            assert!(!clip.pipeline.contains("{V}") && !clip.pipeline.contains("{A}"));
        }
    }

    #[test]
    fn sources_expand() {
        let text = "V v ! x\nA a ! y\nboth f.webm {V} ! m {A} ! m. out={out}\n";
        let clips = parse(text).unwrap();
        assert_eq!(clips[0].pipeline, "v ! x ! m a ! y ! m. out={out}");
        assert!(parse("lonely\n").is_err());
    }

    #[test]
    fn exclusions_need_a_clip_a_player_and_a_reason() {
        let text = "a a.ts x {out}\nX a sink playbin cannot read a list of files\n";
        let clips = parse(text).unwrap();
        assert_eq!(clips[0].excluded.len(), 1);
        assert_eq!(clips[0].excluded[0].0, DemoPlayer::Sink);
        assert!(parse("a a.ts x {out}\nX a sink\n").is_err());
        assert!(parse("a a.ts x {out}\nX b sink why\n").is_err());
        assert!(parse("a a.ts x {out}\nX a vlc why\n").is_err());
    }

    #[test]
    fn the_first_clip_of_each_container_also_runs_over_the_network() {
        let text = "a a.mp4 x {out}\nb b.m4a x {out}\nc c.ts x {out}\n\
                    X c sink tsdemux cannot\n";
        let clips = parse(text).unwrap();
        let runs = Plan::all().runs(&clips);
        let of = |i: usize| runs.iter().filter(|r| r.0 == i).count();
        assert_eq!(of(0), 6, "first mp4: 3 everywhere + 3 network");
        assert_eq!(of(1), 3, "second mp4 (m4a): the 3 common runs only");
        // The TS: 2 redir-play runs + TCP and TLS; its sink runs excluded.
        assert_eq!(of(2), 4);
        assert!(!runs.iter().any(|r| r.0 == 2 && r.1 == DemoPlayer::Sink));
    }

    #[test]
    fn every_clip_plays_once_before_any_plays_twice() {
        let text = "a a.mp4 x {out}\nb b.ts x {out}\nc c.mp4 x {out}\n";
        let runs = Plan::all().runs(&parse(text).unwrap());
        let firsts: Vec<usize> = runs[..3].iter().map(|r| r.0).collect();
        assert_eq!(firsts, [0, 1, 2], "{runs:?}");
        assert!(
            runs[..3]
                .iter()
                .all(|r| (r.1, r.2) == (DemoPlayer::RedirPlay, DemoUplink::Local))
        );
    }

    #[test]
    fn generators_by_the_first_word() {
        let clips = parse(
            "aac f.m4a ffmpeg -f lavfi -i sine -c:a aac {out}\n\
             mkv f.mkv sh ffmpeg -i x a.mkv && mkvmerge -o {out} a.mkv\n\
             v f.ivf videotestsrc ! filesink location={out}\n",
        )
        .unwrap();
        let cmd = generator(&clips[0], Path::new("/x/f.m4a"));
        assert_eq!(cmd.get_program(), "ffmpeg");
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args.last().copied(), Some(std::ffi::OsStr::new("/x/f.m4a")));
        assert!(args.contains(&std::ffi::OsStr::new("-nostdin")));
        let sh = generator(&clips[1], Path::new("/o/f.mkv"));
        assert_eq!(sh.get_program(), "sh");
        let args: Vec<_> = sh.get_args().collect();
        assert_eq!(
            args.last().copied(),
            Some(std::ffi::OsStr::new(
                "ffmpeg -i x a.mkv && mkvmerge -o /o/f.mkv a.mkv"
            ))
        );
        assert_eq!(
            generator(&clips[2], Path::new("o")).get_program(),
            "gst-launch-1.0"
        );
    }
}

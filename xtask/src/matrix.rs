//! `cargo xtask demo --matrix`: the demo on every clip of the codec and
//! container matrix (`tests/data/clip-matrix.txt`), each generated with
//! `gst-launch-1.0` (or, for a line whose command starts with `ffmpeg`,
//! with ffmpeg: the files people's players most often meet, with their
//! edit lists, priming and padding) and played through the whole stack;
//! every one must come out bit-exact against GStreamer's own playback of
//! the file.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::demo::{self, DemoUplink};
use crate::process;
use crate::tempdir::TempDir;

/// One clip of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clip {
    pub(crate) name: String,
    pub(crate) file: String,
    /// The pipeline with `{V}`/`{A}` expanded; `{out}` still to fill in.
    pub(crate) pipeline: String,
}

/// Parses the matrix file: `V`/`A` source lines, then `NAME FILE PIPELINE`.
pub(crate) fn parse(text: &str) -> Result<Vec<Clip>> {
    let (mut video, mut audio) = (String::new(), String::new());
    let mut clips = Vec::new();
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
            name => {
                if rest.is_empty() {
                    bail!("clip matrix: {name} has no pipeline");
                }
                clips.push(Clip {
                    name: name.to_owned(),
                    file: second.to_owned(),
                    pipeline: rest.replace("{V}", &video).replace("{A}", &audio),
                });
            }
        }
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

/// The command that writes `clip` to `out`.
fn generator(clip: &Clip, out: &Path) -> Command {
    let text = clip.pipeline.replace("{out}", &out.display().to_string());
    let mut words = text.split_whitespace();
    if let Some(args) = text.strip_prefix("ffmpeg ") {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-loglevel", "error", "-y"])
            .args(args.split_whitespace());
        return cmd;
    }
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.arg("-q").args(words.by_ref());
    cmd
}

fn generate(clip: &Clip, out: &Path) -> Result<()> {
    process::run(&mut generator(clip, out))
        .with_context(|| format!("generating the {} clip", clip.name))
}

/// Runs the demo on every clip; the last stdout line is a JSON summary.
pub(crate) fn run(uplink: DemoUplink) -> Result<()> {
    let dir = TempDir::new("xtask-matrix")?;
    let mut failed: Vec<String> = Vec::new();
    let all = clips()?;
    for clip in &all {
        let path: PathBuf = dir.path().join(&clip.file);
        println!("matrix: {}", clip.name);
        let result = generate(clip, &path).and_then(|()| demo::run(Some(path), uplink));
        if let Err(e) = result {
            println!("matrix: {}: FAILED: {e:#}", clip.name);
            failed.push(clip.name.clone());
        }
    }
    let names: Vec<String> = failed.iter().map(|n| format!("\"{n}\"")).collect();
    println!(
        "{{\"ok\":{},\"clips\":{},\"bit_exact\":{},\"failed\":[{}]}}",
        failed.is_empty(),
        all.len(),
        all.len() - failed.len(),
        names.join(",")
    );
    if !failed.is_empty() {
        bail!("the demo failed on {}", failed.join(", "));
    }
    Ok(())
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
    fn ffmpeg_lines_run_ffmpeg() {
        let clips = parse("aac f.m4a ffmpeg -f lavfi -i sine -c:a aac {out}\n").unwrap();
        let cmd = generator(&clips[0], Path::new("/x/f.m4a"));
        assert_eq!(cmd.get_program(), "ffmpeg");
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args.last().copied(), Some(std::ffi::OsStr::new("/x/f.m4a")));
        assert!(args.contains(&std::ffi::OsStr::new("-nostdin")));
        let gst = parse("v f.ivf videotestsrc ! filesink location={out}\n").unwrap();
        assert_eq!(
            generator(&gst[0], Path::new("o")).get_program(),
            "gst-launch-1.0"
        );
    }
}

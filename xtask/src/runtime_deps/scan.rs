//! What the sources name: GStreamer factories and external programs.
//!
//! A plain text scan, no Rust parser: string literals are found by their
//! quotes (raw strings and escapes are rare in these names and harmless to
//! miss: the factory words of a pipeline string survive either way), and
//! programs by the two spellings the project uses to start one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Seen, Used};

/// Files whose literals are examples, not uses (the scanner's own tests,
/// the test-support crate's test of a missing tool, and the sink list's
/// test that the forbidden sinks are never chosen).
const EXAMPLE_FILES: &[&str] = &[
    "xtask/src/runtime_deps.rs",
    "xtask/src/runtime_deps/scan.rs",
    "client-engine/src/sinks/tests.rs",
    "test-support/src/require.rs",
];

/// Everything the scan found.
#[derive(Debug, Default)]
pub(crate) struct Uses {
    /// Words of string literals (and of pipeline data files), with one
    /// place each: factories if the registry knows them.
    pub(crate) words: Seen,
    /// Words that are factories whether the registry knows them or not:
    /// the elements of pipeline descriptions (`a ! b ! c`) and the names
    /// given to `make("...")`.
    pub(crate) factories: Seen,
    /// Programs started, with one place each.
    pub(crate) programs: Vec<Used>,
}

impl Uses {
    /// The factories used: words that name a factory of `registry`, and
    /// the certain factory words (see [`Uses::factories`]) even when the
    /// registry lacks them; `own` factories (ours) left out.
    pub(crate) fn factory_candidates(
        &self,
        registry: &BTreeSet<String>,
        own: &[&str],
    ) -> Vec<Used> {
        let mut all: Seen = self
            .words
            .iter()
            .filter(|(word, _)| registry.contains(*word))
            .map(|(w, at)| (w.clone(), at.clone()))
            .collect();
        for (word, at) in &self.factories {
            all.entry(word.clone()).or_insert_with(|| at.clone());
        }
        all.into_iter()
            .filter(|(word, _)| !own.contains(&word.as_str()))
            .map(|(name, at)| Used { name, at })
            .collect()
    }

    /// Adds what one file names.
    pub(crate) fn add_file(&mut self, display: &str, text: &str, rust: bool) {
        if EXAMPLE_FILES.contains(&display) {
            return;
        }
        for (number, line) in text.lines().enumerate() {
            let at = format!("{display}:{}", number + 1);
            let code = if rust { strip_line_comment(line) } else { line };
            let literals: Vec<&str> = if rust { literals(code) } else { vec![code] };
            for literal in &literals {
                for word in words(literal) {
                    self.words
                        .entry(word.to_owned())
                        .or_insert_with(|| at.clone());
                }
                for element in pipeline_elements(literal) {
                    self.factories
                        .entry(element.to_owned())
                        .or_insert_with(|| at.clone());
                }
                if factory_shaped(literal) {
                    self.factories
                        .entry((*literal).to_owned())
                        .or_insert_with(|| at.clone());
                }
            }
            if rust {
                for factory in called_with(code, &["make(\"", "ElementFactory::make(\""]) {
                    self.factories
                        .entry(factory.to_owned())
                        .or_insert_with(|| at.clone());
                }
            }
            let programs = if rust {
                programs(code)
            } else if display.ends_with("clip-matrix.txt") {
                matrix_programs(code)
            } else {
                Vec::new()
            };
            for program in programs {
                if !self.programs.iter().any(|u| u.name == program) {
                    self.programs.push(Used {
                        name: program.to_owned(),
                        at: at.clone(),
                    });
                }
            }
        }
    }
}

/// Scans the workspace's Rust sources (not generated code, not `target/`)
/// and the test data's text files.
pub(crate) fn scan_tree(root: &Path) -> Result<Uses> {
    let mut uses = Uses::default();
    let mut files = Vec::new();
    collect(root, root, &mut files)?;
    files.sort();
    for file in files {
        let rust = file.extension().is_some_and(|e| e == "rs");
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let display = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        uses.add_file(&display, &text, rust);
    }
    Ok(uses)
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "target" || name == "generated" {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files)?;
        } else if name.ends_with(".rs")
            || (name.ends_with(".txt")
                && path
                    .strip_prefix(root)
                    .is_ok_and(|p| p.starts_with("tests/data")))
        {
            files.push(path);
        }
    }
    Ok(())
}

/// The line without a `//` comment (a `//` inside a string is rare in the
/// names sought; a URL in a string loses its tail, which holds none).
fn strip_line_comment(line: &str) -> &str {
    let trimmed = line.trim_start();
    if trimmed.starts_with("//") {
        return "";
    }
    line
}

/// The contents of the `"..."` literals of a line.
fn literals(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else { break };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}

/// Words that could be factory names: lowercase letters, digits, `_`, `-`,
/// starting with a letter.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'))
        .filter(|w| w.len() > 2 && w.starts_with(|c: char| c.is_ascii_lowercase()))
}

/// Endings of element factory names.
const FACTORY_ENDINGS: &[&str] = &[
    "sink", "src", "dec", "enc", "parse", "mux", "demux", "pay", "depay",
];

/// Literals that are factory-shaped words but no factory.
const NOT_FACTORIES: &[&str] = &["codec", "showsrc"];

/// A literal that is one factory-shaped word, such as `"ximagesink"`: a
/// sink chosen by name in a `match` is no pipeline and no `make("...")`.
fn factory_shaped(literal: &str) -> bool {
    literal.len() > 5
        && !NOT_FACTORIES.contains(&literal)
        && literal.starts_with(|c: char| c.is_ascii_lowercase())
        && literal
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && FACTORY_ENDINGS
            .iter()
            .any(|e| literal.len() > e.len() + 1 && literal.ends_with(e))
}

/// The element names of a pipeline description `a p=1 ! caps ! b`: the
/// first word of each `!`-separated part that is a plain name (caps such
/// as `video/x-raw,...` and properties are not).
fn pipeline_elements(text: &str) -> Vec<&str> {
    if !text.contains(" ! ") {
        return Vec::new();
    }
    text.split('!')
        .filter_map(|part| part.split_whitespace().next())
        .filter(|w| {
            w.len() > 2
                && w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        .collect()
}

/// Programs started on this line: `Command::new("x")`, a required tool's
/// `program: "x"`, and the demuxer tests' file maker `made_by("x", ...)`.
fn programs(line: &str) -> Vec<&str> {
    called_with(line, &["Command::new(\"", "program: \"", "made_by(\""])
}

/// Programs a clip-matrix line (`NAME FILE COMMAND`) runs: `ffmpeg`, or
/// for a `sh` line the first word of each command of the script
/// (`gst-launch-1.0` lines name factories, found as pipeline elements).
fn matrix_programs(line: &str) -> Vec<&str> {
    let mut parts = line.splitn(3, ' ');
    let (Some(name), Some(_), Some(command)) = (parts.next(), parts.next(), parts.next()) else {
        return Vec::new();
    };
    if name.starts_with('#') || ["V", "A", "X"].contains(&name) {
        return Vec::new();
    }
    if command.starts_with("ffmpeg ") {
        return vec!["ffmpeg"];
    }
    let Some(script) = command.strip_prefix("sh ") else {
        return vec!["gst-launch-1.0"];
    };
    script
        .split(['|', ';', '&', '(', ')'])
        .filter_map(|c| c.split_whitespace().next())
        .filter(|w| !w.contains(['=', '{', '/', '$']) && !["cat", "cd", "ls", "rm"].contains(w))
        .collect()
}

/// The string literals that directly follow one of `markers`, when they
/// are plain names (no path, no space).
fn called_with<'a>(line: &'a str, markers: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    for &marker in markers {
        let mut rest = line;
        while let Some(start) = rest.find(marker) {
            let after = &rest[start + marker.len()..];
            let Some(end) = after.find('"') else { break };
            let name = &after[..end];
            if !name.is_empty() && !name.contains(['/', ' ', '{']) {
                out.push(name);
            }
            rest = &after[end..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_lines_name_their_programs() {
        assert_eq!(
            matrix_programs("a a.mp3 sh ffmpeg -i x -f wav - | lame - {out} && mkvmerge -o b a"),
            ["ffmpeg", "lame", "mkvmerge"]
        );
        assert_eq!(matrix_programs("a a.m4a ffmpeg -i x {out}"), ["ffmpeg"]);
        assert_eq!(
            matrix_programs("a a.ogg audiotestsrc ! oggmux ! filesink location={out}"),
            ["gst-launch-1.0"]
        );
        assert!(matrix_programs("X a sink why").is_empty());
        assert!(matrix_programs("V videotestsrc ! x").is_empty());
    }

    #[test]
    fn finds_factories_in_literals_and_programs() {
        let mut uses = Uses::default();
        uses.add_file(
            "a.rs",
            "let p = \"videotestsrc ! vp8enc ! webmmux ! filesink location={out}\";\n\
             // \"ignoredsink\" in a comment\n\
             let s = make(\"ximagesink\");\n\
             Command::new(\"gst-launch-1.0\").arg(\"-q\");\n\
             Tool { program: \"Xvfb\", package: \"xvfb\" }\n",
            true,
        );
        let registry: BTreeSet<String> = ["videotestsrc", "vp8enc", "webmmux", "filesink"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let found: Vec<String> = uses
            .factory_candidates(&registry, &[])
            .into_iter()
            .map(|u| u.name)
            .collect();
        // ximagesink is not in this registry but is made by name: it is
        // reported (then as missing).
        for f in [
            "videotestsrc",
            "vp8enc",
            "webmmux",
            "filesink",
            "ximagesink",
        ] {
            assert!(found.contains(&f.to_owned()), "{f} not in {found:?}");
        }
        assert!(!found.contains(&"ignoredsink".to_owned()));
        let programs: Vec<&str> = uses.programs.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(programs, ["gst-launch-1.0", "Xvfb"]);
        assert_eq!(uses.programs[0].at, "a.rs:4");
    }

    #[test]
    fn literal_escapes() {
        assert_eq!(literals(r#"a("x\"y", "z")"#), [r#"x\"y"#, "z"]);
    }
}

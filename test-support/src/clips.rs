//! Test clips: the command lines that make them.
//!
//! The conformance tests, the demo, the codec matrix and the bench make
//! their media at run time with the tools users' files come from:
//! `gst-launch-1.0` pipelines, `ffmpeg` command lines, or a shell line
//! (mkvmerge, opusenc, lame...). Turning such a line into a [`Command`] and
//! running it had a copy in each; this is the one. Only the command line
//! is made here (no GStreamer is linked), so xtask can use it before
//! `cargo xtask setup` has installed anything.

use std::process::{Command, Stdio};

/// The `gst-launch-1.0 -q` command of `pipeline`, split into words by
/// [`shell_words`] (so `font-desc="Sans 48"` stays one word).
pub fn gst_launch_command(pipeline: &str) -> Command {
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.arg("-q").args(shell_words(pipeline));
    cmd
}

/// The command of a clip generator line, by its first word: `sh SCRIPT`
/// (run by `sh -e -c`), `ffmpeg ARGS` (quiet, overwriting, no stdin), or
/// else a `gst-launch-1.0` pipeline.
pub fn generator_command(line: &str) -> Command {
    if let Some(script) = line.strip_prefix("sh ") {
        let mut cmd = Command::new("sh");
        cmd.args(["-e", "-c", script]);
        return cmd;
    }
    if let Some(args) = line.strip_prefix("ffmpeg ") {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-loglevel", "error", "-y"])
            .args(shell_words(args));
        return cmd;
    }
    gst_launch_command(line)
}

/// Runs `gst-launch-1.0 -q PIPELINE` and panics with its error output when
/// it fails (for tests).
pub fn gst_launch(pipeline: &str) {
    let output = gst_launch_command(pipeline)
        .stdin(Stdio::null())
        .output()
        .expect("run gst-launch-1.0 (is GStreamer installed? `cargo xtask setup`)");
    assert!(
        output.status.success(),
        "gst-launch-1.0 {pipeline}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Splits a command line into words: on white space, keeping
/// double-quoted parts together (`font-desc="Sans 48"` is one word, the
/// quotes removed).
pub fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quoted_spaces() {
        assert_eq!(
            shell_words("a  b=\"Sans 48\" ! c"),
            ["a", "b=Sans 48", "!", "c"]
        );
    }

    #[test]
    fn generators_by_the_first_word() {
        let program = |line: &str| generator_command(line).get_program().to_owned();
        let last = |line: &str| {
            generator_command(line)
                .get_args()
                .last()
                .map(ToOwned::to_owned)
        };
        assert_eq!(program("ffmpeg -i sine o.m4a"), "ffmpeg");
        assert_eq!(last("ffmpeg -i sine o.m4a"), Some("o.m4a".into()));
        assert!(
            generator_command("ffmpeg -i x o")
                .get_args()
                .any(|a| a == "-nostdin")
        );
        assert_eq!(program("sh a && b"), "sh");
        assert_eq!(last("sh a && b"), Some("a && b".into()));
        assert_eq!(program("videotestsrc ! fakesink"), "gst-launch-1.0");
        assert_eq!(
            last("v ! t font-desc=\"Sans 8\""),
            Some("font-desc=Sans 8".into())
        );
    }
}

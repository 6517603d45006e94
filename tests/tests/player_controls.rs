//! Pause, seek, volume and stdin commands of `redir-play` through the whole
//! stack (player API -> broker -> daemon -> the client engine in the
//! daemon's process): what a user of the player sees.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use conformance_tests::daemon::DaemonProcess;
use conformance_tests::media::{gst_launch, opus_ogg};
use conformance_tests::rig::{daemon_binary, workspace_binary};
use conformance_tests::scratch::Scratch;

fn redir_play() -> PathBuf {
    workspace_binary("REDIR_PLAY", "redir-play", "redir-play")
}

/// A VP8 IVF clip of `frames` frames at 30 fps with a keyframe every
/// second.
fn vp8_clip(dir: &Scratch, frames: u32) -> PathBuf {
    let out = dir.path("clip.ivf");
    gst_launch(&format!(
        "videotestsrc num-buffers={frames} pattern=ball ! \
         video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! \
         vp8enc deadline=1 keyframe-max-dist=30 ! avmux_ivf ! filesink location={}",
        out.display()
    ));
    out
}

fn play(socket: &Path, file: &Path, extra: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(redir_play())
        .arg("--vhost-user")
        .arg(socket)
        .args(extra)
        .arg(file)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run redir-play");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).expect("write commands");
    }
    let out = child.wait_with_output().expect("redir-play ends");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `position X s, ..., STATE` lines, in order.
fn positions(out: &Output) -> Vec<(f64, String)> {
    stderr(out)
        .lines()
        .filter_map(|l| l.strip_prefix("redir-play: position "))
        .filter_map(|l| {
            let (secs, rest) = l.split_once(" s,")?;
            let state = rest.rsplit(", ").next()?.trim().to_owned();
            Some((secs.parse().ok()?, state))
        })
        .collect()
}

/// The `frame ID PTS HASH` records of a verification report.
fn frames(report: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(report)
        .expect("report written")
        .lines()
        .filter_map(|l| l.strip_prefix("frame "))
        .filter_map(|l| {
            let mut f = l.split_whitespace().skip(1);
            Some((f.next()?.to_owned(), f.next()?.to_owned()))
        })
        .collect()
}

#[test]
fn pause_holds_the_position_and_play_resumes() {
    let dir = Scratch::new("controls-pause");
    let clip = vp8_clip(&dir, 120);
    let socket = dir.path("vhost.sock");
    // Headless: rendered on the clock, so positions move in real time.
    let daemon = DaemonProcess::start(&daemon_binary(), &socket, &["--uplink", "local:headless"]);
    let script = [
        "2:status",
        "2:sleep=1",
        "2:status",
        "2:pause",
        "2:status",
        "2:sleep=1",
        "2:status",
        "2:play",
    ];
    let args: Vec<String> = script
        .iter()
        .flat_map(|c| ["--at".into(), (*c).to_owned()])
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = play(&socket, &clip, &args, None);
    daemon.stop();
    assert!(out.status.success(), "playback failed");
    let p = positions(&out);
    assert!(p.len() >= 4, "position lines: {p:?}");
    let (playing, paused) = ((p[0].0, p[1].0), (p[2].0, p[3].0));
    assert!(
        playing.1 - playing.0 > 0.5,
        "the position advances while playing: {p:?}"
    );
    assert!(
        (paused.1 - paused.0).abs() < 0.1,
        "the position holds while paused: {p:?}"
    );
    assert_eq!(p[3].1, "Paused", "the client reports the pause: {p:?}");
    assert!(
        stderr(&out).contains("reached end of stream"),
        "EOS after play"
    );
}

#[test]
fn seek_replays_from_the_keyframe_bit_exact() {
    let dir = Scratch::new("controls-seek");
    let clip = vp8_clip(&dir, 120);
    let run = |name: &str, extra: &[&str]| {
        let socket = dir.path(&format!("{name}.sock"));
        let report = dir.path(&format!("{name}.txt"));
        let report_arg = report.display().to_string();
        let daemon = DaemonProcess::start(
            &daemon_binary(),
            &socket,
            &["--uplink", "local:verify", "--verify-report", &report_arg],
        );
        let out = play(&socket, &clip, extra, None);
        daemon.stop();
        assert!(out.status.success(), "{name}: playback failed");
        (out, frames(&report))
    };
    let (_, whole) = run("whole", &[]);
    assert_eq!(whole.len(), 120, "every frame decoded without a seek");
    let (out, seeked) = run("seek", &["--at", "3:seek=1.2"]);
    assert!(
        stderr(&out).contains("seek to 1.200 s: from the keyframe at 1.000 s"),
        "key-unit seek: {}",
        stderr(&out)
    );
    // After the flush the client decodes frames 30..120 again, exactly.
    let tail = &whole[30..];
    assert!(
        seeked.len() >= tail.len(),
        "{} frames decoded",
        seeked.len()
    );
    assert_eq!(
        &seeked[seeked.len() - tail.len()..],
        tail,
        "the frames after the seek are the file's from the keyframe on, bit-exact"
    );
}

#[test]
fn volume_mute_and_stdin_commands_reach_the_device() {
    let dir = Scratch::new("controls-stdin");
    let clip = dir.path("tone.ogg");
    opus_ogg(&clip, 150);
    let socket = dir.path("vhost.sock");
    let daemon = DaemonProcess::start(&daemon_binary(), &socket, &["--uplink", "local:headless"]);
    let out = play(
        &socket,
        &clip,
        &[
            "--stdin",
            "--at",
            "0.5:volume=0.25",
            "--at",
            "0.5:mute",
            "--at",
            "1:unmute",
        ],
        Some("rate 1.0\nstatus\nbogus\n"),
    );
    daemon.stop();
    assert!(out.status.success(), "playback failed");
    let err = stderr(&out);
    for line in [
        "volume 0.25",
        "muted",
        "unmuted",
        "rate 1",
        "unknown command \"bogus\"",
    ] {
        assert!(err.contains(line), "missing {line:?} in:\n{err}");
    }
    assert!(!positions(&out).is_empty(), "status printed a position");

    // `quit` on stdin stops a long clip at once, cleanly.
    let socket = dir.path("vhost2.sock");
    let daemon = DaemonProcess::start(&daemon_binary(), &socket, &["--uplink", "local:headless"]);
    let started = std::time::Instant::now();
    let out = play(
        &socket,
        &clip,
        &["--stdin", "--at", "0.2:sleep=0.5"],
        Some("quit\n"),
    );
    daemon.stop();
    assert!(out.status.success(), "quit is a clean exit");
    assert!(stderr(&out).contains("stopped"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "quit stops playback"
    );
}

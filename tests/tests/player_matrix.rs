//! `redir-play` through the whole stack: one short clip per container and
//! codec that redir-demux supports is played through the daemon binary in
//! local verify mode, and `verify-clip` finds the daemon's report bit-exact
//! with decoding the file locally; no payload byte is copied. Also the
//! player's failures: a bad file, no device, no client.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use conformance_tests::daemon::DaemonProcess;
use conformance_tests::rig::{daemon_binary, workspace_binary};
use conformance_tests::scratch::Scratch;

fn redir_play() -> PathBuf {
    workspace_binary("REDIR_PLAY", "redir-play", "redir-play")
}

fn verify_clip() -> PathBuf {
    workspace_binary("VERIFY_CLIP", "client-engine", "verify-clip")
}

/// 1 s of 320x240 I420 test video at 30 fps.
const VIDEO: &str = "videotestsrc num-buffers=30 pattern=ball ! \
                     video/x-raw,format=I420,width=320,height=240,framerate=30/1";
/// 1 s of 48 kHz stereo test audio.
const AUDIO: &str = "audiotestsrc num-buffers=50 samplesperbuffer=960 ! \
                     audio/x-raw,rate=48000,channels=2";

/// (name, file name, gst-launch pipeline with `{out}` for the location).
const CLIPS: &[(&str, &str, &str)] = &[
    (
        "h264-mp4",
        "h264.mp4",
        "{V} ! x264enc bframes=2 speed-preset=ultrafast ! h264parse ! mp4mux ! filesink location={out}",
    ),
    (
        "h265-mkv",
        "h265.mkv",
        "{V} ! x265enc speed-preset=ultrafast ! h265parse ! matroskamux ! filesink location={out}",
    ),
    (
        "vp8-ivf",
        "vp8.ivf",
        "{V} ! vp8enc deadline=1 ! avmux_ivf ! filesink location={out}",
    ),
    (
        "vp9-opus-webm",
        "vp9opus.webm",
        "{V} ! vp9enc deadline=1 ! queue ! webmmux name=mux ! filesink location={out} \
         {A} ! opusenc ! queue ! mux.",
    ),
    (
        "av1-mkv",
        "av1.mkv",
        "videotestsrc num-buffers=10 ! \
         video/x-raw,format=I420,width=64,height=64,framerate=30/1 ! \
         av1enc cpu-used=8 ! av1parse ! matroskamux ! filesink location={out}",
    ),
    (
        "opus-ogg",
        "opus.ogg",
        "{A} ! opusenc ! oggmux ! filesink location={out}",
    ),
    (
        "vorbis-ogg",
        "vorbis.ogg",
        "{A} ! audioconvert ! vorbisenc ! oggmux ! filesink location={out}",
    ),
    (
        "aac-mp4",
        "aac.mp4",
        "{A} ! audioconvert ! avenc_aac ! aacparse ! mp4mux ! filesink location={out}",
    ),
    (
        "flac-ogg",
        "flac.ogg",
        "{A} ! audioconvert ! audio/x-raw,format=S16LE ! flacenc ! oggmux ! filesink location={out}",
    ),
];

fn generate(pipeline: &str, out: &Path) -> Result<(), String> {
    let text = pipeline
        .replace("{V}", VIDEO)
        .replace("{A}", AUDIO)
        .replace("{out}", &out.display().to_string());
    let output = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(text.split_whitespace())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running gst-launch-1.0: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "gst-launch-1.0 {text} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

fn play(socket: &Path, file: &Path, extra: &[&str]) -> Output {
    Command::new(redir_play())
        .arg("--vhost-user")
        .arg(socket)
        .args(extra)
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .expect("run redir-play")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Plays `clip` through a local:verify daemon and checks the report.
fn play_and_verify(scratch: &Scratch, name: &str, clip: &Path) -> Result<(), String> {
    let socket = scratch.path(&format!("{name}.sock"));
    let report = scratch.path(&format!("{name}.report"));
    let report_arg = report.display().to_string();
    let daemon = DaemonProcess::start(
        &daemon_binary(),
        &socket,
        &["--uplink", "local:verify", "--verify-report", &report_arg],
    );
    let played = play(
        &socket,
        clip,
        &["--wait-client", "5", "--eos-timeout", "20"],
    );
    let counters = daemon.stop();
    if !played.status.success() {
        return Err(format!(
            "redir-play exited {}: {}",
            played.status,
            stderr(&played)
        ));
    }
    let sent = counters.get("payload_bytes").copied().unwrap_or(0);
    if sent == 0 {
        return Err(format!("no payload reached the daemon ({counters:?})"));
    }
    let copied = counters.get("payload_bytes_copied").copied();
    if copied != Some(0) {
        return Err(format!("payload_bytes_copied = {copied:?} ({counters:?})"));
    }
    let verify = Command::new(verify_clip())
        .arg("--input")
        .arg(clip)
        .arg("--report")
        .arg(&report)
        .stdin(Stdio::null())
        .output()
        .expect("run verify-clip");
    let text = String::from_utf8_lossy(&verify.stdout).into_owned();
    let json = text.lines().last().unwrap_or_default();
    let streams = if name.contains("opus-webm") { 2 } else { 1 };
    if !verify.status.success()
        || !json.contains("\"bit_exact\":true")
        || !json.contains(&format!("\"streams\":{streams},"))
    {
        return Err(format!(
            "verify-clip exited {}: {json} {}",
            verify.status,
            stderr(&verify)
        ));
    }
    Ok(())
}

#[test]
fn codec_matrix_through_the_whole_stack_is_bit_exact() {
    let t0 = Instant::now();
    let scratch = Scratch::new("player-matrix");
    let mut failures = Vec::new();
    for &(name, file, pipeline) in CLIPS {
        let clip = scratch.path(file);
        let result =
            generate(pipeline, &clip).and_then(|()| play_and_verify(&scratch, name, &clip));
        eprintln!(
            "player_matrix: {name}: {} ({:?} so far)",
            if result.is_ok() { "ok" } else { "FAILED" },
            t0.elapsed()
        );
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "failed clips:\n{}",
        failures.join("\n")
    );
}

#[test]
fn bad_file_and_missing_device_fail_clearly() {
    let scratch = Scratch::new("player-bad");
    let nowhere = scratch.path("nobody-listens.sock");

    let missing = scratch.path("no-such-clip.webm");
    let out = play(&nowhere, &missing, &[]);
    assert!(!out.status.success(), "missing file played");
    assert!(
        stderr(&out).contains("no-such-clip.webm"),
        "stderr does not name the file: {}",
        stderr(&out)
    );

    let junk = scratch.path("junk.bin");
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    std::fs::write(&junk, bytes).expect("write junk");
    let out = play(&nowhere, &junk, &[]);
    assert!(!out.status.success(), "random bytes played");
    let err = stderr(&out).to_lowercase();
    assert!(
        err.contains("format") || err.contains("container"),
        "stderr does not mention the format: {err}"
    );

    // A playable file, but no daemon on the socket.
    let clip = scratch.path("opus.ogg");
    generate(CLIPS[5].2, &clip).expect("generate the clip");
    let started = Instant::now();
    let out = play(&nowhere, &clip, &[]);
    assert!(!out.status.success(), "played without a device");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?} to give up",
        started.elapsed()
    );
    let err = stderr(&out);
    assert!(
        err.contains("connecting to") && err.contains("nobody-listens.sock"),
        "unclear error without a device: {err}"
    );
}

#[test]
fn client_lacking_the_codec_is_refused() {
    let scratch = Scratch::new("player-noclient");
    let clip = scratch.path("opus.ogg");
    generate(CLIPS[5].2, &clip).expect("generate the clip");
    let socket = scratch.path("vhost.sock");
    let uplink = format!("unix:{}", scratch.path("uplink.sock").display());
    let daemon = DaemonProcess::start(&daemon_binary(), &socket, &["--uplink", &uplink]);
    let out = play(&socket, &clip, &["--wait-client", "1"]);
    daemon.stop();
    assert!(!out.status.success(), "played with no client");
    let err = stderr(&out).to_lowercase();
    assert!(
        err.contains("no client") || err.contains("cannot decode"),
        "unclear error with no client: {err}"
    );
}

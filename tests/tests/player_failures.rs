//! `redir-play`'s failures, as a user meets them: a missing or unreadable
//! file, no device, a client that lacks the codec; each a clear message and
//! a non-zero exit. (Playing every codec and container bit-exact is
//! `cargo xtask demo --matrix`, a step of `cargo xtask test`.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use conformance_tests::daemon::DaemonProcess;
use conformance_tests::media::opus_ogg;
use conformance_tests::rig::{daemon_binary, workspace_binary};
use conformance_tests::scratch::Scratch;

fn redir_play() -> PathBuf {
    workspace_binary("REDIR_PLAY", "redir-play", "redir-play")
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
    opus_ogg(&clip, 50);
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
    opus_ogg(&clip, 50);
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

//! How a playback of `redir-play` ends when the client leaves as soon as
//! the stream has ended, as `media-client --once` does: the playback is
//! complete, so the player exits 0, although the client's
//! `CLIENT_DISCONNECTED` follows its `EOS` closely and the buffer it did not
//! acknowledge completes `NO_CLIENT` (spec 7.15, DRV-CONN-3).

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use conformance_tests::client::{AckPolicy, TestClient, decode_everything};
use conformance_tests::daemon::DaemonProcess;
use conformance_tests::media::opus_ogg;
use conformance_tests::rig::{daemon_binary, workspace_binary};
use conformance_tests::scratch::Scratch;
use test_support::ChildGuard;

fn redir_play() -> PathBuf {
    workspace_binary("REDIR_PLAY", "redir-play", "redir-play")
}

#[test]
fn a_client_leaving_right_after_the_end_of_stream_is_a_normal_end() {
    let scratch = Scratch::new("player-end");
    let clip = scratch.path("opus.ogg");
    opus_ogg(&clip, 50);
    let socket = scratch.path("vhost.sock");
    let uplink = scratch.path("uplink.sock");
    let daemon = DaemonProcess::start(
        &daemon_binary(),
        &socket,
        &["--uplink", &format!("unix:{}", uplink.display())],
    );
    // It acknowledges every sample but the last, EOS-flagged, one: the
    // buffer that then completes NO_CLIENT was played out all the same.
    let client = TestClient::connect(&uplink, decode_everything(), AckPolicy::AllButEos);
    let log = scratch.path("redir-play.log");
    let mut player = ChildGuard::new(
        Command::new(redir_play())
            .arg("--vhost-user")
            .arg(&socket)
            .arg(&clip)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("create the log"))
            .spawn()
            .expect("start redir-play"),
    );
    // The end of the stream, and the client leaves at once.
    let stream = client.end_and_leave(Duration::from_secs(60));
    let status = player
        .wait_timeout(Duration::from_secs(60))
        .expect("wait for redir-play");
    let said = std::fs::read_to_string(&log).expect("read the log");
    daemon.stop();
    let Some(stream) = stream else {
        panic!("no EOS sample reached the client; redir-play said:\n{said}");
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "redir-play failed ({status:?}) when the client left after the end of stream:\n{said}"
    );
    assert!(
        said.contains(&format!("stream {stream} reached end of stream")),
        "no end of stream seen:\n{said}"
    );
}

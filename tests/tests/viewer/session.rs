//! One Spice session (issue 19): QEMU's `chardev-relay` (patch 0004) joins
//! the media port of QEMU's own Spice session to the daemon's Unix uplink
//! (docs/qemu-relay.md), so the viewer, given one URI and no `--media`,
//! shows the desktop and the video from the same session, and the
//! session's ticket protects both.
//!
//! Asserted: with a wrong password the viewer is refused (it exits saying
//! so) and no client reaches the daemon (a player waiting for one gives
//! up); with the right one the guest's screen shows unscaled and the video,
//! sent by the guest's player through the daemon, QEMU's relay and QEMU's
//! Spice server, is composited in place: green inside `dest`, QEMU's own
//! `screendump` everywhere else; the daemon killed, the video goes (the
//! relay closes the port for the viewer), and once the daemon is back the
//! viewer's media connection, made again over the same session and the
//! relay's new socket connection, shows the next video.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use conformance_tests::desktop::Desktop;
use conformance_tests::rig::{Rig, workspace_binary};
use mediaredir_proto::wire::SPICE_PORT_NAME;
use qemu_config::{FirmwareDesktop, MediaRelay, SpiceServer};
use test_support::{ChildGuard, Image, Xvfb};

use crate::support::*;

const TITLE: &str = "viewer-session-test";
const DEST: (i64, i64, i64, i64) = (100, 100, 320, 240);

#[test]
fn media_rides_qemus_own_spice_session() {
    if !require_screenshot_tools("media_rides_qemus_own_spice_session") {
        return;
    }
    let mut rig = Rig::start("viewer-session", &[]);
    let dir = rig.path("");
    let green_clip = clip(&dir, "green.mp4", "0x00ff00", 60);
    let (password, wrong) = (dir.join("spice.pass"), dir.join("wrong.pass"));
    // QEMU's `secret` takes the whole file: no line end.
    std::fs::write(&password, "s3cret").unwrap();
    std::fs::write(&wrong, "guess").unwrap();
    let xvfb = Xvfb::start(1200, 900).expect("Xvfb starts");
    let mut desktop = Desktop::start_with(&dir, |d| FirmwareDesktop {
        spice: SpiceServer {
            password_file: Some(password.clone()),
            ..d.spice
        },
        media_relay: Some(MediaRelay::new(SPICE_PORT_NAME, &rig.uplink)),
        ..d
    });
    let guest = desktop.screendump();

    // A wrong password: neither the desktop nor the media.
    let bin = workspace_binary(
        "MEDIAREDIR_VIEWER",
        "mediaredir-viewer",
        "mediaredir-viewer",
    );
    let mut refused = ChildGuard::spawn(
        Command::new(bin)
            .arg(format!("spice+unix://{}", desktop.spice.display()))
            .arg("--password-file")
            .arg(&wrong)
            .args(["--title", TITLE])
            .env("DISPLAY", xvfb.display())
            .stdin(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .expect("the viewer starts");
    let status = refused
        .wait_timeout(Duration::from_secs(20))
        .expect("wait for the viewer")
        .expect("a viewer with a wrong password kept running");
    let mut said = String::new();
    if let Some(mut err) = refused.child_mut().stderr.take() {
        let _ = err.read_to_string(&mut said);
    }
    assert!(!status.success(), "refused, the viewer exits with an error");
    assert!(
        said.contains("refused the password"),
        "the viewer said: {said}"
    );
    let no_client = Command::new(workspace_binary("REDIR_PLAY", "redir-play", "redir-play"))
        .arg("--vhost-user")
        .arg(&rig.socket)
        .args(["--wait-client", "3"])
        .arg(&green_clip)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run redir-play");
    assert!(
        !no_client.success(),
        "a client reached the daemon without the session's password"
    );

    // The right password, one URI: the desktop, then the video in place.
    let guard = start_viewer(
        &desktop.spice,
        &[
            "--password-file",
            &password.display().to_string(),
            "--title",
            TITLE,
            "--no-resize-guest",
        ],
        &xvfb,
    );
    let viewer = Viewer::find(&xvfb, TITLE, guard);
    let (shot, found) = viewer.wait(|s| find_offset(s, &guest, 100, &[]).is_some());
    assert!(
        found,
        "the viewer never showed the guest's screen unscaled ({}x{})",
        shot.width, shot.height
    );
    let (ox, oy) = find_offset(&shot, &guest, 100, &[]).unwrap();
    let (broker, broker_socket) = rig.broker();
    let player = Player::start(&broker_socket, &green_clip, "geometry=100:100:320:240");
    let in_dest = |s: &Image| green(at(s, int(ox) + 110, int(oy) + 110));
    let (shot, shown) = viewer.wait(in_dest);
    assert!(
        shown,
        "no green video at dest through QEMU's session; pixel {:?}",
        shot.rgb(ox + 110, oy + 110)
    );
    let guest = desktop.screendump();
    assert_composited(&viewer.grab(), &guest, (ox, oy), DEST, None, green);

    // The daemon restarts: the relay closes the port for the viewer (the
    // video goes), connects to the new daemon, and the viewer's media
    // connection, made again over the same session, shows the next video.
    drop(player);
    drop(broker);
    if let Some(daemon) = rig.daemon.take() {
        daemon.kill();
    }
    let (shot, gone) = viewer.wait(|s| !in_dest(s));
    assert!(
        gone,
        "the video stayed after the daemon went away: {:?}",
        shot.rgb(ox + 110, oy + 110)
    );
    rig.restart();
    let (_broker, broker_socket) = rig.broker();
    let _player = Player::start(&broker_socket, &green_clip, "geometry=100:100:320:240");
    let (shot, back) = viewer.wait(in_dest);
    assert!(
        back,
        "no video through QEMU's session after the daemon restarted: {:?}",
        shot.rgb(ox + 110, oy + 110)
    );
}

//! The media in QEMU's own Spice session, headless (issue 19): QEMU's
//! `chardev-relay` (patch 0004) joins the media port of QEMU's Spice server
//! to the daemon's Unix uplink (docs/qemu-relay.md), and `media-client
//! --spice` (a Spice client of QEMU's session, with its password) decodes
//! what the guest driver plays (H.264 with B-frames and Opus) bit-exact with
//! the file; every guest buffer completes OK. The daemon writes the payload
//! from guest memory without copying it (the copies are QEMU's).

#[path = "../../client-engine/tests/common/mod.rs"]
mod common;
mod e2e_common;

use std::time::Instant;

use common::{AV, demux, generate};
use conformance_tests::desktop::Desktop;
use conformance_tests::rig::Rig;
use conformance_tests::scratch::Scratch;
use e2e_common::{Client, play_to_client_zero_copy};
use mediaredir_proto::wire::SPICE_PORT_NAME;
use qemu_config::{FirmwareDesktop, MediaRelay, SpiceServer};

#[test]
fn media_client_through_qemus_session_is_bit_exact() {
    let t0 = Instant::now();
    let dir = Scratch::new("qemu-session-clip");
    let clip = generate(dir.dir(), "clip.mkv", AV);
    let tracks = demux(&clip);
    let rig = Rig::start("qemu-session", &[]);
    // QEMU's `secret` takes the whole file: no line end.
    let password = rig.path("spice.pass");
    std::fs::write(&password, "s3cret media").unwrap();
    let desktop = Desktop::start_with(&rig.path(""), |d| FirmwareDesktop {
        spice: SpiceServer {
            password_file: Some(password.clone()),
            ..d.spice
        },
        media_relay: Some(MediaRelay::new(SPICE_PORT_NAME, &rig.uplink)),
        ..d
    });
    let client = Client::start(
        &[
            "--spice",
            &format!("unix:{}", desktop.spice.display()),
            "--password-file",
            &password.display().to_string(),
        ],
        rig.path("report.txt"),
        &[],
    );
    // The copies are QEMU's: the daemon writes from guest memory.
    play_to_client_zero_copy(&rig, client, &clip, &tracks);
    eprintln!("e2e through QEMU's Spice session: {:?}", t0.elapsed());
}

//! End to end with every real component: the guest driver (over vhost-user)
//! submits the samples of a clip demuxed by GStreamer, the daemon binary
//! forwards them on its socket uplink without copying, and the
//! `media-client` binary decodes them; its verification report is
//! bit-exact with decoding the original file locally (spec 7.8, 7.9, 10.7,
//! DESIGN "Client engine").
//!
//! Twice: on the Unix socket uplink, and on the TCP uplink with TLS 1.3 and
//! a client certificate (WIRE-10), certificates made at test time.

#[path = "../../client-engine/tests/common/mod.rs"]
mod common;
mod e2e_common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{AV, TempDir, demux, generate};
use conformance_tests::daemon::DaemonProcess;
use conformance_tests::rig::{Rig, wait_client};
use conformance_tests::scratch::Scratch;
use e2e_common::{
    Client, assert_bit_exact, free_port, media_client_binary, play, play_to_client_zero_copy,
    wait_path,
};
use guest_driver_shim::{DriverOptions, MediaDevice, VhostUserOptions, VhostUserTransport};
use test_support::Pki;
use test_support::pki::Authority;

/// H.264 (B-frames) + Opus from the guest, through the daemon's Unix
/// socket uplink, decoded by `media-client` bit-exact with the file; every
/// guest buffer completes OK and the daemon copied no payload byte.
#[test]
fn guest_to_media_client_is_bit_exact() {
    let t0 = Instant::now();
    let dir = TempDir::new("e2e");
    let clip = generate(&dir.0, "clip.mkv", AV);
    let tracks = demux(&clip);
    assert_eq!(tracks.len(), 2);
    let rig = Rig::start("mc-e2e", &[]);
    wait_path(&rig.uplink);
    let client = Client::start(
        &["--connect", &format!("unix:{}", rig.uplink.display())],
        rig.path("report.txt"),
        &[],
    );
    play_to_client_zero_copy(&rig, client, &clip, &tracks);
    eprintln!("e2e over unix: {:?}", t0.elapsed());
}

/// The same over the TCP uplink with TLS 1.3: the daemon presents a
/// certificate of the test CA and requires a client certificate of it;
/// `media-client --tls-ca --tls-cert --tls-key` connects, and the output is
/// still bit-exact; a client that does not trust the daemon's CA fails
/// the handshake and never reaches the guest. (Encryption copies the payload: that is counted, not
/// checked to be 0, here.)
#[test]
fn media_client_over_tls_is_bit_exact() {
    let t0 = Instant::now();
    let dir = TempDir::new("e2e-tls");
    let clip = generate(&dir.0, "clip.mkv", AV);
    let tracks = demux(&clip);
    let scratch = Scratch::new("mc-tls");
    let pki = Pki::write(scratch.dir()).expect("write the test PKI");
    let port = free_port();
    let socket = scratch.path("vhost.sock");
    let uplink = format!("tcp:127.0.0.1:{port}");
    let paths = [&pki.server_cert, &pki.server_key, &pki.ca].map(|p| p.display().to_string());
    let daemon = DaemonProcess::start(
        &conformance_tests::rig::daemon_binary(),
        &socket,
        &[
            "--uplink",
            &uplink,
            "--tls-cert",
            &paths[0],
            "--tls-key",
            &paths[1],
            "--tls-client-ca",
            &paths[2],
        ],
    );
    let transport = VhostUserTransport::connect_new(&socket, VhostUserOptions::default())
        .expect("connect vhost-user");
    let mut dev = MediaDevice::new(transport, DriverOptions::default()).unwrap();
    let tls = [&pki.ca, &pki.client_cert, &pki.client_key].map(|p| p.display().to_string());
    // The listener may bind a moment after the vhost-user socket exists.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "TLS uplink never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A client that does not trust the daemon's CA gives up in the
    // handshake; the guest never sees it.
    let other_ca = Authority::new("another CA").cert_pem;
    let other = scratch.path("other-ca.pem");
    std::fs::write(&other, other_ca).unwrap();
    let mut untrusting = Command::new(media_client_binary())
        .args(["--connect", &uplink, "--once", "--stats-interval", "0"])
        .arg("--tls-ca")
        .arg(&other)
        .args(["--tls-cert", &tls[1], "--tls-key", &tls[2]])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(untrusting.stderr.as_mut().unwrap(), &mut log).unwrap();
    untrusting.wait().unwrap();
    assert!(log.contains("TLS handshake"), "{log}");
    wait_client(&mut dev, false);
    let client = Client::start(
        &["--connect", &uplink],
        scratch.path("report.txt"),
        &[
            "--tls-ca",
            &tls[0],
            "--tls-cert",
            &tls[1],
            "--tls-key",
            &tls[2],
        ],
    );
    wait_client(&mut dev, true);
    let ids = play(&mut dev, &tracks);
    let report = client.finish();
    assert_bit_exact(&clip, &ids, &report);
    let counters = daemon.counters();
    eprintln!(
        "e2e over TLS: {:?}; payload_bytes {} copied {}",
        t0.elapsed(),
        counters["payload_bytes"],
        counters["payload_bytes_copied"]
    );
}

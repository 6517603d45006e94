//! The Spice connection end to end (spec 10.2, WIRE-10, DEV-DATA-2): the
//! daemon binary with `--uplink spice:...` runs its own libspice-server
//! with the media port, and `media-client --spice` connects to it with
//! spice-client-glib. Everything is real and on loopback: a clip through
//! the guest driver, decoded bit-exact; a wrong password refused; Spice TLS
//! with a CA made at test time; and the Spice connection cut mid-stream
//! and restored (through a TCP relay the test controls), with every guest
//! buffer completed and playback resuming at the next keyframe.

#[path = "../../client-engine/tests/common/mod.rs"]
mod common;
mod e2e_common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use client_engine::VerificationReport;
use client_engine::verify::reference_decode;
use common::{AV, Track, demux, generate};
use conformance_tests::daemon::DaemonProcess;
use conformance_tests::relay::Relay;
use conformance_tests::rig::{Driver, call, data_header, ok, video, wait_client, wait_event};
use conformance_tests::scratch::Scratch;
use e2e_common::{
    Client, WAIT, assert_bit_exact, format, free_port, header, media_client_binary, payload_bytes,
    play,
};
use guest_driver_shim::{DriverOptions, MediaDevice, VhostUserOptions, VhostUserTransport};
use mediaredir_proto::control::Request;
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;
use test_support::Pki;
use test_support::pki::Authority;

/// A daemon with a Spice uplink, and the guest driver on it.
struct SpiceRig {
    daemon: DaemonProcess,
    dev: Driver,
    scratch: Scratch,
}

impl SpiceRig {
    /// Starts the daemon with `--uplink spice:OPTIONS` and waits until the
    /// Spice server listens on loopback `port`.
    fn start(scratch: Scratch, options: &str, port: u16) -> SpiceRig {
        SpiceRig::start_with(scratch, options, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
    }

    /// Starts the daemon with `--uplink spice:OPTIONS` and waits until
    /// `listening` says the Spice server listens.
    fn start_with(scratch: Scratch, options: &str, listening: impl Fn() -> bool) -> SpiceRig {
        let socket = scratch.path("vhost.sock");
        let uplink = format!("spice:{options}");
        let daemon = DaemonProcess::start(
            &conformance_tests::rig::daemon_binary(),
            &socket,
            &["--uplink", &uplink],
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listening() {
            assert!(Instant::now() < deadline, "Spice server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        let transport = VhostUserTransport::connect_new(&socket, VhostUserOptions::default())
            .expect("connect vhost-user");
        let dev = MediaDevice::new(transport, DriverOptions::default()).unwrap();
        SpiceRig {
            daemon,
            dev,
            scratch,
        }
    }

    /// Starts the daemon's Spice server on a free loopback port
    /// (`KEY=PORT`: `port` or `tls-port`) with the further `options`; the
    /// rig and the port.
    fn on_free_port(scratch: Scratch, key: &str, options: &str) -> (SpiceRig, u16) {
        let port = free_port();
        let options = format!("{key}={port},addr=127.0.0.1,{options}");
        (SpiceRig::start(scratch, &options, port), port)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.scratch.path(name)
    }
}

/// Writes `password` to a file in `scratch`.
fn password_file(scratch: &Scratch, name: &str, password: &str) -> String {
    let path = scratch.path(name);
    std::fs::write(&path, format!("{password}\n")).unwrap();
    path.display().to_string()
}

/// H.264 (B-frames) + Opus from the guest over the Spice media port
/// (ticketing on), decoded by `media-client --spice` bit-exact with the
/// file; every guest buffer completes OK. libspice-server's read callback
/// copies each payload once into its own buffers: exactly the payload
/// bytes are counted as copied (spec 10.2), no more.
#[test]
fn spice_media_client_is_bit_exact() {
    let t0 = Instant::now();
    let dir = Scratch::new("spice-e2e-clip");
    let clip = generate(dir.dir(), "clip.mkv", AV);
    let tracks = demux(&clip);
    let scratch = Scratch::new("spice-e2e");
    let password = password_file(&scratch, "ticket", "s3cret media");
    let (mut rig, port) =
        SpiceRig::on_free_port(scratch, "port", &format!("password-file={password}"));
    let target = format!("127.0.0.1:{port}");
    let client = Client::start(
        &["--spice", &target, "--password-file", &password],
        rig.path("report.txt"),
        &[],
    );
    wait_client(&mut rig.dev, true);
    let ids = play(&mut rig.dev, &tracks);
    let counters = rig.daemon.counters();
    let payload = payload_bytes(&tracks);
    assert_eq!(counters["payload_bytes"], payload);
    assert_eq!(
        counters["payload_bytes_copied"], payload,
        "the Spice API's one copy, counted: {counters:?}"
    );
    let report = client.finish();
    assert_bit_exact(&clip, &ids, &report);
    eprintln!("e2e over Spice: {:?}", t0.elapsed());
}

/// Frames far larger than libspice-server's queue to the client (about
/// 1 MiB): 720p noise coded losslessly, each frame well over 1 MiB, so a
/// frame takes many `read` callbacks and the pump waits on a full queue.
/// Still bit-exact, every buffer OK.
#[test]
fn spice_large_frames_are_bit_exact() {
    let dir = Scratch::new("spice-big-clip");
    let desc = "videotestsrc num-buffers=20 pattern=snow ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! x264enc qp-max=0 qp-min=0 quantizer=0 pass=quant speed-preset=ultrafast key-int-max=10 ! h264parse ! matroskamux ! filesink location={out}";
    let clip = generate(dir.dir(), "big.mkv", desc);
    let tracks = demux(&clip);
    let biggest = tracks[0]
        .samples
        .iter()
        .map(|s| s.data.len())
        .max()
        .unwrap();
    assert!(biggest > 1 << 20, "frames of {biggest} bytes are too small");
    let scratch = Scratch::new("spice-big");
    let (mut rig, port) = SpiceRig::on_free_port(scratch, "port", "disable-ticketing=on");
    let target = format!("127.0.0.1:{port}");
    let client = Client::start(&["--spice", &target], rig.path("report.txt"), &[]);
    wait_client(&mut rig.dev, true);
    let t0 = Instant::now();
    let ids = play(&mut rig.dev, &tracks);
    let elapsed = t0.elapsed();
    let counters = rig.daemon.counters();
    let report = client.finish();
    assert_bit_exact(&clip, &ids, &report);
    eprintln!(
        "large frames over Spice: {} bytes (largest {biggest}) played in {elapsed:?}",
        counters["payload_bytes"]
    );
}

/// The Spice server on a Unix socket (`unix=on,addr=PATH`, as QEMU's
/// `-spice unix=on`): `media-client --spice unix:PATH` connects, and the
/// guest sees the client come and go.
#[test]
fn spice_over_a_unix_socket() {
    let scratch = Scratch::new("spice-unix");
    let path = scratch.path("media.spice");
    let options = format!("unix=on,addr={},disable-ticketing=on", path.display());
    let mut rig = SpiceRig::start_with(scratch, &options, || path.exists());
    let target = format!("unix:{}", path.display());
    let client = Client::start_reconnecting(&["--spice", &target], rig.path("report.txt"), &[]);
    wait_client(&mut rig.dev, true);
    drop(client);
    wait_client(&mut rig.dev, false);
}

/// A client with the wrong Spice password is refused by libspice-server
/// ("authentication failed"), and the guest is told no client is
/// connected: capabilities say so and a stream cannot be created
/// (NO_CLIENT). The right password then connects.
#[test]
fn spice_wrong_password_is_refused() {
    let scratch = Scratch::new("spice-auth");
    let password = password_file(&scratch, "ticket", "right");
    let wrong = password_file(&scratch, "wrong", "wrong");
    let (mut rig, port) =
        SpiceRig::on_free_port(scratch, "port", &format!("password-file={password}"));
    let target = format!("127.0.0.1:{port}");
    let refused = Command::new(media_client_binary())
        .args(["--spice", &target, "--password-file", &wrong])
        .args(["--once", "--headless", "--stats-interval", "0"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&refused.stderr);
    assert!(
        log.to_lowercase().contains("authentication failed"),
        "{log}"
    );
    wait_client(&mut rig.dev, false);
    let pres = ok(&mut rig.dev, 0, Request::PresCreate { live: false });
    let (status, _, _) = call(&mut rig.dev, pres, Request::StreamCreate(video(0)));
    assert_eq!(status, Status::NoClient, "no client: no stream");
    // The right password is let in.
    let _client = Client::start_reconnecting(
        &["--spice", &target, "--password-file", &password],
        rig.path("report.txt"),
        &[],
    );
    wait_client(&mut rig.dev, true);
}

/// Spice TLS: the daemon's Spice server listens only on a TLS port with a
/// certificate of a CA made at test time (QEMU's x509-dir layout);
/// `media-client --spice --tls-ca` verifies it and plays the clip
/// bit-exact. A client trusting another CA gets nowhere.
#[test]
fn spice_tls_is_bit_exact() {
    let dir = Scratch::new("spice-tls-clip");
    let clip = generate(dir.dir(), "clip.mkv", AV);
    let tracks = demux(&clip);
    let scratch = Scratch::new("spice-tls");
    let pki = Pki::write(scratch.dir()).expect("write the test PKI");
    let x509 = scratch.path("x509");
    std::fs::create_dir_all(&x509).unwrap();
    for (from, to) in [
        (&pki.ca, "ca-cert.pem"),
        (&pki.server_cert, "server-cert.pem"),
        (&pki.server_key, "server-key.pem"),
    ] {
        std::fs::copy(from, x509.join(to)).unwrap();
    }
    let password = password_file(&scratch, "ticket", "tls ticket");
    let options = format!("x509-dir={},password-file={password}", x509.display());
    let (mut rig, port) = SpiceRig::on_free_port(scratch, "tls-port", &options);
    let target = format!("127.0.0.1:{port}");
    let other_ca = Authority::new("another CA").cert_pem;
    let other = rig.path("other-ca.pem");
    std::fs::write(&other, other_ca).unwrap();
    let untrusting = Command::new(media_client_binary())
        .args(["--spice", &target, "--password-file", &password])
        .arg("--tls-ca")
        .arg(&other)
        .args(["--once", "--headless", "--stats-interval", "0"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&untrusting.stderr);
    assert!(
        log.contains("ErrorTls") || log.contains("ErrorLink"),
        "{log}"
    );
    wait_client(&mut rig.dev, false);
    let ca = pki.ca.display().to_string();
    let client = Client::start(
        &[
            "--spice",
            &target,
            "--password-file",
            &password,
            "--tls-ca",
            &ca,
        ],
        rig.path("report.txt"),
        &[],
    );
    wait_client(&mut rig.dev, true);
    let ids = play(&mut rig.dev, &tracks);
    let report = client.finish();
    assert_bit_exact(&clip, &ids, &report);
}

/// Submits `range` of `track` on txq 0 and returns the statuses of their
/// completions (all of them: none is lost).
fn submit(dev: &mut Driver, id: u32, track: &Track, range: std::ops::Range<usize>) -> Vec<Status> {
    let n = range.len();
    for s in &track.samples[range] {
        dev.submit_data_copy(0, &header(id, s), &s.data).unwrap();
    }
    collect(dev, n)
}

/// Waits for at least `n` completions on txq 0 and returns them all.
fn collect(dev: &mut Driver, n: usize) -> Vec<Status> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} buffers completed: {got:?}",
            got.len()
        );
        for done in dev
            .wait_data_completions(0, Duration::from_millis(200))
            .unwrap()
        {
            got.push(done.status.expect("a known status"));
        }
    }
    got
}

/// The Spice connection cut mid-stream and restored: buffers the client
/// held complete (OK if it acknowledged them, NO_CLIENT otherwise: none is
/// lost), the guest is told the client left, buffers sent while it is gone
/// complete NO_CLIENT at once; `media-client` reconnects on its own, the
/// daemon replays the state and asks for a keyframe, delta frames before it
/// are DROPPED, and the decode resumes at the next keyframe: the frames
/// decoded after the reconnection are, bit for bit, the tail of the local
/// decode from that keyframe on.
#[test]
fn spice_cut_and_restored_resumes_at_a_keyframe() {
    let dir = Scratch::new("spice-cut-clip");
    let clip = generate(dir.dir(), "clip.mkv", AV);
    let track = demux(&clip).remove(0);
    assert!(
        track.caps.to_string().starts_with("video/"),
        "{}",
        track.caps
    );
    let keys: Vec<usize> = (0..track.samples.len())
        .filter(|&i| track.samples[i].keyframe)
        .collect();
    assert!(keys.len() >= 3, "keyframes at {keys:?}");
    let scratch = Scratch::new("spice-cut");
    let (mut rig, port) = SpiceRig::on_free_port(scratch, "port", "disable-ticketing=on");
    let relay = Relay::tcp(port).expect("the relay starts");
    let target = format!("127.0.0.1:{}", relay.port);
    let client = Client::start_reconnecting(&["--spice", &target], rig.path("report.txt"), &[]);
    let dev = &mut rig.dev;
    wait_client(dev, true);
    let pres = ok(dev, 0, Request::PresCreate { live: false });
    let id = ok(dev, pres, Request::StreamCreate(format(&track, 0)));
    ok(dev, pres, Request::PresPlay);

    // The first GOP; the relay is cut while its buffers are in flight.
    let first = keys[1];
    for s in &track.samples[..first] {
        dev.submit_data_copy(0, &header(id, s), &s.data).unwrap();
    }
    let mut statuses = collect(dev, 2);
    relay.cut();
    let rest = first - statuses.len();
    statuses.extend(collect(dev, rest));
    assert_eq!(statuses.len(), first, "every buffer completed once");
    assert!(
        statuses
            .iter()
            .all(|s| matches!(s, Status::Ok | Status::NoClient)),
        "{statuses:?}"
    );
    let (gone, _) = wait_event(dev, WAIT, |e| *e == Event::ClientDisconnected);
    assert!(gone.is_some(), "CLIENT_DISCONNECTED");
    let lost = submit(dev, id, &track, first..first + 3);
    assert_eq!(lost, vec![Status::NoClient; 3], "no client: at once");

    // The network comes back; the client reconnects by itself.
    relay.restore();
    let (back, _) = wait_event(dev, WAIT, |e| matches!(e, Event::ClientConnected { .. }));
    assert!(back.is_some(), "CLIENT_CONNECTED");
    let (keyframe, _) = wait_event(dev, WAIT, |e| matches!(e, Event::KeyframeNeeded { .. }));
    assert_eq!(keyframe, Some(Event::KeyframeNeeded { stream: id }));
    let next = keys[2];
    let dropped = submit(dev, id, &track, first + 3..next);
    assert_eq!(dropped, vec![Status::Dropped; next - first - 3]);
    let tail = submit(dev, id, &track, next..track.samples.len());
    assert_eq!(tail, vec![Status::Ok; track.samples.len() - next]);
    let eos = data_header(id, mediaredir_proto::data::FLAG_EOS, None);
    dev.submit_data_copy(0, &eos, &[]).unwrap();
    assert_eq!(collect(dev, 1), vec![Status::Ok]);
    let (ended, _) = wait_event(dev, WAIT, |e| *e == Event::Eos { stream: id });
    assert!(ended.is_some(), "EOS after resuming");

    // What the reconnected client decoded: the reference from the keyframe.
    let reference = reference_decode(&clip, WAIT).unwrap().remove(0);
    let want = &reference.frames[next..];
    let deadline = Instant::now() + WAIT;
    let got = loop {
        let report = std::fs::read_to_string(client.report_path())
            .ok()
            .and_then(|t| VerificationReport::from_text(&t).ok())
            .and_then(|r| r.streams.get(&id).cloned());
        if let Some(got) = report.filter(|r| r.frames.len() == want.len()) {
            break got;
        }
        assert!(Instant::now() < deadline, "no report of the resumed stream");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        got.frames.iter().zip(want).all(|(a, b)| a.hash == b.hash),
        "resumed frames differ from the local decode"
    );
    drop(client);
}

//! Capture and call-media offload from the guest's tools through the whole
//! stack: `redir-record` / `redir-call` -> broker -> daemon -> the client
//! engine in the daemon's process (headless: a 440 Hz test microphone),
//! and, for calls, an independent GStreamer RTP peer run by the test.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use conformance_tests::daemon::DaemonProcess;
use conformance_tests::media::gst_launch;
use conformance_tests::rig::{daemon_binary, workspace_binary};
use conformance_tests::scratch::Scratch;

fn tool(name: &str, env: &str) -> PathBuf {
    workspace_binary(env, name, name)
}

fn output(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("run");
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Mono 48 kHz S16 samples of an audio file, decoded by GStreamer.
fn decode_to_pcm(file: &Path, dir: &Scratch) -> Vec<i16> {
    let raw = dir.path("decoded.raw");
    let pipeline = format!(
        "filesrc location={} ! decodebin ! audioconvert ! audioresample ! \
         audio/x-raw,format=S16LE,channels=1,rate=48000 ! filesink location={}",
        file.display(),
        raw.display()
    );
    gst_launch(&pipeline);
    std::fs::read(&raw)
        .expect("decoded samples")
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Relative power of `freq` in `samples` (Goertzel), per sample.
fn power_at(samples: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / samples.len().max(1) as f64
}

/// Whether `freq` dominates `samples` (against two other frequencies).
fn is_tone(samples: &[i16], freq: f64) -> bool {
    let at = power_at(samples, freq);
    at > 0.0
        && at > 50.0 * power_at(samples, freq * 1.5)
        && at > 50.0 * power_at(samples, freq * 0.6)
}

#[test]
fn the_guest_records_the_clients_microphone() {
    let dir = Scratch::new("record-e2e");
    let socket = dir.path("vhost.sock");
    let daemon = DaemonProcess::start(&daemon_binary(), &socket, &["--uplink", "local:headless"]);
    let file = dir.path("mic.ogg");
    let out = output(
        Command::new(tool("redir-record", "REDIR_RECORD"))
            .arg("--vhost-user")
            .arg(&socket)
            .args(["--seconds", "5"])
            .arg(&file),
    );
    let counters = daemon.stop();
    assert!(out.status.success(), "redir-record failed");
    assert!(
        counters.get("payload_bytes_copied").copied().unwrap_or(0) > 0,
        "capture wrote into guest buffers"
    );
    let pcm = decode_to_pcm(&file, &dir);
    let seconds = pcm.len() as f64 / 48_000.0;
    assert!(seconds >= 4.5, "{seconds:.2} s recorded");
    // Skip the codec's start-up, then the client's 440 Hz test tone.
    assert!(
        is_tone(&pcm[9600..], 440.0),
        "the recording is the client's test tone"
    );
}

/// A free UDP port on loopback now.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port()
}

/// The audio port of an SDP.
fn audio_port(sdp: &str) -> u16 {
    sdp.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no audio port in {sdp}"))
}

/// An Opus RTP peer: sends an 880 Hz tone to `to`, records what it
/// receives on `port` to `wav`.
fn rtp_peer(port: u16, to: u16, wav: &Path) -> Child {
    let pipeline = format!(
        "audiotestsrc is-live=true freq=880 ! audioconvert ! audioresample ! opusenc ! \
         rtpopuspay pt=96 ! udpsink host=127.0.0.1 port={to} \
         udpsrc port={port} timeout=0 caps=application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=96 ! \
         rtpjitterbuffer latency=50 ! rtpopusdepay ! opusdec ! audioconvert ! \
         audio/x-raw,format=S16LE,channels=1,rate=48000 ! wavenc ! filesink location={}",
        wav.display()
    );
    Command::new("gst-launch-1.0")
        .arg("-e")
        .args(pipeline.split_whitespace())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the RTP peer")
}

fn stop(mut child: Child) {
    // SIGINT: gst-launch -e sends EOS, so the WAV file is finished.
    test_support::signal(&child, test_support::Signal::INT);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_call_from_the_guest_runs_its_media_at_the_client() {
    let dir = Scratch::new("call-e2e");
    let socket = dir.path("vhost.sock");
    let daemon = DaemonProcess::start(&daemon_binary(), &socket, &["--uplink", "local:headless"]);
    let offer = dir.path("offer.sdp");
    let answer = dir.path("answer.sdp");
    let call = Command::new(tool("redir-call", "REDIR_CALL"))
        .arg("--vhost-user")
        .arg(&socket)
        .arg("--offer-out")
        .arg(&offer)
        .arg("--remote-answer")
        .arg(&answer)
        .args([
            "--duration",
            "6",
            "--stats-interval",
            "1",
            "--at",
            "4:hold",
            "--at",
            "5:resume",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start redir-call");
    // The guest's signalling: the client's offer out, the peer's answer in.
    let deadline = Instant::now() + Duration::from_secs(30);
    let offer_text = loop {
        if let Ok(t) = std::fs::read_to_string(&offer)
            && !t.is_empty()
        {
            break t;
        }
        assert!(Instant::now() < deadline, "no offer from the client");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        offer_text.contains("opus/48000/2"),
        "the client offers Opus: {offer_text}"
    );
    let client_port = audio_port(&offer_text);
    let peer_port = free_udp_port();
    let wav = dir.path("peer.wav");
    let peer = rtp_peer(peer_port, client_port, &wav);
    std::fs::write(
        &answer,
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=peer\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {peer_port} RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n"
        ),
    )
    .expect("write the answer");
    let out = call.wait_with_output().expect("redir-call ends");
    stop(peer);
    daemon.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(out.status.success(), "the call failed");
    // The client received the peer's media: its statistics say so.
    let received: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.split("packets_received=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(
        received.iter().any(|&n| n > 50),
        "the client received the peer's RTP: {received:?}"
    );
    // The peer received the client's microphone: the 440 Hz test tone.
    let pcm = decode_to_pcm(&wav, &dir);
    assert!(pcm.len() > 48_000, "{} samples at the peer", pcm.len());
    assert!(
        is_tone(&pcm[4800..], 440.0),
        "the peer hears the client's microphone"
    );
}

#[test]
fn a_malformed_offer_is_refused_clearly() {
    let dir = Scratch::new("call-bad-sdp");
    let socket = dir.path("vhost.sock");
    let daemon = DaemonProcess::start(&daemon_binary(), &socket, &["--uplink", "local:headless"]);
    let bad = dir.path("bad.sdp");
    std::fs::write(&bad, "this is not SDP\r\nm=audio x\r\n").expect("write");
    let out = output(
        Command::new(tool("redir-call", "REDIR_CALL"))
            .arg("--vhost-user")
            .arg(&socket)
            .arg("--remote-offer")
            .arg(&bad)
            .arg("--answer-out")
            .arg(dir.path("answer.sdp")),
    );
    daemon.stop();
    assert!(!out.status.success(), "a malformed offer must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused"), "clear message: {err}");
}

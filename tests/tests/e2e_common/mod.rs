//! What the end-to-end tests share: the `media-client` process, playing
//! demuxed tracks through the guest driver, the bit-exact comparison with a
//! local decode, and a test PKI made at test time.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client_engine::VerificationReport;
use client_engine::verify::reference_decode;
use conformance_tests::rig::{Driver, Rig, data_header, ok, wait_client};
use mediaredir_player::playback_format;
use mediaredir_proto::control::{Request, StreamFormat};
use mediaredir_proto::data::{DataHeader, FLAG_EOS, FLAG_KEYFRAME};
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;

use crate::common::{Sample, Track};
/// How long any one step of an end-to-end test may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// The `media-client` binary: `$MEDIA_CLIENT`, or built on demand.
pub fn media_client_binary() -> PathBuf {
    conformance_tests::rig::workspace_binary("MEDIA_CLIENT", "media-client", "media-client")
}

/// Waits until `path` exists (a socket the daemon binds).
pub fn wait_path(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The data header of sample `s` of stream `stream`.
pub fn header(stream: u32, s: &Sample) -> DataHeader {
    let flags = if s.keyframe { FLAG_KEYFRAME } else { 0 };
    DataHeader {
        clip: s.clip,
        dts: s.dts,
        duration: s.duration,
        ..data_header(stream, flags, s.pts)
    }
}

/// A `media-client --once --verify-report` process.
pub struct Client {
    child: Child,
    report: PathBuf,
}

impl Client {
    /// `target` is `--connect ADDR` or `--spice HOST:PORT`; the client
    /// exits after its first connection.
    pub fn start(target: &[&str], report: PathBuf, extra: &[&str]) -> Client {
        Client::spawn(target, report, extra, true)
    }

    /// A client that reconnects when its connection drops.
    pub fn start_reconnecting(target: &[&str], report: PathBuf, extra: &[&str]) -> Client {
        Client::spawn(target, report, extra, false)
    }

    fn spawn(target: &[&str], report: PathBuf, extra: &[&str], once: bool) -> Client {
        let child = Command::new(media_client_binary())
            .args(target)
            .args(["--stats-interval", "0"])
            .args(once.then_some("--once"))
            .arg("--verify-report")
            .arg(&report)
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start media-client");
        Client { child, report }
    }

    /// Where the client writes its report.
    pub fn report_path(&self) -> &Path {
        &self.report
    }

    /// Waits for the client to exit (it does once every stream ended) and
    /// reads its report.
    pub fn finish(mut self) -> VerificationReport {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "media-client did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "media-client failed: {status}");
        let text = std::fs::read_to_string(&self.report).expect("verification report");
        VerificationReport::from_text(&text).expect("well-formed report")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The payload bytes of every sample of `tracks`: what the daemon's
/// `payload_bytes` counts once they are played.
pub fn payload_bytes(tracks: &[Track]) -> u64 {
    tracks
        .iter()
        .flat_map(|t| &t.samples)
        .map(|s| s.data.len() as u64)
        .sum()
}

/// Plays `tracks` (demuxed from `clip`) from `rig`'s driver once `client`
/// is connected, then checks that the daemon counted every payload byte
/// and copied none (a socket uplink writes from guest memory), and that
/// the client decoded them bit-exact with the file.
pub fn play_to_client_zero_copy(rig: &Rig, client: Client, clip: &Path, tracks: &[Track]) {
    let mut dev = rig.driver();
    wait_client(&mut dev, true);
    let ids = play(&mut dev, tracks);
    let counters = rig.daemon().counters();
    assert_eq!(counters["payload_bytes"], payload_bytes(tracks));
    assert_eq!(
        counters["payload_bytes_copied"], 0,
        "zero copy: {counters:?}"
    );
    let report = client.finish();
    assert_bit_exact(clip, &ids, &report);
}

/// The stream format of a demuxed track on `txq`.
pub fn format(track: &Track, txq: u32) -> StreamFormat {
    StreamFormat {
        media: track.media(),
        codec_data: track.codec_data.clone(),
        ..playback_format(track.codec, txq)
    }
}

/// Plays `tracks` through the device: one stream per track on txq = its
/// index, every sample with its timestamps and keyframe flag (interleaved
/// by decode time, as a player would), then an EOS buffer per stream.
/// Waits for every stream's EOS event and every buffer's completion, and
/// returns the stream ids (in track order).
pub fn play(dev: &mut Driver, tracks: &[Track]) -> Vec<u32> {
    let pres = ok(dev, 0, Request::PresCreate { live: false });
    let ids: Vec<u32> = tracks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let txq = u32::try_from(i).unwrap();
            ok(dev, pres, Request::StreamCreate(format(t, txq)))
        })
        .collect();
    ok(dev, pres, Request::PresPlay);
    let mut order: Vec<(u64, usize, usize)> = Vec::new();
    for (t, track) in tracks.iter().enumerate() {
        // Each track stays in decode order (Matroska gives B-frames no
        // DTS): the merge key is the running maximum of its timestamps.
        let mut key = 0;
        for (i, s) in track.samples.iter().enumerate() {
            key = s.dts.or(s.pts).unwrap_or(key).max(key);
            order.push((key, t, i));
        }
    }
    order.sort_unstable();
    let mut submitted = vec![0usize; tracks.len()];
    let mut completed = vec![0usize; tracks.len()];
    let drain = |dev: &mut Driver, completed: &mut [usize], txq: usize, wait: Duration| {
        let q = u16::try_from(txq).unwrap();
        for done in dev.wait_data_completions(q, wait).unwrap() {
            assert_eq!(done.status, Ok(Status::Ok), "a buffer of txq {txq}");
            completed[txq] += 1;
        }
    };
    for (_, t, i) in order {
        let s = &tracks[t].samples[i];
        let header = header(ids[t], s);
        let q = u16::try_from(t).unwrap();
        while dev.data_in_flight(q).unwrap() >= 64 {
            drain(dev, &mut completed, t, Duration::from_millis(20));
        }
        dev.submit_data_copy(q, &header, &s.data).unwrap();
        submitted[t] += 1;
    }
    for (t, &id) in ids.iter().enumerate() {
        let eos = data_header(id, FLAG_EOS, None);
        dev.submit_data_copy(u16::try_from(t).unwrap(), &eos, &[])
            .unwrap();
        submitted[t] += 1;
    }
    // Every stream's EOS event.
    let deadline = Instant::now() + WAIT;
    let mut eos: Vec<u32> = Vec::new();
    while eos.len() < ids.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match dev.next_event(left).unwrap() {
            Some((Event::Eos { stream }, _)) => eos.push(stream),
            Some((Event::StreamError { stream, status }, _)) => {
                panic!("stream {stream} failed: {status:?}")
            }
            Some(_) => {}
            None => panic!("EOS of {ids:?}: only {eos:?}"),
        }
    }
    // Every buffer completed OK.
    let deadline = Instant::now() + WAIT;
    for t in 0..tracks.len() {
        while completed[t] < submitted[t] {
            assert!(
                Instant::now() < deadline,
                "txq {t}: {} of {} completed",
                completed[t],
                submitted[t]
            );
            drain(dev, &mut completed, t, Duration::from_millis(200));
        }
    }
    ids
}

/// Compares the client's report with the local decode of `clip`.
pub fn assert_bit_exact(clip: &Path, ids: &[u32], report: &VerificationReport) {
    let reference = reference_decode(clip, WAIT).unwrap();
    assert_eq!(reference.len(), ids.len());
    for (id, want) in ids.iter().zip(&reference) {
        let got = report
            .streams
            .get(id)
            .unwrap_or_else(|| panic!("no report of stream {id}: {report:?}"));
        assert!(got.count() > 0, "stream {id} decoded nothing");
        assert!(
            got.bit_exact(want),
            "stream {id}: client {} x {:x} ({}), reference {} x {:x} ({})",
            got.count(),
            got.digest(),
            got.caps,
            want.count(),
            want.digest(),
            want.caps
        );
        eprintln!(
            "stream {id}: {} units bit-exact ({})",
            got.count(),
            got.caps
        );
    }
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

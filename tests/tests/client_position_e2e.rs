//! The position is the client's, and the link is measured (issue 20 items
//! 5 and 6; spec 7.13 DEV-TIME-1, DEV-TIME-3, DEV-TIME-4, 7.11 DEV-LINK-1),
//! end to end with the real daemon, the real `media-client` on its Unix
//! uplink (playing in real time, `--headless`) and the guest driver as the
//! player: the client is stopped (`SIGSTOP`) mid-stream; the position the
//! guest queries stops advancing within a second of media time; the daemon
//! declares the client lost after the stated time, saying so, and the guest
//! sees it leave from where it really was; continued (`SIGCONT`), the client
//! reconnects and the player goes on from there; and the guest was told the
//! link's round-trip time, plausible for a local socket.

#[path = "../../client-engine/tests/common/mod.rs"]
mod common;
mod e2e_common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Track, demux, generate};
use conformance_tests::rig::{Driver, Rig, call, ok, wait_client};
use e2e_common::{format, header, media_client_binary, wait_path};
use mediaredir_proto::control::Request;
use mediaredir_proto::event::{Event, LINK_RTT_PENDING};
use mediaredir_proto::response::ResponseBody;
use mediaredir_proto::status::Status;
use test_support::{ChildGuard, Signal};

/// 10 s of small VP8 video, a keyframe every half second.
const CLIP: &str = "videotestsrc num-buffers=300 pattern=ball ! video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=15 ! webmmux ! filesink location={out}";

/// How long any one phase may take.
const WAIT: Duration = Duration::from_secs(20);
const S: u64 = 1_000_000_000;

/// The player: feeds the track, queries the position, keeps the events.
struct Player {
    dev: Driver,
    pres: u32,
    stream: u32,
    next: usize,
    events: Vec<Event>,
    /// The highest position queried since it was last reset.
    highest: u64,
}

impl Player {
    /// Queues samples while the ring has room, collects completions and
    /// events; the position now (`None`: no client).
    fn step(&mut self, track: &Track) -> Option<u64> {
        while self.next < track.samples.len() && self.dev.data_in_flight(0).unwrap() < 32 {
            let s = &track.samples[self.next];
            self.dev
                .submit_data_copy(0, &header(self.stream, s), &s.data)
                .unwrap();
            self.next += 1;
        }
        for done in self
            .dev
            .wait_data_completions(0, Duration::from_millis(20))
            .unwrap()
        {
            let status = done.status.expect("a readable status");
            assert!(
                matches!(status, Status::Ok | Status::NoClient | Status::Cancelled),
                "a buffer completed {status:?}"
            );
        }
        while let Some((event, _)) = self.dev.next_event(Duration::ZERO).unwrap() {
            self.events.push(event);
        }
        match call(&mut self.dev, self.pres, Request::PresQueryPosition) {
            (Status::Ok, _, ResponseBody::Position(p)) => {
                if p.position_ns != u64::MAX {
                    self.highest = self.highest.max(p.position_ns);
                }
                Some(p.position_ns)
            }
            (Status::NoClient, _, _) => None,
            other => panic!("PRES_QUERY_POSITION: {other:?}"),
        }
    }

    /// Steps until `done` says so, at most [`WAIT`].
    fn until(&mut self, track: &Track, what: &str, done: impl Fn(&Player, Option<u64>) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let position = self.step(track);
            if done(self, position) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: {:?}", self.events);
        }
    }

    fn disconnected(&self) -> bool {
        self.events.contains(&Event::ClientDisconnected)
    }
}

#[test]
fn a_stopped_client_stops_the_position_is_lost_and_comes_back() {
    let t0 = Instant::now();
    let dir = common::TempDir::new("position-e2e");
    let tracks = demux(&generate(&dir.0, "clip.webm", CLIP));
    let track = &tracks[0];
    eprintln!("clip made: {:?}", t0.elapsed());
    let rig = Rig::start_logged("position-e2e", &[]);
    wait_path(&rig.uplink);
    let mut client = ChildGuard::spawn(
        Command::new(media_client_binary())
            .args(["--connect", &format!("unix:{}", rig.uplink.display())])
            .args(["--headless", "--stats-interval", "0"])
            .env("RUST_LOG", "info")
            .stderr(Stdio::inherit()),
    )
    .expect("start media-client");
    let mut dev = rig.driver();
    wait_client(&mut dev, true);
    eprintln!("client connected: {:?}", t0.elapsed());
    let pres = ok(&mut dev, 0, Request::PresCreate { live: false });
    let stream = ok(&mut dev, pres, Request::StreamCreate(format(track, 0)));
    ok(&mut dev, pres, Request::PresPlay);
    let mut player = Player {
        dev,
        pres,
        stream,
        next: 0,
        events: Vec::new(),
        highest: 0,
    };

    // Playing in real time: past 2 s.
    player.until(track, "playing to 2 s", |_, p| {
        p.is_some_and(|p| p != u64::MAX && p >= 2 * S)
    });

    // Stopped: the position the guest sees stops within 1 s of media time.
    test_support::signal(client.child_mut(), Signal::STOP);
    let stopped_at = Instant::now();
    player.highest = 0;
    let at_stop = player.step(track).expect("still connected");
    player.until(track, "the stopped client declared lost", |p, position| {
        p.disconnected() && position.is_none()
    });
    let lost_after = stopped_at.elapsed();
    // Every position queried until the client was declared lost.
    let highest = player.highest;
    // Lost after the stated time (3 s without progress, counted from the
    // client's last report, at most a report interval before the stop),
    // and the daemon says so.
    assert!(
        lost_after >= Duration::from_millis(2_400),
        "lost after {lost_after:?}"
    );
    let log = rig.log();
    assert!(
        log.contains("client disconnected: lost: the client made no progress for"),
        "{log}"
    );
    // The guest learnt where the client really was, before it left.
    let leave = player
        .events
        .iter()
        .position(|e| *e == Event::ClientDisconnected)
        .unwrap();
    let Some(Event::Position {
        position_ns: reached,
        ..
    }) = player.events[..leave]
        .iter()
        .rev()
        .find(|e| matches!(e, Event::Position { .. }))
        .copied()
    else {
        panic!(
            "no POSITION before CLIENT_DISCONNECTED: {:?}",
            player.events
        );
    };
    assert!(
        reached >= S && reached <= highest,
        "reached {reached}; queried at most {highest}"
    );
    // The position the guest saw went on for at most 1 s of media time
    // past where the client really was (DEV-TIME-2).
    assert!(
        highest <= reached + S,
        "the guest saw {highest} with the client stopped at {reached} (queried {at_stop} at the stop)"
    );

    // Continued: the client reconnects and the player goes on from the
    // keyframe before where the client was.
    test_support::signal(client.child_mut(), Signal::CONT);
    wait_client(&mut player.dev, true);
    let from = track
        .samples
        .iter()
        .rposition(|s| s.keyframe && s.pts.is_some_and(|p| p <= reached))
        .expect("a keyframe before the position");
    let resume = track.samples[from].pts.unwrap();
    ok(
        &mut player.dev,
        pres,
        Request::PresFlush {
            position_ns: resume,
        },
    );
    player.next = from;
    player.until(track, "playing again", |_, p| {
        p.is_some_and(|p| p != u64::MAX && p >= resume + S)
    });

    // The link's round trip, measured while the client played.
    let rtts: Vec<u64> = player
        .events
        .iter()
        .filter_map(|e| match *e {
            Event::LinkQuality { rtt_ns, flags, .. } if flags & LINK_RTT_PENDING == 0 => {
                Some(rtt_ns)
            }
            _ => None,
        })
        .collect();
    assert!(!rtts.is_empty(), "no LINK_QUALITY: {:?}", player.events);
    assert!(
        rtts.iter().all(|&rtt| rtt > 0 && rtt < S),
        "round trips {rtts:?}"
    );
    eprintln!("played again: {:?}", t0.elapsed());
    client.stop(Duration::from_secs(3)).unwrap();
    eprintln!(
        "stopped at {at_stop} ns, reached {reached}, lost after {lost_after:?}; \
         round trips {rtts:?}; {:?}",
        t0.elapsed()
    );
}

/// `redir-play` (the guest's player, DRV-DATA-5) through the same stack:
/// with the client stopped it resumes from where the client really was
/// (the `POSITION` before `CLIENT_DISCONNECTED`), not from the next sample
/// it had demuxed, up to the credit's seconds ahead; and its progress
/// lines carry the link quality.
#[test]
fn redir_play_resumes_where_the_client_was_and_prints_the_link() {
    let t0 = Instant::now();
    let dir = common::TempDir::new("position-redir-play");
    let clip = generate(
        &dir.0,
        "clip.ivf",
        "videotestsrc num-buffers=180 pattern=ball ! video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=15 ! avmux_ivf ! filesink location={out}",
    );
    // 1 s of credit: the client holds about 2 s ahead, so the player is
    // still sending when the client stops (a client that held the whole
    // clip would leave the player waiting for EOS instead).
    let rig = Rig::start("position-redir-play", &["--max-inflight-ms", "1000"]);
    wait_path(&rig.uplink);
    let mut client = ChildGuard::spawn(
        Command::new(media_client_binary())
            .args(["--connect", &format!("unix:{}", rig.uplink.display())])
            .args(["--headless", "--stats-interval", "0"])
            .stderr(Stdio::null()),
    )
    .expect("start media-client");
    let mut player = ChildGuard::spawn(
        Command::new(conformance_tests::rig::workspace_binary(
            "REDIR_PLAY",
            "redir-play",
            "redir-play",
        ))
        .arg("--vhost-user")
        .arg(&rig.socket)
        .args(["--wait-client", "20", "--progress", "0.25"])
        .arg(&clip)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped()),
    )
    .expect("start redir-play");
    let lines = {
        let stderr = player.child_mut().stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in
                std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok)
            {
                eprintln!("{line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let mut log = Vec::new();
    let mut next_line = |what: &str| -> String {
        let line = lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("redir-play said no more before {what}: {log:?}"));
        log.push(line.clone());
        line
    };
    let seconds = |line: &str, prefix: &str| -> Option<f64> {
        line.strip_prefix(prefix)?.split(' ').next()?.parse().ok()
    };
    // A measured round trip (not the lower bound of an unanswered ping).
    let answered = |line: &str| -> Option<f64> {
        if line.contains("no answer yet") {
            return None;
        }
        seconds(line, "redir-play: link: round trip ")
    };
    // Played to 1 s: stop the client.
    let mut link_ms = Vec::new();
    let stopped_at = loop {
        let line = next_line("1 s");
        if let Some(ms) = answered(&line) {
            link_ms.push(ms);
        }
        if let Some(p) = seconds(&line, "redir-play: position ")
            && p >= 1.0
        {
            test_support::signal(client.child_mut(), Signal::STOP);
            break p;
        }
    };
    let left_at = loop {
        let line = next_line("the client left");
        if let Some(at) = seconds(&line, "redir-play: the client left at ") {
            break at;
        }
    };
    test_support::signal(client.child_mut(), Signal::CONT);
    loop {
        let line = next_line("the end");
        if let Some(ms) = answered(&line) {
            link_ms.push(ms);
        }
        if line.contains("reached end of stream") {
            break;
        }
    }
    let status = player.wait_timeout(WAIT).unwrap().expect("redir-play ends");
    assert!(status.success(), "redir-play failed: {status}");
    assert!(
        left_at <= stopped_at + 0.5,
        "resumed from {left_at} s, the client was stopped at {stopped_at} s"
    );
    assert!(!link_ms.is_empty(), "no link line");
    assert!(
        link_ms.iter().all(|&ms| ms > 0.0 && ms < 1000.0),
        "round trips {link_ms:?} ms"
    );
    client.stop(Duration::from_secs(3)).unwrap();
    eprintln!(
        "stopped at {stopped_at} s, resumed from {left_at} s, round trips {link_ms:?} ms; {:?}",
        t0.elapsed()
    );
}

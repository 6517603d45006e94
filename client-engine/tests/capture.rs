//! Capture (spec 7.10) driven as the daemon drives it: CreatePresentation,
//! CreateStream (capture), StartCapture, acknowledgements, RequestKeyframe,
//! StopCapture; the samples are checked by decoding them.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use client_engine::gst;
use client_engine::wire::{
    ClientFeatures, CodecFlags, CreateStream, Direction, MediaParams, Message, PresentationFlags,
    SampleFlags, SampleHeader, SourceKind, Status,
};
use client_engine::{Engine, EngineConfig, EngineEvents, OutputMode};
use common::tone;
use mediaredir_proto::codec::Codec;

/// What a daemon would receive.
#[derive(Default)]
struct Daemon {
    samples: Mutex<Vec<(SampleHeader, Vec<u8>)>>,
    msgs: Mutex<Vec<Message>>,
    cond: Condvar,
}

impl EngineEvents for Daemon {
    fn report(&self, msg: Message) {
        self.msgs.lock().unwrap().push(msg);
    }

    fn capture_sample(&self, header: SampleHeader, payload: gst::Buffer) {
        let data = payload.map_readable().unwrap().to_vec();
        self.samples.lock().unwrap().push((header, data));
        self.cond.notify_all();
    }
}

impl Daemon {
    fn of(&self, stream: u32) -> Vec<(SampleHeader, Vec<u8>)> {
        self.samples
            .lock()
            .unwrap()
            .iter()
            .filter(|(h, _)| h.stream == stream)
            .cloned()
            .collect()
    }

    /// Waits until `pred` holds for the samples of `stream`.
    fn wait(
        &self,
        stream: u32,
        timeout: Duration,
        pred: impl Fn(&[(SampleHeader, Vec<u8>)]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.of(stream)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            let g = self.samples.lock().unwrap();
            let _ = self
                .cond
                .wait_timeout(g, Duration::from_millis(50))
                .unwrap();
        }
    }

    /// Acknowledges everything of `stream` received so far, as the daemon
    /// does when it has written the samples to guest buffers.
    fn ack_all(&self, engine: &Engine, stream: u32) {
        if let Some((h, _)) = self.of(stream).last() {
            engine.handle(&Message::Ack {
                stream,
                seq: h.seq,
                status: Status::Ok,
            });
        }
    }
}

fn capture_stream(id: u32, codec: Codec, source: u32) -> Message {
    let video = codec.is_video();
    Message::CreateStream(CreateStream {
        id,
        presentation: 1,
        direction: Direction::Capture,
        codec,
        media: if video {
            MediaParams {
                bitrate: 300_000,
                ..MediaParams::video(320, 240, 30, 1)
            }
        } else {
            MediaParams {
                bitrate: 64_000,
                ..MediaParams::audio(48000, 1)
            }
        },
        source,
        codec_data: Vec::new(),
    })
}

fn setup() -> (Engine, Arc<Daemon>, u32, u32) {
    let engine = Engine::new(EngineConfig::with_output(OutputMode::Headless)).unwrap();
    let daemon = Arc::new(Daemon::default());
    engine.set_events(daemon.clone());
    engine.handle(&Message::CreatePresentation {
        id: 1,
        flags: PresentationFlags::LIVE,
    });
    let caps = engine.capabilities();
    let mic = caps
        .sources
        .iter()
        .find(|s| s.kind == SourceKind::Microphone)
        .unwrap()
        .id;
    let cam = caps
        .sources
        .iter()
        .find(|s| s.kind == SourceKind::Camera)
        .unwrap()
        .id;
    (engine, daemon, mic, cam)
}

#[test]
fn capabilities_announce_capture_and_calls() {
    let engine = Engine::new(EngineConfig::with_output(OutputMode::Headless)).unwrap();
    let caps = engine.capabilities();
    assert!(caps.features.contains(ClientFeatures::CAPTURE), "{caps:?}");
    assert!(caps.features.contains(ClientFeatures::CALL), "{caps:?}");
    let names: Vec<_> = caps.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["test microphone", "test camera"]);
    for codec in [Codec::Opus, Codec::Vp8, Codec::H264] {
        let c = caps.codecs.iter().find(|c| c.codec == codec).unwrap();
        assert!(c.flags.contains(CodecFlags::ENCODE), "{codec:?}: {c:?}");
    }
    for codec in [Codec::Opus, Codec::Vp8] {
        let c = caps.codecs.iter().find(|c| c.codec == codec).unwrap();
        assert!(c.flags.contains(CodecFlags::RTP), "{codec:?}: {c:?}");
    }
    // Without sources: neither capture nor calls.
    let mut cfg = EngineConfig::with_output(OutputMode::Headless);
    cfg.capture_sources = client_engine::CaptureSources::None;
    let caps = Engine::new(cfg).unwrap().capabilities();
    assert!(!caps.features.contains(ClientFeatures::CAPTURE));
    assert!(!caps.features.contains(ClientFeatures::CALL));
    assert!(caps.sources.is_empty());
    assert!(caps.codecs.iter().all(|c| c.flags == CodecFlags::DECODE));
}

#[test]
fn opus_capture_is_the_test_tone() {
    let (engine, daemon, mic, _) = setup();
    engine.handle(&capture_stream(5, Codec::Opus, mic));
    engine.handle(&Message::StartCapture { stream: 5 });
    let t0 = Instant::now();
    // About 5 s of audio, acknowledged as the daemon would.
    while t0.elapsed() < Duration::from_secs(30) && daemon.of(5).len() < 250 {
        std::thread::sleep(Duration::from_millis(100));
        daemon.ack_all(&engine, 5);
    }
    engine.handle(&Message::StopCapture { stream: 5 });
    let got = daemon.of(5);
    assert!(got.len() >= 250, "only {} samples", got.len());
    // Stopped: nothing more arrives.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(daemon.of(5).len(), got.len(), "samples after StopCapture");

    // Numbered from 1, DISCONT on the first only, every Opus sample a
    // keyframe, timestamps increasing, no OpusHead/OpusTags.
    for (i, (h, data)) in got.iter().enumerate() {
        assert_eq!(h.seq, i as u64 + 1);
        assert_eq!(h.flags.contains(SampleFlags::DISCONT), i == 0, "{h:?}");
        assert!(h.flags.contains(SampleFlags::KEYFRAME));
        assert!(
            !data.starts_with(b"Opus"),
            "codec header sent as sample {i}"
        );
        assert!(h.pts.is_some() && h.duration.is_some());
        if i > 0 {
            assert!(h.pts > got[i - 1].0.pts, "pts not increasing at {i}");
        }
    }
    let packets: Vec<Vec<u8>> = got.iter().map(|(_, d)| d.clone()).collect();
    let pcm = tone::decode_opus(&packets, 1);
    assert!(pcm.len() > 48000 * 4, "decoded {} samples", pcm.len());
    // Skip the encoder's start-up.
    assert!(
        tone::dominant(&pcm[4800..], 48000.0, 440.0),
        "not a 440 Hz tone"
    );
    assert!(!tone::dominant(&pcm[4800..], 48000.0, 880.0));

    // Acknowledged samples are counted delivered; the device, not the
    // client, reports capture QoS to the guest.
    daemon.ack_all(&engine, 5);
    let stats = engine.capture_stats(5).unwrap();
    assert_eq!(stats.sent, got.len() as u64);
    assert_eq!(stats.delivered, got.len() as u64);
    assert_eq!(stats.dropped, 0);
    assert!(
        !daemon
            .msgs
            .lock()
            .unwrap()
            .iter()
            .any(|m| matches!(m, Message::Qos { stream: 5, .. })),
        "Qos sent for a capture stream"
    );
}

#[test]
fn unacknowledged_capture_is_dropped_at_the_source() {
    let (engine, daemon, mic, _) = setup();
    engine.handle(&capture_stream(7, Codec::Opus, mic));
    engine.handle(&Message::StartCapture { stream: 7 });
    // No acknowledgements: the client keeps at most 1 s in flight.
    std::thread::sleep(Duration::from_secs(2));
    let stats = engine.capture_stats(7).unwrap();
    assert!(stats.sent <= 51, "{stats:?}");
    assert!(stats.dropped > 0, "{stats:?}");
    // Cancelled acknowledgements count as dropped; sending resumes with
    // DISCONT.
    let sent = daemon.of(7).len() as u64;
    engine.handle(&Message::Ack {
        stream: 7,
        seq: sent,
        status: Status::Cancelled,
    });
    assert!(daemon.wait(7, Duration::from_secs(5), |s| s.len() as u64 > sent));
    let s = daemon.of(7);
    assert!(
        s[usize::try_from(sent).unwrap()]
            .0
            .flags
            .contains(SampleFlags::DISCONT)
    );
    assert!(engine.capture_stats(7).unwrap().dropped >= sent);
    engine.handle(&Message::DestroyStream { id: 7 });
    assert!(engine.capture_stats(7).is_none());
}

/// Whether a VP8 frame is a keyframe (RFC 6386: bit 0 of the first byte is
/// 0 for key frames).
fn vp8_key(data: &[u8]) -> bool {
    data.first().is_some_and(|b| b & 1 == 0)
}

#[test]
fn vp8_keyframe_on_request_and_shared_clock() {
    let (engine, daemon, mic, cam) = setup();
    engine.handle(&capture_stream(5, Codec::Opus, mic));
    engine.handle(&capture_stream(6, Codec::Vp8, cam));
    engine.handle(&Message::StartCapture { stream: 5 });
    engine.handle(&Message::StartCapture { stream: 6 });
    let ack = |n: usize| {
        daemon.wait(6, Duration::from_secs(20), |s| {
            daemon.ack_all(&engine, 5);
            daemon.ack_all(&engine, 6);
            s.len() >= n
        })
    };
    assert!(ack(20), "no VP8 samples");
    let first = daemon.of(6);
    assert!(first[0].0.flags.contains(SampleFlags::KEYFRAME));
    assert!(first[0].0.flags.contains(SampleFlags::DISCONT));
    for (h, d) in &first {
        assert_eq!(h.flags.contains(SampleFlags::KEYFRAME), vp8_key(d), "{h:?}");
    }
    // The keyframe interval is 120 frames: a keyframe soon after the request
    // is the request's.
    let at = daemon.of(6).len();
    engine.handle(&Message::RequestKeyframe { stream: 6 });
    assert!(ack(at + 15));
    let after = daemon.of(6);
    let key = after[at..]
        .iter()
        .position(|(h, _)| h.flags.contains(SampleFlags::KEYFRAME));
    assert!(key.is_some_and(|k| k < 15), "no keyframe after the request");
    assert!(vp8_key(&after[at + key.unwrap()].1));

    // One capture clock: the camera's timestamps are close to the
    // microphone's at the same moment.
    let audio = daemon.of(5);
    let (v_last, a_last) = (
        after.last().unwrap().0.pts.unwrap(),
        audio.last().unwrap().0.pts.unwrap(),
    );
    let diff = v_last.abs_diff(a_last);
    assert!(diff < 500_000_000, "audio {a_last} video {v_last}");
    engine.handle(&Message::DestroyPresentation { id: 1 });
    let n = daemon.of(6).len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(daemon.of(6).len(), n, "samples after DestroyPresentation");
}

#[test]
fn h264_capture_is_annex_b_with_parameter_sets_in_keyframes() {
    let (engine, daemon, _, cam) = setup();
    engine.handle(&capture_stream(8, Codec::H264, cam));
    engine.handle(&Message::StartCapture { stream: 8 });
    assert!(daemon.wait(8, Duration::from_secs(20), |s| {
        daemon.ack_all(&engine, 8);
        s.len() >= 5
    }));
    engine.handle(&Message::RequestKeyframe { stream: 8 });
    assert!(daemon.wait(8, Duration::from_secs(20), |s| {
        daemon.ack_all(&engine, 8);
        s.iter()
            .filter(|(h, _)| h.flags.contains(SampleFlags::KEYFRAME))
            .count()
            >= 2
    }));
    engine.handle(&Message::StopCapture { stream: 8 });
    let nal_types = |d: &[u8]| -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i + 3 < d.len() {
            if d[i..i + 3] == [0, 0, 1] {
                out.push(d[i + 3] & 0x1f);
                i += 3;
            }
            i += 1;
        }
        out
    };
    let got = daemon.of(8);
    assert!(got[0].0.flags.contains(SampleFlags::KEYFRAME));
    for (h, d) in got {
        assert!(
            d.starts_with(&[0, 0, 0, 1]) || d.starts_with(&[0, 0, 1]),
            "not Annex-B"
        );
        if h.flags.contains(SampleFlags::KEYFRAME) {
            let t = nal_types(&d);
            assert!(
                t.contains(&7) && t.contains(&8) && t.contains(&5),
                "keyframe NALs {t:?}"
            );
        }
    }
    // Bad requests are refused with StreamError, never a panic.
    engine.handle(&capture_stream(9, Codec::Opus, cam));
    engine.handle(&capture_stream(10, Codec::Opus, 99));
    let msgs = daemon.msgs.lock().unwrap().clone();
    for id in [9, 10] {
        assert!(
            msgs.iter().any(|m| matches!(m, Message::StreamError { stream, status: Status::Invalid, .. } if *stream == id)),
            "{id}: {msgs:?}"
        );
    }
}

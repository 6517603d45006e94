//! Transport controls on real pipelines: pause/resume against the clock,
//! flush/seek mid-stream (old data dropped, new segment, bit-exact after
//! the seek point), watermarks bounding acknowledgements, volume and
//! geometry, and rate changes without a flush (stream time against wall
//! time, audio muted off 1x, the rate kept across flushes).

mod common;

use std::time::Duration;

use client_engine::gst;
use client_engine::gst::prelude::*;
use client_engine::verify::reference_decode;
use client_engine::wire::{
    Message, PresentationState, Rect, SampleFlags, SampleHeader, SetGeometry,
};
use client_engine::{Engine, EngineConfig, OutputMode, Watermarks};
use common::*;

fn positions(msgs: &[Message]) -> Vec<u64> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Position { position_ns, .. } => Some(*position_ns),
            _ => None,
        })
        .collect()
}

fn state(msgs: &[Message], s: PresentationState) -> usize {
    msgs.iter()
        .filter(|m| matches!(m, Message::StateChanged { state, .. } if *state == s))
        .count()
}

#[test]
fn pause_and_resume_follow_the_clock() {
    let dir = TempDir::new("pause");
    let tracks = demux(&generate(&dir.0, "clip.mkv", AV));
    let (engine, ev) = engine_with_presentation(EngineConfig::with_output(OutputMode::Headless));
    feed_all(&engine, 1, 1, &tracks[0]);
    feed_all(&engine, 1, 2, &tracks[1]);
    engine.handle(&Message::Play { presentation: 1 });
    assert!(ev.wait(Duration::from_secs(10), |m| state(
        m,
        PresentationState::Playing
    ) == 1));
    assert!(ev.wait(Duration::from_secs(10), |m| {
        positions(m).iter().any(|&p| p >= 300_000_000)
    }));
    engine.handle(&Message::Pause { presentation: 1 });
    assert!(ev.wait(Duration::from_secs(5), |m| state(
        m,
        PresentationState::Paused
    ) == 1));
    let p1 = engine.position(1).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let p2 = engine.position(1).unwrap();
    assert!(
        p2.abs_diff(p1) < 50_000_000,
        "position moved while paused: {p1} -> {p2}"
    );
    assert!(!Collector::has_eos(&ev.all(), 1));
    engine.handle(&Message::Play { presentation: 1 });
    assert!(ev.wait(Duration::from_secs(5), |m| state(
        m,
        PresentationState::Playing
    ) == 2));
    assert!(
        ev.wait(Duration::from_secs(10), |m| Collector::has_eos(m, 1)
            && Collector::has_eos(m, 2))
    );
    let stats = engine.stats();
    assert_eq!(stats.len(), 2);
    assert!(
        stats.iter().all(|s| s.decoded > 0 && s.rendered > 0),
        "{stats:?}"
    );
    assert!(ev.all().iter().any(|m| matches!(m, Message::Qos { .. })));
}

/// An H.264 clip with B-frames (made in a scratch directory named after
/// `tag`), demuxed, and its reference decode.
fn h264_and_reference(tag: &str) -> (Track, client_engine::StreamReport) {
    let dir = TempDir::new(tag);
    let clip = generate(&dir.0, "clip.mp4", H264_BFRAMES);
    let track = demux(&clip).remove(0);
    let reference = reference_decode(&clip, Duration::from_secs(30))
        .unwrap()
        .remove(0);
    (track, reference)
}

#[test]
fn flush_drops_old_data_and_starts_a_segment() {
    let (track, reference) = h264_and_reference("flush");
    flush_then_play(&track, &reference, 16);
}

/// The flush race: a Flush right after the first samples, while decodebin
/// still plugs parser and decoder, used to leave the stream unexposed
/// (not-linked) in some runs. Twenty runs, each flushing after a different
/// number of samples, must all finish bit-exact.
#[test]
fn flush_while_autoplugging_never_hangs() {
    let (track, reference) = h264_and_reference("flush-race");
    for run in 0..20 {
        flush_then_play(&track, &reference, 1 + run % 4);
    }
}

/// Pushes the first `before` samples, flushes at once to frame 15's time,
/// resends from the keyframe before it, plays, and checks the output after
/// the seek point bit-exact.
fn flush_then_play(track: &Track, reference: &client_engine::StreamReport, before: usize) {
    let (engine, ev) = engine_with_presentation(EngineConfig::with_output(OutputMode::Verify));
    engine.handle(&create_stream(track, 7, 1));
    // First half queued while paused, then a seek to frame 15's time.
    push_range(&engine, 7, track, 0..before);
    // Flush at once, while decodebin is still typefinding / plugging the
    // parser and decoder (no decoded buffer yet): the flush must neither
    // hang the stream nor lose the new segment.
    let mut pts: Vec<u64> = track.samples.iter().filter_map(|s| s.pts).collect();
    pts.sort_unstable();
    let target = pts[15];
    engine.handle(&Message::Flush {
        presentation: 1,
        position_ns: target,
    });
    // Resend from the keyframe (decode order) at or before the target.
    let key = (0..track.samples.len())
        .rev()
        .find(|&i| track.samples[i].keyframe && track.samples[i].pts.unwrap() <= target)
        .unwrap();
    let mut seq = 100;
    for s in &track.samples[key..] {
        let mut flags = if s.keyframe {
            SampleFlags::KEYFRAME
        } else {
            SampleFlags::empty()
        };
        if s.pts.unwrap() < target {
            flags |= SampleFlags::DECODE_ONLY;
        }
        let h = SampleHeader {
            clip: Default::default(),
            stream: 7,
            seq,
            pts: s.pts,
            dts: s.dts,
            duration: s.duration,
            flags,
        };
        engine.push_sample(&h, gst::Buffer::from_mut_slice(s.data.clone()));
        seq += 1;
    }
    let eos = SampleHeader {
        clip: Default::default(),
        stream: 7,
        seq,
        pts: None,
        dts: None,
        duration: None,
        flags: SampleFlags::EOS,
    };
    engine.push_sample(&eos, gst::Buffer::new());
    engine.handle(&Message::Play { presentation: 1 });
    assert!(ev.wait(Duration::from_secs(20), |m| Collector::has_eos(m, 7)));
    let got = engine.verification().unwrap().streams[&7].clone();
    let want: Vec<_> = reference
        .frames
        .iter()
        .filter(|f| f.pts.unwrap() >= target)
        .copied()
        .collect();
    assert_eq!(got.frames.len(), want.len(), "frames after the seek point");
    for (g, w) in got.frames.iter().zip(&want) {
        assert_eq!(g.pts, w.pts);
        assert_eq!(g.hash, w.hash, "frame at {:?}", w.pts);
    }
    assert_eq!(ev.acked(7), seq);
}

#[test]
fn watermarks_bound_acknowledgements() {
    let dir = TempDir::new("wm");
    let track = demux(&generate(&dir.0, "clip.mp4", H264_BFRAMES)).remove(0);
    let total: usize = track.samples.iter().map(|s| s.data.len()).sum();
    let mut config = EngineConfig::with_output(OutputMode::Headless);
    config.watermarks = Watermarks {
        low_bytes: 4096,
        high_bytes: 8192,
        low_ns: 100_000_000,
        high_ns: 200_000_000,
    };
    let (engine, ev) = engine_with_presentation(config);
    feed_all(&engine, 1, 3, &track);
    std::thread::sleep(Duration::from_millis(300));
    // Paused: the decoder took what it needs to preroll, the rest is held
    // and not acknowledged.
    let before = ev.acked(3);
    assert!(
        before < track.samples.len() as u64,
        "acked {before} of {} samples ({total} bytes) while paused",
        track.samples.len()
    );
    engine.handle(&Message::Play { presentation: 1 });
    assert!(ev.wait(Duration::from_secs(10), |m| Collector::has_eos(m, 3)));
    assert_eq!(ev.acked(3), track.samples.len() as u64 + 1);
}

#[test]
fn volume_and_geometry_apply() {
    let dir = TempDir::new("vol");
    let track = demux(&generate(&dir.0, "clip.webm", OPUS)).remove(0);
    let (engine, ev) = engine_with_presentation(EngineConfig::with_output(OutputMode::Headless));
    engine.handle(&Message::SetVolume {
        stream: 5,
        volume_q16: 1,
        mute: false,
    }); // unknown stream: ignored
    feed_all(&engine, 1, 5, &track);
    engine.handle(&Message::SetVolume {
        stream: 5,
        volume_q16: 32768,
        mute: true,
    });
    let g = SetGeometry {
        presentation: 1,
        display: 0,
        visible: true,
        color_key: false,
        z: 3,
        dest: Rect::new(10, 20, 320, 240),
        source: Rect::default(),
        clip: vec![],
    };
    engine.handle(&Message::SetGeometry(g.clone()));
    assert_eq!(engine.geometry(1), Some(g));
    engine.handle(&Message::Play { presentation: 1 });
    assert!(ev.wait(Duration::from_secs(10), |m| Collector::has_eos(m, 5)));
    let pipeline = engine.pipeline(1).unwrap();
    let volume = element_of(&pipeline, "volume").expect("volume element");
    assert!(volume.property::<bool>("mute"));
    assert_eq!(volume.property::<f64>("volume"), 0.5);
}

/// VP8 + Opus, 3 s.
const VP8_OPUS: &str = "webmmux name=m ! filesink location={out} videotestsrc num-buffers=90 pattern=ball ! video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=15 ! m. audiotestsrc num-buffers=150 samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=2 ! opusenc ! m.";

/// Stream time gained per wall time over `wall`, after a settling pause.
fn speed(engine: &Engine, wall: Duration) -> f64 {
    std::thread::sleep(Duration::from_millis(100));
    let (p1, t1) = (engine.position(1).unwrap(), std::time::Instant::now());
    std::thread::sleep(wall);
    let (p2, t2) = (engine.position(1).unwrap(), std::time::Instant::now());
    (p2.saturating_sub(p1)) as f64 / (t2 - t1).as_nanos() as f64
}

/// Sets presentation 1's rate (16.16 fixed point).
fn set_rate(engine: &Engine, rate_q16: u32) {
    engine.handle(&Message::SetRate {
        presentation: 1,
        rate_q16,
    });
}

/// Flushes presentation 1 back to the start and resends stream 1 from
/// `track`, its sequence numbers after those of `round` earlier sends.
fn flush_and_resend(engine: &Engine, track: &Track, round: u64) {
    engine.handle(&Message::Flush {
        presentation: 1,
        position_ns: 0,
    });
    let n = track.samples.len() as u64;
    for (i, s) in track.samples.iter().enumerate() {
        let mut h = header(1, i, s, SampleFlags::empty());
        h.seq += round * (n + 1);
        engine.push_sample(&h, gst::Buffer::from_mut_slice(s.data.clone()));
    }
}

#[test]
fn set_rate_changes_speed_without_a_flush() {
    let t0 = std::time::Instant::now();
    let dir = TempDir::new("rate");
    let tracks = demux(&generate(&dir.0, "clip.webm", VP8_OPUS));
    assert_eq!(tracks.len(), 2);
    let (engine, ev) = engine_with_presentation(EngineConfig::with_output(OutputMode::Headless));
    feed_all(&engine, 1, 1, &tracks[0]);
    feed_all(&engine, 1, 2, &tracks[1]);
    engine.handle(&Message::Play { presentation: 1 });
    assert!(ev.wait(Duration::from_secs(10), |m| {
        positions(m).iter().any(|&p| p >= 200_000_000)
    }));
    let decoded: u64 = engine.stats().iter().map(|s| s.decoded).sum();
    set_rate(&engine, 131_072);
    let fast = speed(&engine, Duration::from_millis(500));
    assert!(
        (1.5..2.6).contains(&fast),
        "2x: stream time ran at {fast:.2}x"
    );
    set_rate(&engine, 32_768);
    let slow = speed(&engine, Duration::from_millis(500));
    assert!(
        (0.3..0.7).contains(&slow),
        "0.5x: stream time ran at {slow:.2}x"
    );
    // The Position reports follow the same stream time.
    // No time-stretching: the audio is muted while not at 1x.
    let pipeline = engine.pipeline(1).unwrap();
    let volume = element_of(&pipeline, "volume").expect("volume element");
    assert!(volume.property::<bool>("mute"), "audio not muted at 0.5x");
    set_rate(&engine, 65_536);
    assert!(!volume.property::<bool>("mute"), "audio still muted at 1x");
    let reported = positions(&ev.all());
    assert!(reported.windows(2).all(|w| w[0] <= w[1]), "{reported:?}");
    // No flush: nothing acknowledged as cancelled, everything plays out.
    assert!(
        ev.wait(Duration::from_secs(10), |m| Collector::has_eos(m, 1)
            && Collector::has_eos(m, 2))
    );
    assert_eq!(ev.acked(1), tracks[0].samples.len() as u64 + 1);
    assert_eq!(ev.acked(2), tracks[1].samples.len() as u64 + 1);
    assert!(decoded > 0);
    let stats = engine.stats();
    assert!(stats.iter().all(|s| s.failed.is_none()), "{stats:?}");
    eprintln!(
        "rate: {fast:.2}x then {slow:.2}x, passed in {:?}",
        t0.elapsed()
    );
}

#[test]
fn rate_set_before_data_holds_across_a_flush() {
    let t0 = std::time::Instant::now();
    let dir = TempDir::new("rate-flush");
    let track = demux(&generate(&dir.0, "clip.webm", VP8_OPUS)).remove(0);
    let (engine, ev) = engine_with_presentation(EngineConfig::with_output(OutputMode::Headless));
    set_rate(&engine, 131_072);
    feed_all(&engine, 1, 1, &track);
    engine.handle(&Message::Play { presentation: 1 });
    assert!(ev.wait(Duration::from_secs(10), |m| state(
        m,
        PresentationState::Playing
    ) == 1));
    let before = speed(&engine, Duration::from_millis(400));
    assert!(
        (1.5..2.6).contains(&before),
        "2x set before data: {before:.2}x"
    );
    // Flush back to the start and resend: the seek carries the rate.
    flush_and_resend(&engine, &track, 1);
    let after = speed(&engine, Duration::from_millis(400));
    assert!((1.5..2.6).contains(&after), "2x after a flush: {after:.2}x");
    // An instant change back to 1x, then another flush: the sinks' instant
    // multiplier does not outlive the flush (no 0.5x).
    set_rate(&engine, 65_536);
    let normal = speed(&engine, Duration::from_millis(300));
    assert!((0.7..1.3).contains(&normal), "1x again: {normal:.2}x");
    flush_and_resend(&engine, &track, 2);
    let last = speed(&engine, Duration::from_millis(300));
    assert!((0.7..1.3).contains(&last), "1x after a flush: {last:.2}x");
    assert!(engine.stats().iter().all(|s| s.failed.is_none()));
    eprintln!(
        "rate-flush: {before:.2}x, {after:.2}x, {normal:.2}x, {last:.2}x, passed in {:?}",
        t0.elapsed()
    );
}

//! Decoding through the engine is bit-exact with decoding the original
//! file locally: H.264 with B-frames (mp4), VP8, VP9, Opus (webm), and
//! H.264 + Opus in one presentation (one pipeline, one clock).

mod common;

use std::time::{Duration, Instant};

use client_engine::verify::reference_decode;
use client_engine::wire::Message;
use client_engine::{Engine, EngineConfig, OutputMode};
use common::*;

fn check(tag: &str, name: &str, desc: &str) {
    let t0 = Instant::now();
    let dir = TempDir::new(tag);
    let clip = generate(&dir.0, name, desc);
    let tracks = demux(&clip);
    assert!(!tracks.is_empty());
    let reference = reference_decode(&clip, Duration::from_secs(30)).unwrap();
    assert_eq!(reference.len(), tracks.len());

    let engine = Engine::new(EngineConfig::with_output(OutputMode::Verify)).unwrap();
    let events = Collector::new();
    engine.set_events(events.clone());
    create_presentation(&engine, 1);
    for (i, t) in tracks.iter().enumerate() {
        feed_all(&engine, 1, 10 + u32::try_from(i).unwrap(), t);
    }
    engine.handle(&Message::Play { presentation: 1 });
    let ids: Vec<u32> = (0..tracks.len())
        .map(|i| 10 + u32::try_from(i).unwrap())
        .collect();
    assert!(
        events.wait(Duration::from_secs(30), |m| ids
            .iter()
            .all(|&id| Collector::has_eos(m, id))),
        "no EOS: {:?}",
        events.all()
    );
    let report = engine.verification().unwrap();
    for (i, (t, r)) in tracks.iter().zip(&reference).enumerate() {
        let id = 10 + u32::try_from(i).unwrap();
        let got = &report.streams[&id];
        assert!(got.count() > 0, "{tag}: stream {id} decoded nothing");
        assert!(
            got.bit_exact(r),
            "{tag}: stream {id} not bit-exact: engine {} x {:x} ({}), reference {} x {:x} ({})",
            got.count(),
            got.digest(),
            got.caps,
            r.count(),
            r.digest(),
            r.caps
        );
        // Every sample acknowledged, the EOS sample included.
        assert!(
            events.wait(Duration::from_secs(5), |_| true)
                && events.acked(id) == t.samples.len() as u64 + 1,
            "{tag}: acked {} of {}",
            events.acked(id),
            t.samples.len() + 1
        );
    }
    eprintln!("{tag}: bit-exact in {:?}", t0.elapsed());
}

#[test]
fn h264_with_bframes_is_bit_exact() {
    check("h264", "clip.mp4", H264_BFRAMES);
}

#[test]
fn vp8_is_bit_exact() {
    check("vp8", "clip.webm", VP8);
}

#[test]
fn vp9_is_bit_exact() {
    check("vp9", "clip.webm", VP9);
}

#[test]
fn opus_is_bit_exact() {
    check("opus", "clip.webm", OPUS);
}

#[test]
fn audio_and_video_together_are_bit_exact() {
    check("av", "clip.mkv", AV);
}

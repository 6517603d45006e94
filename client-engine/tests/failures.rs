//! A bad stream fails alone: an unsupported codec, a bogus stream and a
//! corrupted bitstream each leave the other streams and presentations
//! playing.

mod common;

use std::time::Duration;

use client_engine::gst;
use client_engine::wire::{Message, SampleFlags, SampleHeader};
use client_engine::{Engine, EngineConfig, OutputMode};
use common::*;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::status::Status;

#[test]
fn unsupported_codec_fails_alone() {
    let dir = TempDir::new("unsup");
    let vp8 = demux(&generate(&dir.0, "clip.webm", VP8)).remove(0);
    let mut config = EngineConfig::with_output(OutputMode::Headless);
    config.disabled_codecs = vec![Codec::Vp9];
    let engine = Engine::new(config).unwrap();
    let caps = engine.capabilities();
    for c in [Codec::H264, Codec::Vp8, Codec::Opus] {
        assert!(caps.codecs.iter().any(|cc| cc.codec == c), "{c:?} missing");
    }
    assert!(!caps.codecs.iter().any(|cc| cc.codec == Codec::Vp9));
    let ev = Collector::new();
    engine.set_events(ev.clone());
    create_presentation(&engine, 1);
    let mut vp9 = vp8.clone();
    vp9.codec = Codec::Vp9;
    feed_all(&engine, 1, 2, &vp9);
    feed_all(&engine, 1, 1, &vp8);
    engine.handle(&Message::Play { presentation: 1 });
    assert!(ev.wait(Duration::from_secs(10), |m| Collector::has_eos(m, 1)));
    assert!(ev.all().iter().any(|m| matches!(
        m,
        Message::StreamError {
            stream: 2,
            status: Status::Unsupported,
            ..
        }
    )));
}

#[test]
fn bogus_stream_fails_alone() {
    let dir = TempDir::new("bogus");
    let vp8 = demux(&generate(&dir.0, "clip.webm", VP8)).remove(0);
    let (engine, ev) = engine_with_presentation(EngineConfig::with_output(OutputMode::Headless));
    // An H.264 stream whose avcC is garbage.
    let mut bogus = vp8.clone();
    bogus.codec = Codec::H264;
    bogus.codec_data = vec![1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    feed_all(&engine, 1, 2, &bogus);
    feed_all(&engine, 1, 1, &vp8);
    engine.handle(&Message::Play { presentation: 1 });
    assert!(
        ev.wait(Duration::from_secs(10), |m| Collector::has_eos(m, 1)
            && Collector::has_error(m, 2)),
        "{:?}",
        ev.all()
            .iter()
            .filter(|m| !matches!(m, Message::Ack { .. }))
            .collect::<Vec<_>>()
    );
    // Every sample of the failed stream is acknowledged (whatever status).
    let acked = ev
        .all()
        .iter()
        .filter_map(|m| match m {
            Message::Ack { stream: 2, seq, .. } => Some(*seq),
            _ => None,
        })
        .max();
    assert_eq!(acked, Some(bogus.samples.len() as u64 + 1));
}

#[test]
fn corrupted_bitstream_keeps_engine_running() {
    let dir = TempDir::new("corrupt");
    let clip = generate(&dir.0, "clip.mp4", H264_BFRAMES);
    let mut track = demux(&clip).remove(0);
    for s in &mut track.samples[3..12] {
        let n = s.data.len();
        for b in &mut s.data[n / 4..n * 3 / 4] {
            *b ^= 0x5a;
        }
    }
    let (engine, ev) = engine_with_presentation(EngineConfig::with_output(OutputMode::Headless));
    feed_all(&engine, 1, 1, &track);
    engine.handle(&Message::Play { presentation: 1 });
    assert!(
        ev.wait(Duration::from_secs(15), |m| Collector::has_eos(m, 1)
            || Collector::has_error(m, 1)),
        "neither EOS nor error"
    );
    // The engine still plays a fresh presentation.
    let vp8 = demux(&generate(&dir.0, "ok.webm", VP8)).remove(0);
    create_presentation(&engine, 2);
    feed_all(&engine, 2, 2, &vp8);
    engine.handle(&Message::Play { presentation: 2 });
    assert!(ev.wait(Duration::from_secs(10), |m| Collector::has_eos(m, 2)));
    engine.handle(&Message::DestroyPresentation { id: 1 });
    engine.handle(&Message::DestroyPresentation { id: 2 });
    // Samples for destroyed streams are dropped silently.
    let h = SampleHeader {
        clip: Default::default(),
        stream: 2,
        seq: 99,
        pts: None,
        dts: None,
        duration: None,
        flags: SampleFlags::empty(),
    };
    engine.push_sample(&h, gst::Buffer::from_slice(vec![0u8; 4]));
}

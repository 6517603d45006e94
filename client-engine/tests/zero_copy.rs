//! Complete-on-drop: a sample wrapped around its owner's memory reaches
//! the decoder without a copy, and the owner is released once the decoder
//! is done with it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client_engine::gst;
use client_engine::gst::prelude::*;
use client_engine::wire::{Message, SampleFlags};
use client_engine::{EngineConfig, OutputMode};
use common::*;

/// Guest memory stand-in: records its release.
struct Owner {
    data: Vec<u8>,
    released: Arc<AtomicUsize>,
}

impl AsMut<[u8]> for Owner {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.released.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn decoder_reads_owner_memory_and_releases_it() {
    let dir = TempDir::new("zc");
    let track = demux(&generate(&dir.0, "clip.webm", VP8)).remove(0);
    let (engine, ev) = engine_with_presentation(EngineConfig::with_output(OutputMode::Verify));

    // Address ranges of every owner's memory.
    let ranges: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    let seen = Arc::new(AtomicUsize::new(0));
    let inside = Arc::new(AtomicUsize::new(0));
    let pipeline = engine.pipeline(1).unwrap();
    let (r2, s2, i2) = (ranges.clone(), seen.clone(), inside.clone());
    pipeline.connect_deep_element_added(move |_, _, element| {
        let Some(pad) = test_support::gst::decoder_sink_pad(element) else {
            return;
        };
        let (r, s, i) = (r2.clone(), s2.clone(), i2.clone());
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(ref b)) = info.data {
                let map = b.map_readable().unwrap();
                let p = map.as_ptr() as usize;
                s.fetch_add(1, Ordering::SeqCst);
                if r.lock()
                    .unwrap()
                    .iter()
                    .any(|&(a, len)| p >= a && p + map.len() <= a + len)
                {
                    i.fetch_add(1, Ordering::SeqCst);
                }
            }
            gst::PadProbeReturn::Ok
        });
    });

    // The stream (and its decoder) after the probe is in place.
    engine.handle(&create_stream(&track, 1, 1));
    let released = Arc::new(AtomicUsize::new(0));
    for (i, s) in track.samples.iter().enumerate() {
        let mut owner = Owner {
            data: s.data.clone(),
            released: released.clone(),
        };
        let slice = owner.as_mut();
        ranges
            .lock()
            .unwrap()
            .push((slice.as_ptr() as usize, slice.len()));
        let h = header(1, i, s, SampleFlags::empty());
        engine.push_sample(&h, gst::Buffer::from_mut_slice(owner));
    }
    push_eos(&engine, 1, &track);
    engine.handle(&Message::Play { presentation: 1 });
    assert!(ev.wait(Duration::from_secs(10), |m| Collector::has_eos(m, 1)));
    let n = track.samples.len();
    assert_eq!(seen.load(Ordering::SeqCst), n, "decoder inputs");
    assert_eq!(
        inside.load(Ordering::SeqCst),
        n,
        "inputs inside owner memory"
    );
    // Released once the decoder has consumed them (not only at teardown).
    let deadline = Instant::now() + Duration::from_secs(5);
    while released.load(Ordering::SeqCst) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        released.load(Ordering::SeqCst),
        n,
        "owners released after decode"
    );
    engine.handle(&Message::DestroyPresentation { id: 1 });
}

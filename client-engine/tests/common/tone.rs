//! Tone checks for capture and call tests: Opus decoding and the Goertzel
//! power of one frequency.

use client_engine::gst;
use client_engine::gst::prelude::*;

/// Power of `freq` in `x` (sampled at `rate`), normalised by length.
pub fn goertzel(x: &[f32], rate: f64, freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (x.len().max(1) as f64).powi(2)
}

/// Whether `freq` dominates `x`: at least 20 times the power of each of a
/// few other frequencies, and the signal is not silent.
pub fn dominant(x: &[f32], rate: f64, freq: f64) -> bool {
    let p = goertzel(x, rate, freq);
    let others = [
        freq * 0.5,
        freq * 0.75,
        freq * 1.5,
        freq * 2.0,
        1000.0,
        3000.0,
    ]
    .into_iter()
    .filter(|f| (f - freq).abs() > 50.0)
    .map(|f| goertzel(x, rate, f))
    .fold(0.0f64, f64::max);
    eprintln!("tone {freq} Hz: power {p:e}, strongest other {others:e}");
    p > 1e-6 && p > 20.0 * others
}

/// Decodes raw Opus packets (no OpusHead) to mono F32 at 48 kHz.
pub fn decode_opus(packets: &[Vec<u8>], channels: u32) -> Vec<f32> {
    gst::init().unwrap();
    let p = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=audio/x-opus,channel-mapping-family=0,channels={channels},rate=48000 \
         ! opusdec ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,channels=1,rate=48000 \
         ! appsink name=sink sync=false"
    ))
    .unwrap()
    .dynamic_cast::<gst::Pipeline>()
    .unwrap();
    let src = p
        .by_name("src")
        .unwrap()
        .dynamic_cast::<gstreamer_app::AppSrc>()
        .unwrap();
    let sink = p
        .by_name("sink")
        .unwrap()
        .dynamic_cast::<gstreamer_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    for (i, pk) in packets.iter().enumerate() {
        let mut b = gst::Buffer::from_mut_slice(pk.clone());
        let bm = b.get_mut().unwrap();
        bm.set_pts(gst::ClockTime::from_mseconds(20 * i as u64));
        bm.set_duration(gst::ClockTime::from_mseconds(20));
        src.push_buffer(b).unwrap();
    }
    src.end_of_stream().unwrap();
    let mut out = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        let b = s.buffer().unwrap().map_readable().unwrap();
        out.extend(
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
    }
    p.set_state(gst::State::Null).unwrap();
    out
}

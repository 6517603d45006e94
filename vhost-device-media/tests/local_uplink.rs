//! The local uplink (the client engine in the daemon's process): payloads
//! reach the decoder as GStreamer memory wrapping the guest mapping itself,
//! nothing is copied, every guest buffer completes OK once GStreamer lets go
//! of it, and the decoded frames are bit-exact with a local decode of the
//! same stream (spec DEV-DATA-2, DEV-DATA-4, DEV-SEC-5).

#![cfg(feature = "local")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client_engine::OutputMode;
use client_engine::gst;
use client_engine::gst::prelude::*;
use client_engine::verify::reference_decode;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{self, Message};
use test_support::scratch;
use vhost_user_mediaredir::chain::Segment;
use vhost_user_mediaredir::counters::Counters;
use vhost_user_mediaredir::guest_buffer::{CompletionTarget, GuestBuffer};
use vhost_user_mediaredir::uplink::local::LocalUplink;
use vhost_user_mediaredir::uplink::{ClientEvents, Uplink};
use vm_memory::{
    Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    MemoryRegionAddress,
};

mod common;
use common::Ring;

/// Collects what the engine reports.
struct Reports(Mutex<Sender<Message>>);

impl ClientEvents for Reports {
    fn client_connected(&self, _caps: wire::Capabilities) {}
    fn client_disconnected(&self) {}
    fn client_message(&self, msg: Message) {
        let _ = self.0.lock().unwrap().send(msg);
    }
}

/// One encoded access unit.
struct Unit {
    data: Vec<u8>,
    pts: u64,
    duration: u64,
    keyframe: bool,
}

/// The test clip's picture size and frame rate: the encoder's caps, the
/// reference's IVF header and the stream the uplink is told of.
const WIDTH: u16 = 320;
const HEIGHT: u16 = 240;
const FPS: u32 = 30;

/// Encodes 30 frames of moving test pattern as VP8 frames. VP8 needs no
/// parser, so the decoder's input is exactly what the uplink handed over
/// (an H.264 stream goes through h264parse, which makes its own buffers).
fn encode_vp8() -> Vec<Unit> {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=30 pattern=ball \
         ! video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate={FPS}/1 \
         ! vp8enc deadline=1 keyframe-max-dist=10 ! appsink name=sink sync=false",
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gstreamer_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut units = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let buffer = sample.buffer().unwrap();
        units.push(Unit {
            data: buffer.map_readable().unwrap().to_vec(),
            pts: buffer.pts().unwrap().nseconds(),
            duration: buffer.duration().map_or(33_333_333, |d| d.nseconds()),
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
        });
    }
    pipeline.set_state(gst::State::Null).unwrap();
    units
}

/// The frames as an IVF file (32-byte file header, 12-byte frame headers),
/// for the reference decode.
fn ivf(units: &[Unit]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"DKIF");
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(b"VP80");
    out.extend_from_slice(&WIDTH.to_le_bytes());
    out.extend_from_slice(&HEIGHT.to_le_bytes());
    out.extend_from_slice(&FPS.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&u32::try_from(units.len()).unwrap().to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for (i, unit) in units.iter().enumerate() {
        out.extend_from_slice(&u32::try_from(unit.data.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&(i as u64).to_le_bytes());
        out.extend_from_slice(&unit.data);
    }
    out
}

#[test]
fn decoder_input_lies_in_guest_memory_and_output_is_bit_exact() {
    let units = encode_vp8();
    assert!(units.len() >= 30, "encoded {} units", units.len());

    // "Guest RAM", with every access unit written into it.
    let mem = Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap());
    let mut at = 0x10_0000u64;
    let mut placed = Vec::new();
    for unit in &units {
        mem.write_slice(&unit.data, GuestAddress(at)).unwrap();
        placed.push(Segment {
            addr: GuestAddress(at),
            len: u32::try_from(unit.data.len()).unwrap(),
        });
        at += (unit.data.len() as u64 + 4095) & !4095;
    }
    let region = mem.iter().next().unwrap();
    let base = region.get_host_address(MemoryRegionAddress(0)).unwrap() as usize;
    let size = usize::try_from(region.len()).unwrap();

    let counters = Arc::new(Counters::default());
    let local = LocalUplink::new(OutputMode::Verify, counters.clone()).unwrap();
    let (tx, reports): (Sender<Message>, Receiver<Message>) = mpsc::channel();
    let events: Arc<dyn ClientEvents> = Arc::new(Reports(Mutex::new(tx)));
    local.connect(Arc::downgrade(&events));
    local.send(Message::CreatePresentation {
        id: 1,
        flags: wire::PresentationFlags::empty(),
    });

    // Watch the decoder's input: where does its memory lie?
    let seen = Arc::new(AtomicUsize::new(0));
    let inside = Arc::new(AtomicUsize::new(0));
    let (s2, i2) = (seen.clone(), inside.clone());
    local
        .engine()
        .pipeline(1)
        .unwrap()
        .connect_deep_element_added(move |_, _, element| {
            let Some(pad) = test_support::gst::decoder_sink_pad(element) else {
                return;
            };
            let (s, i) = (s2.clone(), i2.clone());
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(ref buffer)) = info.data {
                    for memory in buffer.iter_memories() {
                        let map = memory.map_readable().unwrap();
                        let p = map.as_ptr() as usize;
                        s.fetch_add(1, Ordering::SeqCst);
                        if p >= base && p + map.len() <= base + size {
                            i.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                gst::PadProbeReturn::Ok
            });
        });
    local.send(Message::CreateStream(wire::CreateStream {
        id: 2,
        presentation: 1,
        direction: wire::Direction::Playback,
        codec: Codec::Vp8,
        media: wire::MediaParams::video(WIDTH.into(), HEIGHT.into(), FPS, 1),
        source: 0,
        codec_data: vec![],
    }));
    local.send(Message::Play { presentation: 1 });

    let ring = Arc::new(Ring::default());
    let target = || CompletionTarget {
        ring: ring.clone(),
        waker: ring.clone(),
        counters: counters.clone(),
    };
    let status_at = |head: u16| GuestAddress(0x1000 + u64::from(head) * 8);
    for (i, (unit, segment)) in units.iter().zip(&placed).enumerate() {
        let head = u16::try_from(i).unwrap();
        let buffer =
            GuestBuffer::new(mem.clone(), head, &[*segment], status_at(head), target()).unwrap();
        let flags = if unit.keyframe {
            wire::SampleFlags::KEYFRAME
        } else {
            wire::SampleFlags::empty()
        };
        let seq = u64::try_from(i).unwrap() + 1;
        let sample = wire::SampleHeader {
            clip: Default::default(),
            stream: 2,
            seq,
            pts: Some(unit.pts),
            dts: None,
            duration: Some(unit.duration),
            flags,
        };
        local.send_sample(sample, buffer);
    }
    let eos_head = u16::try_from(units.len()).unwrap();
    let eos = GuestBuffer::new(mem.clone(), eos_head, &[], status_at(eos_head), target()).unwrap();
    let eos_sample = wire::SampleHeader {
        clip: Default::default(),
        stream: 2,
        seq: units.len() as u64 + 1,
        pts: None,
        dts: None,
        duration: None,
        flags: wire::SampleFlags::EOS,
    };
    local.send_sample(eos_sample, eos);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match reports.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Message::EndOfStream { stream: 2 }) => break,
            Ok(Message::StreamError { message, .. }) => panic!("stream failed: {message}"),
            Ok(_) => {}
            Err(_) => panic!("no EndOfStream"),
        }
    }
    // Every guest buffer comes back once GStreamer lets go of it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ring.heads().len() < units.len() + 1 {
        assert!(
            Instant::now() < deadline,
            "{} of {} buffers completed",
            ring.heads().len(),
            units.len() + 1
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for head in 0..=eos_head {
        let status: u32 = mem.read_obj(status_at(head)).unwrap();
        assert_eq!(status, Status::Ok.as_u32(), "buffer {head}");
    }
    assert_eq!(
        seen.load(Ordering::SeqCst),
        inside.load(Ordering::SeqCst),
        "decoder input outside guest memory"
    );
    assert!(
        inside.load(Ordering::SeqCst) >= units.len(),
        "the decoder saw every access unit"
    );
    let snapshot = counters.snapshot();
    assert_eq!(snapshot.payload_bytes_copied, 0);
    assert_eq!(
        snapshot.payload_bytes,
        units.iter().map(|u| u.data.len() as u64).sum::<u64>()
    );

    // Bit-exact against decoding the same stream locally.
    let dir = scratch("vdm-local");
    let file = dir.path().join("clip.ivf");
    std::fs::write(&file, ivf(&units)).unwrap();
    let reference = reference_decode(&file, Duration::from_secs(30)).unwrap();
    drop(dir);
    let report = local.engine().verification().unwrap();
    let ours = &report.streams[&2];
    assert!(
        ours.bit_exact(&reference[0]),
        "decoded frames differ from the local decode"
    );
    drop(events);
}

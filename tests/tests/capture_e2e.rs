//! Capture end to end with every real component (spec 7.10): the
//! `media-client` binary's test microphone (a 440 Hz sine) is encoded to
//! Opus by the client engine, sent as `CaptureSample`s over the daemon's
//! socket uplink, written by the daemon into the buffers the guest player
//! posted through the broker; the guest's samples decode to the 440 Hz
//! tone.

#[path = "../../client-engine/tests/common/mod.rs"]
mod common;
mod e2e_common;

use std::process::{Command, Stdio};
use std::time::Instant;

use common::tone;
use conformance_tests::rig::{Rig, connected_player};
use e2e_common::{media_client_binary, wait_path};
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::{Direction, MediaParams, StreamFormat};
use mediaredir_proto::data::{FLAG_DISCONT, FLAG_KEYFRAME};
use mediaredir_proto::status::Status;
use test_support::ChildGuard;

#[test]
fn client_microphone_reaches_the_guest_player() {
    let _ = env_logger::builder().is_test(true).try_init();
    let start = Instant::now();
    let rig = Rig::start("capture-e2e", &[]);
    wait_path(&rig.uplink);
    let _client = ChildGuard::new(
        Command::new(media_client_binary())
            .args(["--connect", &format!("unix:{}", rig.uplink.display())])
            .args(["--headless", "--stats-interval", "0", "--sources", "test"])
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start media-client"),
    );
    let (_broker, socket) = rig.broker();
    let mut p = connected_player(&socket);
    let t0 = Instant::now();
    eprintln!("client connected after {:?}", start.elapsed());
    let sources = p.enum_sources().expect("sources");
    let mic = sources
        .iter()
        .find(|s| s.name == "test microphone")
        .unwrap_or_else(|| panic!("no test microphone in {sources:?}"))
        .id;
    let format = StreamFormat {
        codec: Codec::Opus,
        direction: Direction::Capture,
        txq: 0,
        source_id: mic,
        media: MediaParams {
            bitrate: 64_000,
            ..MediaParams::audio(48_000, 1)
        },
        codec_data: Vec::new(),
    };
    p.try_format(&format).expect("the client encodes Opus");
    let pres = p.create_presentation(true).expect("presentation");
    let stream = p.create_stream(pres, &format).expect("stream");
    p.request_buffers(stream, 32, 4000).expect("buffers");
    for i in 0..32 {
        p.queue_capture_buffer(stream, i).expect("posted");
    }
    p.start_capture(stream).expect("start");
    // About 3 s of 20 ms packets.
    let mut got = Vec::new();
    while got.len() < 150 {
        let c = p.dequeue_capture().expect("a capture buffer comes back");
        assert_eq!(c.status, Status::Ok, "{c:?}");
        let h = c.header.expect("filled");
        assert_eq!(h.stream_id, stream);
        let len = usize::try_from(h.payload_len).unwrap();
        let data = p.buffer(stream, c.index).expect("held")[..len].to_vec();
        got.push((h, data));
        p.queue_capture_buffer(stream, c.index)
            .expect("posted again");
    }
    eprintln!("150 samples in {:?}", t0.elapsed());
    p.stop_capture(stream).expect("stop");
    for (i, (h, _)) in got.iter().enumerate() {
        assert_ne!(h.flags & FLAG_KEYFRAME, 0);
        if i == 0 {
            assert_ne!(h.flags & FLAG_DISCONT, 0, "DISCONT on the first sample");
        } else {
            assert!(h.pts > got[i - 1].0.pts, "capture clock increases");
        }
    }
    let packets: Vec<Vec<u8>> = got.into_iter().map(|(_, d)| d).collect();
    let pcm = tone::decode_opus(&packets, 1);
    assert!(pcm.len() > 48000 * 2, "decoded {} samples", pcm.len());
    assert!(
        tone::dominant(&pcm[4800..], 48000.0, 440.0),
        "the guest did not get the client's 440 Hz microphone"
    );
    eprintln!("checked after {:?}", start.elapsed());
}

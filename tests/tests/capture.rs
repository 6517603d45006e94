//! Capture (spec 7.10, 9.2) through the real daemon and the guest broker:
//! samples the client captured reach the player's own buffers unchanged,
//! in order, with their flags; every sample is acknowledged to the client;
//! stopping a stream stops its samples; samples larger than the player's
//! buffer come back as `LIMIT` without stopping the others.

use std::time::{Duration, Instant};

use conformance_tests::client::{AckPolicy, TestClient, decode_and_capture};
use conformance_tests::rig::{Rig, connected_player};
use mediaredir_player::PlayerError;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::{Direction, MediaParams, StreamFormat};
use mediaredir_proto::data::{FLAG_DISCONT, FLAG_KEYFRAME};
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{self, Message};

fn capture_format(codec: Codec, source_id: u32) -> StreamFormat {
    StreamFormat {
        codec,
        direction: Direction::Capture,
        txq: 0,
        source_id,
        media: MediaParams {
            bitrate: 64_000,
            ..MediaParams::audio(48_000, 2)
        },
        codec_data: Vec::new(),
    }
}

fn sample(stream: u32, seq: u64) -> Message {
    Message::CaptureSample(wire::SampleHeader {
        clip: Default::default(),
        stream,
        seq,
        pts: Some(seq * 20_000_000),
        dts: None,
        duration: Some(20_000_000),
        flags: wire::SampleFlags::KEYFRAME,
    })
}

#[test]
fn captured_samples_reach_the_players_buffers() {
    let _ = env_logger::builder().is_test(true).try_init();
    let rig = Rig::start("capture", &[]);
    let mut client = TestClient::connect(&rig.uplink, decode_and_capture(), AckPolicy::Immediate);
    let (_broker, socket) = rig.broker();
    let mut p = connected_player(&socket);
    let sources = p.enum_sources().expect("sources");
    assert_eq!(sources.len(), 2, "the client's microphone and camera");
    p.try_format(&capture_format(Codec::Opus, 1))
        .expect("the client encodes Opus");
    let pres = p.create_presentation(true).expect("presentation");
    let mic = p
        .create_stream(pres, &capture_format(Codec::Opus, 1))
        .expect("stream");
    // Enough posts for every sample sent below: without a post the broker
    // drops a sample (spec 9.2).
    p.request_buffers(mic, 16, 1000).expect("buffers");
    for i in 0..16 {
        p.queue_capture_buffer(mic, i).expect("posted");
    }
    p.start_capture(mic).expect("start");
    let (start, _) = client.wait_for(
        Duration::from_secs(10),
        |m| matches!(m, Message::StartCapture { stream } if *stream == mic),
    );
    assert!(start.is_some(), "the client is told to start capturing");

    let payload = |seq: u64| -> Vec<u8> {
        (0..(50 + seq * 10))
            .map(|i| (i ^ seq).to_le_bytes()[0])
            .collect()
    };
    for seq in 1..=12u64 {
        client.send_with_payload(&sample(mic, seq), &payload(seq));
    }
    let mut got = Vec::new();
    let mut limits = 0;
    while got.len() < 12 {
        let c = p.dequeue_capture().expect("a capture buffer comes back");
        assert_eq!(c.stream, mic);
        match (c.status, c.header) {
            (Status::Ok, Some(h)) => {
                let data = p.buffer(mic, c.index).expect("held")[..h.payload_len as usize].to_vec();
                got.push((h, data));
            }
            (Status::Limit, None) => limits += 1,
            other => panic!("unexpected capture completion {other:?}"),
        }
        p.queue_capture_buffer(mic, c.index).expect("posted again");
    }
    for (i, (h, data)) in got.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(h.stream_id, mic);
        assert_eq!(data, &payload(seq), "sample {seq} unchanged");
        assert_eq!(h.pts, Some(seq * 20_000_000), "sample {seq} in order");
        assert_ne!(h.flags & FLAG_KEYFRAME, 0);
        assert_eq!(
            h.flags & FLAG_DISCONT != 0,
            seq == 1,
            "DISCONT on the first only"
        );
    }
    // The client hears back about every sample.
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while acked.len() < 12 && Instant::now() < deadline {
        let (ack, _) =
            client.wait_for(Duration::from_secs(5), |m| matches!(m, Message::Ack { .. }));
        if let Some(r) = ack
            && let Message::Ack {
                stream,
                seq,
                status,
            } = r.msg
        {
            assert_eq!(stream, mic);
            assert_eq!(status, Status::Ok, "sample {seq}");
            acked.push(seq);
        }
    }
    assert_eq!(
        acked,
        (1..=12).collect::<Vec<_>>(),
        "every sample acknowledged, in order"
    );

    assert_eq!(limits, 0);
    // A sample larger than every post: each post it is tried on comes back
    // LIMIT (spec 9.2), and the sample reaches nobody.
    client.send_with_payload(&sample(mic, 13), &vec![9u8; 3000]);
    let c = p.dequeue_capture().expect("a LIMIT post comes back");
    assert_eq!((c.status, c.header), (Status::Limit, None));
    p.set_nonblocking(true);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match p.dequeue_capture() {
            Ok(c) => assert_eq!((c.status, c.header), (Status::Limit, None)),
            Err(PlayerError::WouldBlock) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("{e}"),
        }
    }
    // Stopped: samples are cancelled, none reaches the player.
    p.stop_capture(mic).expect("stop");
    client.send_with_payload(&sample(mic, 20), &payload(20));
    let (ack, _) = client.wait_for(Duration::from_secs(5), |m| {
        matches!(m, Message::Ack { seq: 20, .. })
    });
    assert!(
        matches!(
            ack.map(|r| r.msg),
            Some(Message::Ack {
                status: Status::Cancelled,
                ..
            })
        ),
        "a sample after STOP is cancelled"
    );
    std::thread::sleep(Duration::from_millis(200));
    let more = p.dequeue_capture();
    assert!(
        matches!(more, Err(PlayerError::WouldBlock)),
        "nothing more reaches the player: {more:?}"
    );
}

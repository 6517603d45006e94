//! The data path end to end: guest buffers through the daemon to a client
//! on the socket uplink (7.8, 7.9, 10.7).

use std::time::Duration;

use conformance_tests::client::AckPolicy;
use conformance_tests::rig::{Rig, audio, call, data_header, ok, playing_video, wait_event};
use mediaredir_proto::control::Request;
use mediaredir_proto::data::{DataHeader, FLAG_DISCONT, FLAG_EOS, FLAG_KEYFRAME};
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{Message, SampleFlags};

fn header(stream: u32, i: u64, flags: u32) -> DataHeader {
    DataHeader {
        dts: if i.is_multiple_of(3) {
            None
        } else {
            Some(i * 33_366_667 - 1)
        },
        duration: Some(33_366_667),
        ..data_header(stream, flags, Some(i * 33_366_667))
    }
}

fn payload(i: u64) -> Vec<u8> {
    let len = 100 + usize::try_from(i * 7919 % 200_000).unwrap();
    let seed = i.to_le_bytes()[0];
    (0..len)
        .map(|j| j.to_le_bytes()[0].wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// DEV-DATA-2, DEV-DATA-6, DEV-DATA-7, WIRE: bytes arrive unchanged, in
/// order, with their timestamps and flags; every buffer completes OK after
/// the client's ack; nothing is copied in the daemon.
#[test]
fn bytes_arrive_unchanged_in_order() {
    let rig = Rig::start("data", &[]);
    let (client, mut dev) = rig.connected(AckPolicy::Immediate);
    let (_, v) = playing_video(&mut dev);
    let count = 40u64;
    let mut sent_bytes = 0u64;
    let mut tokens = Vec::new();
    for i in 0..count {
        let flags = if i.is_multiple_of(10) {
            FLAG_KEYFRAME
        } else {
            0
        } | if i == 20 { FLAG_DISCONT } else { 0 };
        let data = payload(i);
        sent_bytes += data.len() as u64;
        tokens.push(
            dev.submit_data_copy(0, &header(v, i, flags), &data)
                .unwrap(),
        );
        // Keep a few buffers in flight at a time.
        while dev.data_in_flight(0).unwrap() > 8 {
            for done in dev
                .wait_data_completions(0, Duration::from_secs(10))
                .unwrap()
            {
                assert_eq!(done.status, Ok(Status::Ok));
            }
        }
    }
    while dev.data_in_flight(0).unwrap() > 0 {
        let done = dev
            .wait_data_completions(0, Duration::from_secs(10))
            .unwrap();
        assert!(!done.is_empty(), "buffers never completed");
        for done in done {
            assert_eq!(done.status, Ok(Status::Ok));
            assert_eq!(done.used_len, 8);
        }
    }
    let mut received = 0u64;
    while received < count {
        let (frame, _) =
            client.wait_for(Duration::from_secs(10), |m| matches!(m, Message::Sample(_)));
        let frame = frame.expect("sample arrives");
        let Message::Sample(s) = frame.msg else {
            unreachable!()
        };
        let i = received;
        let h = header(v, i, 0);
        assert_eq!((s.stream, s.seq), (v, i + 1), "in order, numbered from 1");
        assert_eq!((s.pts, s.dts, s.duration), (h.pts, h.dts, h.duration));
        assert_eq!(
            s.flags.contains(SampleFlags::KEYFRAME),
            i.is_multiple_of(10)
        );
        assert_eq!(s.flags.contains(SampleFlags::DISCONT), i == 20);
        assert!(frame.payload == payload(i), "payload {i} changed");
        received += 1;
    }
    let counters = rig.daemon().counters();
    assert_eq!(counters["payload_bytes"], sent_bytes);
    assert_eq!(
        counters["payload_bytes_copied"], 0,
        "zero copy on the socket uplink"
    );
    assert_eq!(counters["buffers_completed"], count);
}

/// DEV-DATA-3, DEV-PRES-2: EOS drains the stream, the client's EOS report
/// reaches the guest, data after EOS is refused, a flush reopens.
#[test]
fn eos_then_flush() {
    let rig = Rig::start("eos", &[]);
    let (mut client, mut dev) = rig.connected(AckPolicy::Immediate);
    let pres = ok(&mut dev, 0, Request::PresCreate { live: false });
    let a = ok(&mut dev, pres, Request::StreamCreate(audio(1)));
    ok(&mut dev, pres, Request::PresPlay);
    dev.submit_data_copy(1, &header(a, 0, FLAG_KEYFRAME), &[1, 2, 3])
        .unwrap();
    dev.submit_data_copy(1, &header(a, 1, FLAG_EOS), &[])
        .unwrap();
    let done = collect(&mut dev, 1, 2);
    assert!(done.iter().all(|s| *s == Status::Ok), "{done:?}");
    dev.submit_data_copy(1, &header(a, 2, 0), &[4]).unwrap();
    assert_eq!(
        collect(&mut dev, 1, 1),
        vec![Status::BadState],
        "data after EOS"
    );
    let (eos, _) = client.wait_for(
        Duration::from_secs(5),
        |m| matches!(m, Message::Sample(s) if s.flags.contains(SampleFlags::EOS)),
    );
    assert!(eos.is_some(), "the EOS sample reaches the client");
    client.send(&Message::EndOfStream { stream: a });
    let (event, _) = wait_event(&mut dev, Duration::from_secs(5), |e| {
        matches!(e, Event::Eos { .. })
    });
    assert_eq!(event, Some(Event::Eos { stream: a }));
    ok(&mut dev, pres, Request::PresFlush { position_ns: 0 });
    dev.submit_data_copy(1, &header(a, 0, FLAG_KEYFRAME), &[5])
        .unwrap();
    assert_eq!(
        collect(&mut dev, 1, 1),
        vec![Status::Ok],
        "a flush reopens the stream"
    );
    assert_eq!(call(&mut dev, a, Request::StreamDestroy).0, Status::Ok);
}

/// Completion statuses of the next `n` buffers of `txq`.
pub(crate) fn collect(dev: &mut conformance_tests::rig::Driver, txq: u16, n: usize) -> Vec<Status> {
    let mut out = Vec::new();
    while out.len() < n {
        let done = dev
            .wait_data_completions(txq, Duration::from_secs(10))
            .unwrap();
        assert!(
            !done.is_empty(),
            "buffers never completed ({} of {n})",
            out.len()
        );
        out.extend(
            done.into_iter()
                .map(|d| d.status.expect("a readable status")),
        );
    }
    out
}

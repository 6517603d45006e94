//! The client going away mid-stream, and coming back (7.15).

use std::time::Duration;

use conformance_tests::client::AckPolicy;
use conformance_tests::rig::{Rig, data_header, playing_video, wait_event};
use mediaredir_proto::data::{DataHeader, FLAG_KEYFRAME};
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::Message;

use crate::data::collect;

fn header(stream: u32, flags: u32) -> DataHeader {
    data_header(stream, flags, Some(0))
}

/// DEV-CONN-1..3, DEV-DATA-6: every in-flight buffer completes NO_CLIENT
/// when the client vanishes, the guest is told, and a reconnecting client
/// gets the state replayed and the stream resumes at a keyframe.
#[test]
fn client_vanishes_and_returns() {
    let rig = Rig::start("loss", &[]);
    let (client, mut dev) = rig.connected(AckPolicy::Never);
    let (_, v) = playing_video(&mut dev);
    for _ in 0..5 {
        dev.submit_data_copy(0, &header(v, FLAG_KEYFRAME), &[9; 1000])
            .unwrap();
    }
    // All five reach the client, which never acknowledges them.
    for _ in 0..5 {
        let (sample, _) =
            client.wait_for(Duration::from_secs(5), |m| matches!(m, Message::Sample(_)));
        assert!(sample.is_some());
    }
    assert_eq!(dev.data_in_flight(0).unwrap(), 5, "held until acknowledged");
    client.close();
    assert_eq!(collect(&mut dev, 0, 5), vec![Status::NoClient; 5]);
    let (gone, _) = wait_event(&mut dev, Duration::from_secs(20), |e| {
        *e == Event::ClientDisconnected
    });
    assert!(gone.is_some(), "CLIENT_DISCONNECTED");
    dev.submit_data_copy(0, &header(v, FLAG_KEYFRAME), &[1])
        .unwrap();
    assert_eq!(
        collect(&mut dev, 0, 1),
        vec![Status::NoClient],
        "no client: completed at once"
    );

    // A new client: the state is replayed to it.
    let client = rig.client(AckPolicy::Immediate);
    let (replayed, _) = client.wait_for(Duration::from_secs(10), |m| {
        matches!(m, Message::Play { .. })
    });
    assert!(replayed.is_some(), "Play replayed");
    let (connected, _) = wait_event(&mut dev, Duration::from_secs(10), |e| {
        matches!(e, Event::ClientConnected { .. })
    });
    assert!(connected.is_some());
    let (keyframe, _) = wait_event(&mut dev, Duration::from_secs(5), |e| {
        matches!(e, Event::KeyframeNeeded { .. })
    });
    assert_eq!(keyframe, Some(Event::KeyframeNeeded { stream: v }));
    dev.submit_data_copy(0, &header(v, 0), &[2]).unwrap();
    assert_eq!(
        collect(&mut dev, 0, 1),
        vec![Status::Dropped],
        "delta frame before a keyframe"
    );
    dev.submit_data_copy(0, &header(v, FLAG_KEYFRAME), &[3])
        .unwrap();
    assert_eq!(collect(&mut dev, 0, 1), vec![Status::Ok]);
}

//! Feature negotiation, configuration space, reset and reconnection.

use std::time::Duration;

use conformance_tests::rig::{Rig, call, ok, playing_video, video, wait_event};
use mediaredir_proto::control::Request;
use mediaredir_proto::device::{F_CALL, F_CAPTURE, F_CLIPPING, VIRTIO_ID_MEDIA_REDIR, transport};
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;

/// DEV-CFG-1..3, DEV-INIT-1 (features), DEV-RST-2 (DEVICE_STARTED first).
#[test]
fn features_config_and_first_event() {
    assert_ne!(VIRTIO_ID_MEDIA_REDIR, 48);
    let rig = Rig::start("init", &["--num-txqs", "3", "--max-streams", "9"]);
    let mut dev = rig.driver();
    let features = dev.features().unwrap();
    for bit in [
        transport::F_VERSION_1,
        transport::F_EVENT_IDX,
        transport::F_INDIRECT_DESC,
        F_CAPTURE,
        F_CALL,
        F_CLIPPING,
    ] {
        assert_ne!(features & (1 << bit), 0, "feature bit {bit} negotiated");
    }
    let config = dev.config().unwrap();
    assert_ne!(config.generation, 0);
    assert_eq!(config.limits.num_txqs, 3);
    assert_eq!(config.limits.max_streams, 9);
    assert!(!config.client_connected);
    let (event, before) = wait_event(&mut dev, Duration::from_secs(5), |_| true);
    assert!(before.is_empty());
    assert_eq!(event, Some(Event::DeviceStarted));
}

/// DEV-INIT-2: a reset destroys every object; the device serves on.
#[test]
fn reset_destroys_objects_and_the_device_serves_on() {
    let rig = Rig::start("reset", &[]);
    let _client = rig.client(conformance_tests::client::AckPolicy::Immediate);
    let mut dev = rig.driver();
    conformance_tests::rig::wait_client(&mut dev, true);
    let pres = ok(&mut dev, 0, Request::PresCreate { live: false });
    ok(&mut dev, pres, Request::StreamCreate(video(0)));
    let before = dev.config().unwrap().generation;
    dev.reset().unwrap();
    let after = dev.config().unwrap().generation;
    assert_ne!(before, after, "a reset starts a new device instance");
    assert_eq!(call(&mut dev, pres, Request::PresPlay).0, Status::NoEntity);
    ok(&mut dev, 0, Request::PresCreate { live: false });
}

/// A new frontend is served after the first one disconnects (the daemon
/// loops over connections), as a new device instance.
#[test]
fn new_frontend_after_disconnect() {
    let rig = Rig::start("reconnect", &[]);
    let mut first = rig.driver();
    let generation = first.config().unwrap().generation;
    ok(&mut first, 0, Request::PresCreate { live: false });
    drop(first);
    let mut second = rig.driver();
    assert_ne!(second.config().unwrap().generation, generation);
    ok(&mut second, 0, Request::PresCreate { live: false });
    let counters = rig.daemon().counters();
    assert!(counters["control_requests"] >= 2);
}

/// A restarted daemon is a new instance: the frontend reconnects and the
/// device is served again with a new generation.
#[test]
fn daemon_restart_is_a_new_instance() {
    let mut rig = Rig::start("restart", &[]);
    let mut dev = rig.driver();
    let generation = dev.config().unwrap().generation;
    rig.daemon.take().unwrap().kill();
    rig.restart();
    dev.transport_mut().reconnect().unwrap();
    dev.reset().unwrap();
    assert_ne!(dev.config().unwrap().generation, generation);
    ok(&mut dev, 0, Request::PresCreate { live: false });
}

/// DEV-RST-1, DEV-RST-2, 7.16: QEMU reconnects to a restarted daemon
/// without telling the guest and re-delivers the chains the old daemon had
/// taken; the new instance completes them STALE, its first event
/// (DEVICE_STARTED) carries the new generation, and after a reset the driver
/// is served again.
#[test]
fn restarted_daemon_answers_old_chains_stale() {
    use conformance_tests::client::AckPolicy;
    use mediaredir_proto::data::{DataHeader, FLAG_KEYFRAME};

    let mut rig = Rig::start("stale-restart", &[]);
    let client = rig.client(AckPolicy::Never);
    let mut dev = rig.driver();
    conformance_tests::rig::wait_client(&mut dev, true);
    let old_generation = dev.config().unwrap().generation;
    let (first, _) = wait_event(&mut dev, Duration::from_secs(5), |e| {
        *e == Event::DeviceStarted
    });
    assert!(first.is_some());
    let (_, v) = playing_video(&mut dev);
    let header = DataHeader {
        clip: Default::default(),
        stream_id: v,
        generation: 0,
        flags: FLAG_KEYFRAME,
        payload_len: 0,
        pts: Some(0),
        dts: None,
        duration: None,
    };
    for _ in 0..3 {
        dev.submit_data_copy(0, &header, &[7; 512]).unwrap();
    }
    for _ in 0..3 {
        let (sample, _) = client.wait_for(Duration::from_secs(5), |m| {
            matches!(m, mediaredir_proto::wire::Message::Sample(_))
        });
        assert!(sample.is_some(), "held by the old daemon, unacknowledged");
    }
    rig.daemon.take().unwrap().kill();
    client.close();
    rig.restart();
    dev.transport_mut().resume_after_backend_restart().unwrap();
    dev.kick(mediaredir_proto::device::TXQ_BASE).unwrap();
    dev.kick(mediaredir_proto::device::EVENTQ).unwrap();
    let statuses = crate::data::collect(&mut dev, 0, 3);
    assert_eq!(
        statuses,
        vec![Status::Stale; 3],
        "re-delivered chains of the old instance"
    );
    // Events the old instance delivered may still be unread; the first
    // event of another generation is the new instance's DEVICE_STARTED.
    let (event, generation) = loop {
        let (event, generation) = dev
            .next_event(Duration::from_secs(5))
            .unwrap()
            .expect("DEVICE_STARTED");
        if generation != old_generation {
            break (event, generation);
        }
    };
    assert_eq!(event, Event::DeviceStarted);
    dev.reset().unwrap();
    let fresh = dev.config().unwrap().generation;
    assert!(
        fresh != old_generation && fresh != generation,
        "the reset starts yet another instance"
    );
    ok(&mut dev, 0, Request::PresCreate { live: false });
}

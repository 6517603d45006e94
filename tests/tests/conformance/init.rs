//! Feature negotiation, configuration space, reset and reconnection.

use std::time::Duration;

use conformance_tests::rig::{Rig, call, ok, video, wait_event};
use mediaredir_proto::control::Request;
use mediaredir_proto::device::{F_CALL, F_CAPTURE, VIRTIO_ID_MEDIA_REDIR, transport};
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
    ] {
        assert_ne!(features & (1 << bit), 0, "feature bit {bit} negotiated");
    }
    for bit in [F_CAPTURE, F_CALL] {
        assert_eq!(
            features & (1 << bit),
            0,
            "feature bit {bit} is not offered yet"
        );
    }
    let config = dev.config().unwrap();
    assert_ne!(config.generation, 0);
    assert_eq!(config.num_txqs, 3);
    assert_eq!(config.max_streams, 9);
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

//! `mediaredirsink` when the client leaves as soon as the stream has ended,
//! as `media-client --once` does: the sink's end of stream is the
//! pipeline's, not an error, although the client's `CLIENT_DISCONNECTED`
//! follows its `EOS` closely and the buffer it did not acknowledge
//! completes `NO_CLIENT` (spec 7.15, DRV-CONN-3).

use std::time::Duration;

use conformance_tests::client::{AckPolicy, TestClient, decode_everything};
use conformance_tests::daemon::DaemonProcess;
use conformance_tests::media::opus_ogg;
use conformance_tests::rig::daemon_binary;
use conformance_tests::scratch::Scratch;
use gstreamer as gst;
use gstreamer::prelude::*;
use guest_driver_shim::broker::{BrokerOptions, BrokerThread};
use guest_driver_shim::{DriverOptions, MediaDevice, VhostUserOptions, VhostUserTransport};
use mediaredir_player::MediaRedir;

#[test]
fn a_client_leaving_right_after_the_end_of_stream_is_a_normal_end() {
    gst::init().expect("initialise GStreamer");
    gstmediaredir::plugin_register_static().expect("register the mediaredir plugin");
    let scratch = Scratch::new("sink-client-leaves");
    let clip = scratch.path("opus.ogg");
    opus_ogg(&clip, 50);
    let vhost = scratch.path("vhost.sock");
    let uplink = scratch.path("uplink.sock");
    let daemon = DaemonProcess::start(
        &daemon_binary(),
        &vhost,
        &["--uplink", &format!("unix:{}", uplink.display())],
    );
    let broker_socket = scratch.path("broker.sock");
    let _broker = BrokerThread::spawn(&broker_socket, BrokerOptions::default(), move || {
        let transport = VhostUserTransport::connect_new(&vhost, VhostUserOptions::default())?;
        Ok(MediaDevice::new(transport, DriverOptions::default())?)
    })
    .expect("start the broker");
    let client = TestClient::connect(&uplink, decode_everything(), AckPolicy::AllButEos);
    // The sink's caps are what the connected client decodes: wait until the
    // device reports the client, or parse::launch finds no caps to link.
    MediaRedir::open(&broker_socket)
        .expect("open the broker")
        .wait_client(Duration::from_secs(20))
        .expect("the client is connected");
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! oggdemux ! opusparse ! mediaredirsink name=sink socket={}",
        clip.display(),
        broker_socket.display()
    ))
    .expect("build the pipeline");
    pipeline
        .set_state(gst::State::Playing)
        .expect("play the pipeline");
    // The end of the stream, and the client leaves at once.
    if client.end_and_leave(Duration::from_secs(60)).is_none() {
        let _ = pipeline.set_state(gst::State::Null);
        panic!("no EOS sample reached the client");
    }
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let end = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    daemon.stop();
    match end.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(e)) => {
            panic!("the sink failed: {} ({:?})", e.error(), e.debug())
        }
        _ => panic!("no end of stream within 60 s"),
    }
}

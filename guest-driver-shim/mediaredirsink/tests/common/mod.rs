//! What the playbin tests share: the test clips' sources, the daemon with
//! an in-process broker, and `verify-clip` on the daemon's report.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conformance_tests::daemon::DaemonProcess;
use conformance_tests::media::gst_launch;
use conformance_tests::rig::{daemon_binary, workspace_binary};
use conformance_tests::scratch::Scratch;
use gstreamer as gst;
use gstreamer::prelude::*;
use guest_driver_shim::broker::{BrokerOptions, BrokerThread};
use guest_driver_shim::{DriverOptions, MediaDevice, VhostUserOptions, VhostUserTransport};
use mediaredir_player::MediaRedir;

/// 1 s of 320x240 test video at 30 fps.
pub(crate) const VIDEO: &str = "videotestsrc num-buffers=30 pattern=ball ! \
                     video/x-raw,format=I420,width=320,height=240,framerate=30/1";
/// 1 s of 48 kHz stereo test audio.
pub(crate) const AUDIO: &str = "audiotestsrc num-buffers=50 samplesperbuffer=960 ! \
                     audio/x-raw,rate=48000,channels=2";

pub(crate) fn init() {
    // Once per process: the tests run in parallel threads.
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        gst::init().expect("initialise GStreamer");
        gstmediaredir::plugin_register_static().expect("register the mediaredir plugin");
    });
}

pub(crate) fn generate(scratch: &Scratch, name: &str, pipeline: &str) -> PathBuf {
    let out = scratch.path(name);
    let text = pipeline
        .replace("{V}", VIDEO)
        .replace("{A}", AUDIO)
        .replace("{out}", &out.display().to_string());
    gst_launch(&text);
    out
}

/// Sets `pipeline` to PLAYING and waits (60 s at most) for its EOS or
/// error; leaves it in its state.
pub(crate) fn play_to_end(pipeline: &gst::Element) -> Result<(), String> {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("set to PLAYING: {e}"))?;
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .ok_or_else(|| "no EOS within 60 s".to_owned())?;
    match msg.view() {
        gst::MessageView::Error(e) => Err(format!(
            "error from {:?}: {} ({:?})",
            e.src().map(|s| s.path_string()),
            e.error(),
            e.debug()
        )),
        _ => Ok(()),
    }
}

/// Makes `name` with `ffmpeg ARGS OUT` (the tool users' files come from).
pub(crate) fn ffmpeg(scratch: &Scratch, name: &str, args: &str) -> PathBuf {
    let out = scratch.path(name);
    let line = format!("ffmpeg {args} {}", out.display());
    let output = test_support::clips::generator_command(&line)
        .stdin(Stdio::null())
        .output()
        .expect("run ffmpeg (`cargo xtask setup` installs it)");
    assert!(
        output.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// The daemon, and a broker for it in this process.
pub(crate) struct Device {
    pub(crate) daemon: Option<DaemonProcess>,
    _broker: BrokerThread,
    pub(crate) broker_socket: PathBuf,
}

impl Device {
    pub(crate) fn start(scratch: &Scratch, tag: &str, uplink: &[&str]) -> Device {
        let vhost = scratch.path(&format!("{tag}.vhost.sock"));
        let daemon = DaemonProcess::start(&daemon_binary(), &vhost, uplink);
        let broker_socket = scratch.path(&format!("{tag}.broker.sock"));
        let broker = BrokerThread::spawn(&broker_socket, BrokerOptions::default(), move || {
            let transport = VhostUserTransport::connect_new(&vhost, VhostUserOptions::default())?;
            Ok(MediaDevice::new(transport, DriverOptions::default())?)
        })
        .expect("start the broker");
        Device {
            daemon: Some(daemon),
            _broker: broker,
            broker_socket,
        }
    }

    /// A device whose daemon's client decodes everything and writes a
    /// verification report (returned) when stopped; the client is there.
    pub(crate) fn start_verifying(scratch: &Scratch, tag: &str) -> (Device, PathBuf) {
        let report = scratch.path(&format!("{tag}.report"));
        let report_arg = report.display().to_string();
        let device = Device::start(
            scratch,
            tag,
            &["--uplink", "local:verify", "--verify-report", &report_arg],
        );
        device.wait_client(true);
        (device, report)
    }

    /// Waits until the device reports a client (or, `false`, none).
    pub(crate) fn wait_client(&self, connected: bool) {
        let mut redir = MediaRedir::open(&self.broker_socket).expect("open the broker");
        let deadline = Instant::now() + Duration::from_secs(20);
        while redir.query_caps().expect("GET_CAPS").client_connected != connected {
            assert!(
                Instant::now() < deadline,
                "client_connected never {connected}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `verify-clip` on the daemon's `report` of `clip`: bit-exact, with
/// `streams` streams.
pub(crate) fn verify(clip: &Path, report: &Path, streams: usize) -> Result<(), String> {
    let verify = Command::new(workspace_binary(
        "VERIFY_CLIP",
        "media-client",
        "verify-clip",
    ))
    .arg("--input")
    .arg(clip)
    .arg("--report")
    .arg(report)
    .stdin(Stdio::null())
    .output()
    .expect("run verify-clip");
    let text = String::from_utf8_lossy(&verify.stdout).into_owned();
    let json = text.lines().last().unwrap_or_default();
    if !verify.status.success()
        || !json.contains("\"bit_exact\":true")
        || !json.contains(&format!("\"streams\":{streams},"))
    {
        return Err(format!(
            "verify-clip exited {}: {json} {}",
            verify.status,
            String::from_utf8_lossy(&verify.stderr)
        ));
    }
    Ok(())
}

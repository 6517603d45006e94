//! A test rig: the daemon binary on a fresh socket with a socket uplink,
//! the guest driver over vhost-user, and helpers to drive the device.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use guest_driver_shim::{DriverOptions, MediaDevice, VhostUserOptions, VhostUserTransport};
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::{Direction, Request, ResponseHeader, StreamFormat};
use mediaredir_proto::event::Event;
use mediaredir_proto::response::ResponseBody;
use mediaredir_proto::status::Status;

use crate::client::{AckPolicy, TestClient, decode_everything};
use crate::daemon::DaemonProcess;
use crate::scratch::Scratch;

/// The driver type the tests use.
pub type Driver = MediaDevice<VhostUserTransport>;

/// A binary of this workspace: `$env` when set, else `bin` of `package` next
/// to the test's target directory, built on demand (once per process).
pub fn workspace_binary(env: &str, package: &str, bin: &str) -> PathBuf {
    workspace_binary_with_features(env, package, bin, &[])
}

/// [`workspace_binary`], built with `features` of `package` on top of its
/// default ones.
pub fn workspace_binary_with_features(
    env: &str,
    package: &str,
    bin: &str,
    features: &[&str],
) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, path)) = built.iter().find(|(name, _)| name == bin) {
        return path.clone();
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<bin>
    let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", package, "--bin", bin]);
    if !features.is_empty() {
        build.args(["--features", &features.join(",")]);
    }
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "building {bin} failed");
    let path = profile_dir.join(bin);
    built.push((bin.to_string(), path.clone()));
    path
}

/// The daemon binary: `$VDM_DAEMON`, or `vhost-user-mediaredir` built on
/// demand with the `verify` feature (the tests' `--uplink local:verify`).
pub fn daemon_binary() -> PathBuf {
    workspace_binary_with_features(
        "VDM_DAEMON",
        "vhost-user-mediaredir",
        "vhost-user-mediaredir",
        &["verify"],
    )
}

/// A daemon with a socket uplink in a scratch directory.
#[derive(Debug)]
pub struct Rig {
    /// The daemon process.
    pub daemon: Option<DaemonProcess>,
    /// Where its uplink listens.
    pub uplink: PathBuf,
    /// Its vhost-user socket.
    pub socket: PathBuf,
    extra: Vec<String>,
    scratch: Scratch,
}

impl Rig {
    /// Starts a daemon with `extra` arguments.
    pub fn start(tag: &str, extra: &[&str]) -> Rig {
        let scratch = Scratch::new(tag);
        let socket = scratch.path("vhost.sock");
        let uplink = scratch.path("uplink.sock");
        let mut rig = Rig {
            daemon: None,
            uplink,
            socket,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            scratch,
        };
        rig.restart();
        rig
    }

    /// Starts (again) the daemon process on the same sockets.
    pub fn restart(&mut self) {
        let uplink = format!("unix:{}", self.uplink.display());
        let mut args: Vec<&str> = vec!["--uplink", &uplink];
        args.extend(self.extra.iter().map(String::as_str));
        self.daemon = Some(DaemonProcess::start(&daemon_binary(), &self.socket, &args));
    }

    /// The daemon.
    pub fn daemon(&self) -> &DaemonProcess {
        self.daemon.as_ref().expect("daemon running")
    }

    /// A scratch path.
    pub fn path(&self, name: &str) -> PathBuf {
        self.scratch.path(name)
    }

    /// A driver connected over vhost-user and initialised.
    pub fn driver(&self) -> Driver {
        self.driver_with(DriverOptions::default())
    }

    /// A driver with options.
    pub fn driver_with(&self, options: DriverOptions) -> Driver {
        let transport = VhostUserTransport::connect_new(&self.socket, VhostUserOptions::default())
            .expect("connect vhost-user");
        MediaDevice::new(transport, options).expect("initialise the device")
    }

    /// A client on the uplink that decodes everything.
    pub fn client(&self, acks: AckPolicy) -> TestClient {
        TestClient::connect(&self.uplink, decode_everything(), acks)
    }
}

/// Sends a request and returns the status, id and body.
pub fn call(dev: &mut Driver, target: u32, request: Request) -> (Status, u32, ResponseBody) {
    let (hdr, body): (ResponseHeader, ResponseBody) = dev
        .control(request, target)
        .expect("control request answered");
    (hdr.status, hdr.id, body)
}

/// Sends a request that must succeed; returns the id.
pub fn ok(dev: &mut Driver, target: u32, request: Request) -> u32 {
    let what = format!("{request:?}");
    let (status, id, _) = call(dev, target, request);
    assert_eq!(status, Status::Ok, "{what}");
    id
}

/// An H.264 (Annex-B) video format on `txq`.
pub fn video(txq: u32) -> StreamFormat {
    StreamFormat {
        codec: Codec::H264,
        direction: Direction::Playback,
        txq,
        source_id: 0,
        width: 642,
        height: 362,
        fps_num: 30,
        fps_den: 1,
        sample_rate: 0,
        channels: 0,
        bitrate: 0,
        codec_data: vec![],
    }
}

/// An Opus stereo format on `txq`.
pub fn audio(txq: u32) -> StreamFormat {
    StreamFormat {
        codec: Codec::Opus,
        direction: Direction::Playback,
        txq,
        source_id: 0,
        width: 0,
        height: 0,
        fps_num: 0,
        fps_den: 0,
        sample_rate: 48000,
        channels: 2,
        bitrate: 0,
        codec_data: vec![],
    }
}

/// Waits for the client to be known to the device (GET_CAPS says so).
pub fn wait_client(dev: &mut Driver, connected: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let (Status::Ok, _, ResponseBody::Caps(caps)) = call(dev, 0, Request::GetCaps)
            && caps.client_connected == connected
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "client_connected never became {connected}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for an event matching `pred`, returning it; events before it are
/// returned too.
pub fn wait_event(
    dev: &mut Driver,
    timeout: Duration,
    pred: impl Fn(&Event) -> bool,
) -> (Option<Event>, Vec<Event>) {
    let deadline = Instant::now() + timeout;
    let mut before = Vec::new();
    while let Ok(Some((event, _))) =
        dev.next_event(deadline.saturating_duration_since(Instant::now()))
    {
        if pred(&event) {
            return (Some(event), before);
        }
        before.push(event);
    }
    (None, before)
}

//! A test rig: the daemon binary on a fresh socket with a socket uplink,
//! the guest driver over vhost-user, and helpers to drive the device.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use guest_driver_shim::broker::{BrokerOptions, BrokerThread};
use guest_driver_shim::{DriverOptions, MediaDevice, VhostUserOptions, VhostUserTransport};
use mediaredir_player::MediaRedir;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::{Request, ResponseHeader, StreamFormat};
use mediaredir_proto::data::DataHeader;
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
    /// Where the daemon's log goes (`None`: the test's stderr).
    log: Option<PathBuf>,
    scratch: Scratch,
}

impl Rig {
    /// Starts a daemon with `extra` arguments.
    pub fn start(tag: &str, extra: &[&str]) -> Rig {
        Rig::start_with(tag, extra, false)
    }

    /// [`Rig::start`], with the daemon's log in a file ([`Rig::log`]), for
    /// a test that checks what the daemon says.
    pub fn start_logged(tag: &str, extra: &[&str]) -> Rig {
        Rig::start_with(tag, extra, true)
    }

    fn start_with(tag: &str, extra: &[&str], logged: bool) -> Rig {
        let scratch = Scratch::new(tag);
        let log = logged.then(|| scratch.path("daemon.log"));
        let socket = scratch.path("vhost.sock");
        let uplink = scratch.path("uplink.sock");
        let mut rig = Rig {
            daemon: None,
            uplink,
            socket,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            log,
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
        self.daemon = Some(DaemonProcess::start_logging(
            &daemon_binary(),
            &self.socket,
            &args,
            self.log.as_deref(),
        ));
    }

    /// What the daemon logged so far (a rig from [`Rig::start_logged`]).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
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

    /// A client on the uplink acknowledging by `acks`, and a driver that
    /// sees it connected.
    pub fn connected(&self, acks: AckPolicy) -> (TestClient, Driver) {
        let client = self.client(acks);
        let mut dev = self.driver();
        wait_client(&mut dev, true);
        (client, dev)
    }

    /// A guest broker in this process on the daemon's vhost-user socket,
    /// serving players on `broker.sock` in the scratch directory; the
    /// socket's path with it.
    pub fn broker(&self) -> (BrokerThread, PathBuf) {
        let socket = self.path("broker.sock");
        let vhost = self.socket.clone();
        let broker = BrokerThread::spawn(&socket, BrokerOptions::default(), move || {
            let transport = VhostUserTransport::connect_new(&vhost, VhostUserOptions::default())?;
            Ok(MediaDevice::new(transport, DriverOptions::default())?)
        })
        .expect("broker starts");
        (broker, socket)
    }
}

/// A presentation with an H.264 stream on txq 0 ([`video`]), playing: the
/// presentation's and the stream's ids.
pub fn playing_video(dev: &mut Driver) -> (u32, u32) {
    let pres = ok(dev, 0, Request::PresCreate { live: false });
    let stream = ok(dev, pres, Request::StreamCreate(video(0)));
    ok(dev, pres, Request::PresPlay);
    (pres, stream)
}

/// A player on the broker at `socket`, once the device has a client.
pub fn connected_player(socket: &Path) -> MediaRedir {
    let mut p = MediaRedir::open(socket).expect("player connects");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.query_caps().expect("caps").client_connected {
        assert!(Instant::now() < deadline, "no client connected");
        std::thread::sleep(Duration::from_millis(20));
    }
    p
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
    try_ok(dev, target, request).unwrap_or_else(|e| panic!("{e}"))
}

/// Sends a request; its id, or the request and the status it failed with.
pub fn try_ok(dev: &mut Driver, target: u32, request: Request) -> Result<u32, String> {
    let what = format!("{request:?}");
    match call(dev, target, request) {
        (Status::Ok, id, _) => Ok(id),
        (status, _, _) => Err(format!("{what}: {status:?}")),
    }
}

/// An H.264 (Annex-B) 30 fps video format of `width` x `height` on `txq`.
pub fn h264(txq: u32, width: u32, height: u32) -> StreamFormat {
    StreamFormat::video(Codec::H264, txq, width, height, 30, 1)
}

/// An H.264 (Annex-B) video format on `txq` (the size of the tests' clip).
pub fn video(txq: u32) -> StreamFormat {
    h264(txq, 642, 362)
}

/// An Opus stereo format on `txq`.
pub fn audio(txq: u32) -> StreamFormat {
    StreamFormat::audio(Codec::Opus, txq, 48000, 2)
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

/// Waits for the `CALL_ENDED` event and checks it ends `session` with
/// `status`.
pub fn expect_call_ended(dev: &mut Driver, timeout: Duration, session: u32, status: Status) {
    let (ended, _) = wait_event(dev, timeout, |e| matches!(e, Event::CallEnded { .. }));
    assert_eq!(ended, Some(Event::CallEnded { session, status }));
}

/// Waits for a `CALL_DTMF` event and checks it is `event` of `session`.
pub fn expect_call_dtmf(dev: &mut Driver, timeout: Duration, session: u32, event: u64) {
    let (dtmf, _) = wait_event(dev, timeout, |e| matches!(e, Event::CallDtmf { .. }));
    assert_eq!(dtmf, Some(Event::CallDtmf { session, event }));
}

/// The data header of a sample of `stream` with `flags` at `pts` (no dts
/// or duration: the fields a test sets are filled in over it).
pub fn data_header(stream: u32, flags: u32, pts: Option<u64>) -> DataHeader {
    DataHeader {
        clip: Default::default(),
        stream_id: stream,
        generation: 0,
        flags,
        payload_len: 0,
        pts,
        dts: None,
        duration: None,
    }
}

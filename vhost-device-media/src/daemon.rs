//! The daemon's life: build the uplink and the device core once, then serve
//! one vhost-user frontend after another on the socket, so a restarted QEMU
//! (or a QEMU that reconnects after a daemon restart) finds the device again.

use std::path::PathBuf;
use std::sync::Arc;

use crate::core::DeviceCore;
use crate::counters::Counters;
use crate::limits::{LimitError, Limits};
use crate::uplink::null::NullUplink;
use crate::uplink::socket::{ListenAddr, SocketUplink, SocketUplinkError};
use crate::uplink::tls::TlsFiles;
use crate::uplink::{ClientEvents, Uplink};
use crate::vhost_user::{Frontends, ServeError};

/// Sinks of the in-process engine of the local uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalOutput {
    /// Audio on the sound card; video decoded and discarded on the clock
    /// (the engine opens no window: only the viewer shows video).
    Auto,
    /// Sinks that discard, on the clock (no sound either).
    Headless,
    /// Hash every decoded frame and sample (tests, demo); only a build
    /// with the `verify` feature runs it.
    Verify,
}

/// Which uplink to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkSpec {
    /// No client ever (players fall back to local decoding).
    Null,
    /// The client engine in this process.
    Local(LocalOutput),
    /// The wire protocol on a listening socket.
    Socket(ListenAddr),
}

impl UplinkSpec {
    /// Parses `null`, `local[:headless|:verify]`, `unix:PATH`,
    /// `tcp:HOST:PORT` (plain TCP: loopback only) or `spice:OPTIONS`.
    pub fn parse(text: &str) -> Result<UplinkSpec, SocketUplinkError> {
        UplinkSpec::parse_with_tls(text, None)
    }

    /// Parses `null`, `unix:PATH` or `tcp:HOST:PORT`; with `tls`, the
    /// uplink must be `tcp:` and speaks TLS with client certificates.
    pub fn parse_with_tls(
        text: &str,
        tls: Option<TlsFiles>,
    ) -> Result<UplinkSpec, SocketUplinkError> {
        let local = match text {
            "local" => Some(LocalOutput::Auto),
            "local:headless" => Some(LocalOutput::Headless),
            "local:verify" => Some(LocalOutput::Verify),
            _ => None,
        };
        match text {
            "null" | "local" | "local:headless" | "local:verify" if tls.is_some() => {
                Err(SocketUplinkError::TlsNeedsTcp(text.into()))
            }
            "null" => Ok(UplinkSpec::Null),
            _ if local.is_some() => Ok(UplinkSpec::Local(local.unwrap_or(LocalOutput::Auto))),
            other => ListenAddr::parse_with_tls(other, tls).map(UplinkSpec::Socket),
        }
    }
}

/// Everything the daemon needs to run.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The vhost-user socket QEMU connects to.
    pub socket_path: PathBuf,
    /// Where media goes.
    pub uplink: UplinkSpec,
    /// Limits.
    pub limits: Limits,
}

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A limit is impossible.
    #[error(transparent)]
    Limits(#[from] LimitError),
    /// The uplink could not start.
    #[error(transparent)]
    Uplink(#[from] SocketUplinkError),
    /// The backend could not be created.
    #[error("cannot create the backend: {0}")]
    Backend(std::io::Error),
    /// vhost-user failed.
    #[error("vhost-user daemon: {0}")]
    VhostUser(String),
    /// The in-process engine could not start, or was left out of the build.
    #[error("local uplink: {0}")]
    Local(String),
}

impl From<ServeError> for DaemonError {
    fn from(err: ServeError) -> DaemonError {
        match err {
            ServeError::Backend(e) => DaemonError::Backend(e),
            ServeError::VhostUser(e) => DaemonError::VhostUser(e),
        }
    }
}

/// A running daemon's handles (for the binary and for in-process tests).
pub struct Daemon {
    config: DaemonConfig,
    core: Arc<DeviceCore>,
    counters: Arc<Counters>,
    local: Option<Arc<LocalEngine>>,
}

impl Daemon {
    /// Starts the uplink and builds the device core.
    pub fn new(config: DaemonConfig) -> Result<Daemon, DaemonError> {
        config.limits.validate()?;
        let counters = Arc::new(Counters::default());
        let mut local = None;
        let (uplink, socket): (Arc<dyn Uplink>, Option<Arc<SocketUplink>>) = match &config.uplink {
            UplinkSpec::Null => (Arc::new(NullUplink), None),
            UplinkSpec::Local(output) => {
                let engine = local_uplink(*output, Arc::clone(&counters))?;
                local = Some(Arc::clone(&engine));
                (engine, None)
            }
            UplinkSpec::Socket(addr) => {
                let session =
                    u64::from(crate::core::new_generation(0)) << 32 | u64::from(std::process::id());
                let socket = Arc::new(SocketUplink::listen(
                    addr.clone(),
                    Arc::clone(&counters),
                    session,
                )?);
                (socket.clone(), Some(socket))
            }
        };
        let core = DeviceCore::new(config.limits, uplink, Arc::clone(&counters));
        let events: Arc<dyn ClientEvents> = core.clone();
        if let Some(socket) = socket {
            socket.set_events(Arc::downgrade(&events));
        }
        if let Some(local) = &local {
            local.connect(Arc::downgrade(&events));
        }
        Ok(Daemon {
            config,
            core,
            counters,
            local,
        })
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// A function that returns the in-process engine's verification report
    /// (the text of `VerificationReport::to_text`), or `None` when the
    /// uplink is not `local:verify`. It can be called from any thread
    /// (the signal handler writes the report with it).
    pub fn verification_source(&self) -> impl Fn() -> Option<String> + Send + 'static {
        let local = self.local.clone();
        move || local.as_ref().and_then(|l| verification_text(l))
    }

    /// Serves frontends one after another, forever (until an error). The
    /// listening socket is bound once, so a frontend that connects while the
    /// previous connection winds down waits in the backlog instead of
    /// finding no listener.
    pub fn run(&self) -> Result<(), DaemonError> {
        let mut frontends = Frontends::bind(&self.config.socket_path)?;
        loop {
            self.serve_one(&mut frontends)?;
            log::info!(
                "frontend disconnected; {}",
                self.counters.snapshot().to_line()
            );
            self.core.set_event_sink(None);
            self.core.new_instance();
        }
    }

    /// Serves one frontend connection from `frontends` until it ends.
    pub fn serve_one(&self, frontends: &mut Frontends) -> Result<(), DaemonError> {
        log::info!(
            "waiting for a vhost-user frontend on {}",
            self.config.socket_path.display()
        );
        Ok(frontends.serve_one(&self.core, self.config.limits)?)
    }
}

#[cfg(feature = "local")]
type LocalEngine = crate::uplink::local::LocalUplink;

#[cfg(feature = "verify")]
fn verification_text(local: &LocalEngine) -> Option<String> {
    local.engine().verification().map(|r| r.to_text())
}

/// Without the `verify` feature the engine hashes nothing.
#[cfg(all(feature = "local", not(feature = "verify")))]
fn verification_text(_local: &LocalEngine) -> Option<String> {
    None
}

#[cfg(feature = "local")]
fn local_uplink(
    output: LocalOutput,
    counters: Arc<Counters>,
) -> Result<Arc<LocalEngine>, DaemonError> {
    use client_engine::OutputMode;
    let mode = match output {
        LocalOutput::Auto => OutputMode::Auto,
        LocalOutput::Headless => OutputMode::Headless,
        #[cfg(feature = "verify")]
        LocalOutput::Verify => OutputMode::Verify,
        #[cfg(not(feature = "verify"))]
        LocalOutput::Verify => {
            return Err(DaemonError::Local(
                "local:verify needs a daemon built with the `verify` feature \
                 (cargo build -p vhost-user-mediaredir --features verify)"
                    .into(),
            ));
        }
    };
    LocalEngine::new(mode, counters)
        .map(Arc::new)
        .map_err(|e| DaemonError::Local(e.to_string()))
}

/// A build without the `local` feature has no engine to run: the type has
/// no values, so the code paths that would use one cannot be reached.
#[cfg(not(feature = "local"))]
enum LocalEngine {}

#[cfg(not(feature = "local"))]
fn verification_text(local: &LocalEngine) -> Option<String> {
    match *local {}
}

#[cfg(not(feature = "local"))]
impl LocalEngine {
    fn connect(&self, _events: std::sync::Weak<dyn ClientEvents>) {
        match *self {}
    }
}

#[cfg(not(feature = "local"))]
impl Uplink for LocalEngine {
    fn send(&self, _msg: mediaredir_proto::wire::Message) {
        match *self {}
    }
    fn send_sample(
        &self,
        _sample: mediaredir_proto::wire::SampleHeader,
        _buffer: crate::guest_buffer::GuestBuffer,
    ) {
        match *self {}
    }
    fn cancel(&self, _stream: u32, _status: mediaredir_proto::status::Status) {
        match *self {}
    }
    fn forget(&self, _stream: u32) {
        match *self {}
    }
    fn shutdown(&self) {
        match *self {}
    }
}

#[cfg(not(feature = "local"))]
fn local_uplink(
    _output: LocalOutput,
    _counters: Arc<Counters>,
) -> Result<Arc<LocalEngine>, DaemonError> {
    Err(DaemonError::Local(
        "this build has no local uplink (built without the `local` feature)".into(),
    ))
}

//! The daemon's life: build the uplink and the device core once, then serve
//! one vhost-user frontend after another on the socket, so a restarted QEMU
//! (or a QEMU that reconnects after a daemon restart) finds the device again.

use std::path::PathBuf;
use std::sync::Arc;

use vhost::vhost_user::Listener;
use vhost_user_backend::VhostUserDaemon;
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;

use crate::core::DeviceCore;
use crate::counters::Counters;
use crate::limits::{LimitError, Limits};
use crate::uplink::null::NullUplink;
use crate::uplink::socket::{ListenAddr, SocketUplink, SocketUplinkError};
use crate::uplink::tls::TlsFiles;
use crate::uplink::{ClientEvents, Uplink};
use crate::vhu_backend::MediaBackend;

/// Which uplink to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkSpec {
    /// No client ever (players fall back to local decoding).
    Null,
    /// The wire protocol on a listening socket.
    Socket(ListenAddr),
}

impl UplinkSpec {
    /// Parses `null`, `unix:PATH` or `tcp:HOST:PORT` (plain TCP: loopback
    /// only).
    pub fn parse(text: &str) -> Result<UplinkSpec, SocketUplinkError> {
        UplinkSpec::parse_with_tls(text, None)
    }

    /// Parses `null`, `unix:PATH` or `tcp:HOST:PORT`; with `tls`, the
    /// uplink must be `tcp:` and speaks TLS with client certificates.
    pub fn parse_with_tls(
        text: &str,
        tls: Option<TlsFiles>,
    ) -> Result<UplinkSpec, SocketUplinkError> {
        match text {
            "null" if tls.is_some() => Err(SocketUplinkError::TlsNeedsTcp(text.into())),
            "null" => Ok(UplinkSpec::Null),
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
}

/// A running daemon's handles (for the binary and for in-process tests).
pub struct Daemon {
    config: DaemonConfig,
    core: Arc<DeviceCore>,
    counters: Arc<Counters>,
}

impl Daemon {
    /// Starts the uplink and builds the device core.
    pub fn new(config: DaemonConfig) -> Result<Daemon, DaemonError> {
        config.limits.validate()?;
        let counters = Arc::new(Counters::default());
        let (uplink, socket): (Arc<dyn Uplink>, Option<Arc<SocketUplink>>) = match &config.uplink {
            UplinkSpec::Null => (Arc::new(NullUplink), None),
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
        let core = Arc::new(DeviceCore::new(
            config.limits,
            uplink,
            Arc::clone(&counters),
        ));
        if let Some(socket) = socket {
            let events: Arc<dyn ClientEvents> = core.clone();
            socket.set_events(Arc::downgrade(&events));
        }
        Ok(Daemon {
            config,
            core,
            counters,
        })
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Serves frontends one after another, forever (until an error). The
    /// listening socket is bound once, so a frontend that connects while the
    /// previous connection winds down waits in the backlog instead of
    /// finding no listener.
    pub fn run(&self) -> Result<(), DaemonError> {
        let mut listener = Listener::new(&self.config.socket_path, true).map_err(|e| {
            DaemonError::VhostUser(format!("{}: {e}", self.config.socket_path.display()))
        })?;
        loop {
            self.serve_one(&mut listener)?;
            log::info!(
                "frontend disconnected; {}",
                self.counters.snapshot().to_line()
            );
            self.core.set_event_sink(None);
            self.core.new_instance();
        }
    }

    /// Serves one frontend connection from `listener` until it ends.
    pub fn serve_one(&self, listener: &mut Listener) -> Result<(), DaemonError> {
        let backend = Arc::new(
            MediaBackend::new(Arc::clone(&self.core), self.config.limits)
                .map_err(DaemonError::Backend)?,
        );
        let mut daemon = VhostUserDaemon::new(
            "vhost-device-media".to_string(),
            Arc::clone(&backend),
            GuestMemoryAtomic::new(GuestMemoryMmap::new()),
        )
        .map_err(|e| DaemonError::VhostUser(e.to_string()))?;
        for handler in daemon.get_epoll_handlers() {
            use std::os::fd::AsRawFd;
            handler
                .register_listener(
                    backend.wake_fd().as_raw_fd(),
                    EventSet::IN,
                    backend.wake_event_id(),
                )
                .map_err(|e| DaemonError::VhostUser(e.to_string()))?;
        }
        log::info!(
            "waiting for a vhost-user frontend on {}",
            self.config.socket_path.display()
        );
        daemon
            .start(listener)
            .map_err(|e| DaemonError::VhostUser(e.to_string()))?;
        if let Err(err) = daemon.wait() {
            // A frontend that goes away mid-message is an ordinary end.
            log::info!("frontend connection ended: {err}");
        }
        // Dropping the daemon stops and joins its worker threads.
        Ok(())
    }
}

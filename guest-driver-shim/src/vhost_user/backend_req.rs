//! The backend request channel: a socket pair whose other end the daemon
//! gets with `SET_BACKEND_REQ_FD`, served by a small thread that records
//! configuration-change notifications
//! (`VHOST_USER_BACKEND_CONFIG_CHANGE_MSG`) for
//! [`Transport::config_changed`](crate::transport::Transport::config_changed).

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use vhost::vhost_user::{
    Frontend, FrontendReqHandler, VhostUserFrontend, VhostUserFrontendReqHandler,
};

use super::poll::poll_readable;
use crate::transport::TransportError;

/// Sets a flag when the daemon announces a configuration change.
#[derive(Debug, Default)]
struct ConfigFlag {
    changed: AtomicBool,
}

impl VhostUserFrontendReqHandler for ConfigFlag {
    fn handle_config_change(&self) -> std::io::Result<u64> {
        log::debug!("vhost-user: configuration change announced");
        self.changed.store(true, Ordering::Release);
        Ok(0)
    }
}

/// The thread serving the backend request channel.
#[derive(Debug)]
pub(super) struct ConfigWatcher {
    flag: Arc<ConfigFlag>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}
impl ConfigWatcher {
    /// Creates the channel, hands its other end to the daemon, and starts
    /// serving it.
    pub(super) fn start(
        frontend: &mut Frontend,
        reply_ack: bool,
    ) -> Result<ConfigWatcher, TransportError> {
        let flag = Arc::new(ConfigFlag::default());
        let mut handler = FrontendReqHandler::new(Arc::clone(&flag)).map_err(|source| {
            TransportError::VhostUser {
                op: "backend request channel",
                source: vhost::Error::VhostUserProtocol(source),
            }
        })?;
        handler.set_reply_ack_flag(reply_ack);
        let tx: RawFd = handler.get_tx_raw_fd();
        frontend
            .set_backend_request_fd(&tx)
            .map_err(|source| TransportError::VhostUser {
                op: "SET_BACKEND_REQ_FD",
                source,
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("vhost-user-backend-req".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Acquire) {
                    match poll_readable(handler.as_raw_fd(), Duration::from_millis(50)) {
                        Ok(false) => continue,
                        Ok(true) => {}
                        Err(e) => {
                            log::error!("vhost-user backend channel: poll: {e}");
                            return;
                        }
                    }
                    if let Err(e) = handler.handle_request() {
                        log::debug!("vhost-user backend channel closed: {e}");
                        return;
                    }
                }
            })
            .map_err(|source| TransportError::Io {
                op: "spawn the backend request thread",
                source,
            })?;
        Ok(ConfigWatcher {
            flag,
            stop,
            thread: Some(thread),
        })
    }

    /// Whether a configuration change was announced since the last call.
    pub(super) fn take_changed(&self) -> bool {
        self.flag.changed.swap(false, Ordering::AcqRel)
    }
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

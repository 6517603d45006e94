//! A broker on a thread of its own, for a player that brings its own
//! device (on a host test rig, `redir-play --vhost-user`) and for tests.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Broker, BrokerError, BrokerOptions};
use crate::driver::MediaDevice;
use crate::seqpacket::SeqpacketListener;
use crate::transport::Transport;

/// A running broker thread; stopped and joined on drop.
#[derive(Debug)]
pub struct BrokerThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), BrokerError>>>,
}

impl BrokerThread {
    /// Binds `socket` (mode 0600), then on a new thread opens the device
    /// with `open` and serves it. Returns once the socket accepts players
    /// and the device is initialised, or with the error that prevented it.
    pub fn spawn<T, F>(
        socket: &Path,
        options: BrokerOptions,
        open: F,
    ) -> Result<BrokerThread, BrokerError>
    where
        T: Transport,
        F: FnOnce() -> Result<MediaDevice<T>, BrokerError> + Send + 'static,
    {
        let listener =
            SeqpacketListener::bind(socket, 0o600).map_err(|source| BrokerError::Io {
                op: "binding the broker socket",
                source,
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("mediaredir-broker".into())
            .spawn(move || {
                let started = open().and_then(|dev| Broker::new(dev, listener, options));
                let mut broker = match started {
                    Ok(b) => {
                        let _ = ready_tx.send(None);
                        b
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Some(e.to_string()));
                        return Err(e);
                    }
                };
                let result = broker.run(&thread_stop, Duration::from_millis(50));
                if let Err(e) = &result {
                    log::error!("broker stopped: {e}");
                }
                result
            })
            .map_err(|source| BrokerError::Io {
                op: "starting the broker thread",
                source,
            })?;
        let mut me = BrokerThread {
            stop,
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(None) => Ok(me),
            _ => Err(me.join().err().unwrap_or(BrokerError::Io {
                op: "starting the broker",
                source: std::io::Error::other("the broker thread ended"),
            })),
        }
    }

    /// Whether the broker still runs.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the broker and returns how it ended.
    pub fn join(&mut self) -> Result<(), BrokerError> {
        self.stop.store(true, Ordering::Release);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(BrokerError::Io {
                op: "broker thread",
                source: std::io::Error::other("the broker thread panicked"),
            }),
            None => Ok(()),
        }
    }
}

impl Drop for BrokerThread {
    fn drop(&mut self) {
        if let Err(e) = self.join() {
            log::warn!("broker: {e}");
        }
    }
}

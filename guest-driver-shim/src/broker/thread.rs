//! A broker on a thread of its own, for a player that brings its own
//! device (on a host test rig, `redir-play --vhost-user`; in a guest,
//! `redir-play --pci`) and for tests.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use mediaredir_player::seqpacket::SeqpacketListener;

use super::{Broker, BrokerError, BrokerOptions};
use crate::driver::MediaDevice;
use crate::transport::Transport;

/// A running broker thread; stopped and joined on drop.
#[derive(Debug)]
pub struct BrokerThread {
    stop: Arc<AtomicBool>,
    reset: ResetHandle,
    thread: Option<JoinHandle<Result<(), BrokerError>>>,
}

/// Asks a [`BrokerThread`] to reset its device (at its next turn): the
/// only way for a player to reset the device, which the broker owns. The
/// player's buffers then complete `STALE` and it gets `DEVICE_STARTED`,
/// as after a restart of the host daemon.
#[derive(Debug, Clone, Default)]
pub struct ResetHandle {
    pending: Arc<AtomicBool>,
    asked: Arc<AtomicU32>,
}

impl ResetHandle {
    /// Asks for a reset.
    pub fn request(&self) {
        self.asked.fetch_add(1, Ordering::AcqRel);
        self.pending.store(true, Ordering::Release);
    }

    /// Resets asked so far.
    pub fn asked(&self) -> u32 {
        self.asked.load(Ordering::Acquire)
    }

    /// Takes a pending request (the broker thread's side).
    fn take(&self) -> bool {
        self.pending.swap(false, Ordering::AcqRel)
    }
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
        let reset = ResetHandle::default();
        let thread_reset = reset.clone();
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
                let result = serve(&mut broker, &thread_stop, &thread_reset);
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
            reset,
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

    /// A handle that asks this broker to reset the device.
    pub fn reset_handle(&self) -> ResetHandle {
        self.reset.clone()
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

/// Serves until `stop`, resetting the device when `reset` asks.
fn serve<T: Transport>(
    broker: &mut Broker<T>,
    stop: &AtomicBool,
    reset: &ResetHandle,
) -> Result<(), BrokerError> {
    while !stop.load(Ordering::Acquire) {
        if reset.take() {
            broker.reset()?;
        }
        broker.run_once(Duration::from_millis(50))?;
    }
    Ok(())
}

impl Drop for BrokerThread {
    fn drop(&mut self) {
        if let Err(e) = self.join() {
            log::warn!("broker: {e}");
        }
    }
}

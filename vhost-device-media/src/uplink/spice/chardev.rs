//! The media port: a libspice-server char device of subtype "port" named
//! [`SPICE_PORT_NAME`], and the mapping of its client's comings and goings
//! to connections of the uplink.
//!
//! A Spice client that connects the port channel (the char device's
//! `state(1)`, or a port `OPENED` event, which spice-client-glib never
//! sends but another client may) starts a new
//! [`PortStream`], which the uplink's acceptor receives like an accepted
//! socket; the daemon answers with the port event `OPENED` (without it the
//! client's writes fail with "port is not opened"). `state(0)` or `CLOSED`
//! ends it. libspice-server calls `read` once per wakeup, so a pump on the
//! Spice thread keeps waking the device while a frame is pending.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use glib::{ControlFlow, MainContext, Priority};
use mediaredir_proto::wire::SPICE_PORT_NAME;

use super::api::{CharDeviceHandler, CharDeviceId};
use super::ffi;
use super::port_stream::{PortStream, Waker};
use crate::counters::Counters;
use crate::uplink::stream::ClientStream;

/// How long the pump waits before waking the device again when
/// libspice-server took nothing (its queue to the client is full).
const STALL_RETRY: Duration = Duration::from_millis(2);

/// The port: the char device's state, shared with its connections.
pub(super) struct Port {
    context: MainContext,
    /// The char device (which acts on the Spice thread only).
    device: CharDeviceId,
    current: Mutex<Option<Arc<PortStream>>>,
    /// Where new connections go; taken when the server stops, which ends
    /// the uplink's acceptor.
    accept: Mutex<Option<Sender<ClientStream>>>,
    counters: Arc<Counters>,
    pumping: AtomicBool,
    this: Weak<Port>,
}

impl Port {
    fn lock_current(&self) -> MutexGuard<'_, Option<Arc<PortStream>>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A client arrived on the port (Spice thread).
    fn client_arrived(&self) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        let stream = Arc::new(PortStream::new(this, Arc::clone(&self.counters)));
        let previous = self.lock_current().replace(Arc::clone(&stream));
        if let Some(previous) = previous {
            previous.close();
        }
        log::info!("spice: a client opened the media port");
        let sent = self
            .accept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|accept| accept.send(ClientStream::Spice(stream)));
        if !matches!(sent, Some(Ok(()))) {
            return;
        }
        self.device.port_event(ffi::SPICE_PORT_EVENT_OPENED);
    }

    /// The client left the port (Spice thread).
    fn client_left(&self) {
        if let Some(stream) = self.lock_current().take() {
            log::info!("spice: the client closed the media port");
            stream.close();
        }
    }

    /// One step of the pump (Spice thread): wakes the device while a frame
    /// is pending.
    fn pump(&self) -> ControlFlow {
        self.pumping.store(false, Ordering::SeqCst);
        let stream = self.lock_current().clone();
        let Some(stream) = stream.filter(|s| s.has_pending()) else {
            return ControlFlow::Break;
        };
        if self.pumping.swap(true, Ordering::SeqCst) {
            // Another pump was scheduled meanwhile.
            return ControlFlow::Break;
        }
        let before = stream.consumed();
        self.device.wakeup();
        if stream.consumed() != before {
            return ControlFlow::Continue;
        }
        let this = self.this.clone();
        let retry = glib::timeout_source_new(STALL_RETRY, None, Priority::DEFAULT, move || {
            if let Some(port) = this.upgrade() {
                port.pumping.store(false, Ordering::SeqCst);
                port.wake();
            }
            ControlFlow::Break
        });
        retry.attach(Some(&self.context));
        ControlFlow::Break
    }
}

impl Waker for Port {
    fn wake(&self) {
        if self.pumping.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = self.this.clone();
        let idle = glib::idle_source_new(None, Priority::DEFAULT, move || match this.upgrade() {
            Some(port) => port.pump(),
            None => ControlFlow::Break,
        });
        idle.attach(Some(&self.context));
    }

    fn closed_by_daemon(&self, stream: &PortStream) {
        let this = self.this.clone();
        let stream = stream as *const PortStream as usize;
        self.context.invoke(move || {
            let Some(port) = this.upgrade() else { return };
            let mut current = port.lock_current();
            if current
                .as_ref()
                .is_some_and(|c| Arc::as_ptr(c) as usize == stream)
            {
                *current = None;
                drop(current);
                log::info!("spice: closing the media port");
                // `invoke` runs this on the Spice thread.
                port.device.port_event(ffi::SPICE_PORT_EVENT_CLOSED);
            }
        });
    }
}

impl CharDeviceHandler for Port {
    fn state(&self, connected: bool) {
        if connected {
            self.client_arrived();
        } else {
            self.client_left();
        }
    }

    fn event(&self, event: u8) {
        match event {
            ffi::SPICE_PORT_EVENT_OPENED if self.lock_current().is_none() => {
                self.client_arrived();
            }
            ffi::SPICE_PORT_EVENT_CLOSED => self.client_left(),
            _ => {}
        }
    }

    fn write(&self, bytes: &[u8]) -> usize {
        match self.lock_current().clone() {
            Some(stream) => stream.push(bytes),
            // No connection: the bytes have nowhere to go.
            None => bytes.len(),
        }
    }

    fn read(&self, buf: &mut [u8]) -> usize {
        match self.lock_current().clone() {
            Some(stream) => stream.pull(buf),
            None => 0,
        }
    }
}

impl Port {
    /// Registers the media port on this (the Spice) thread; its
    /// connections go to `accept`. The device lives as long as the thread
    /// (libspice-server keeps pointers to it for the server's life).
    pub(super) fn register(
        context: MainContext,
        accept: Sender<ClientStream>,
        counters: Arc<Counters>,
    ) -> Arc<Port> {
        CharDeviceId::register(c"port", SPICE_PORT_NAME, |device| {
            Arc::new_cyclic(|this| Port {
                context,
                device,
                current: Mutex::new(None),
                accept: Mutex::new(Some(accept)),
                counters,
                pumping: AtomicBool::new(false),
                this: this.clone(),
            })
        })
    }

    /// The char device, for `spice_server_add_interface`.
    pub(super) fn device(&self) -> CharDeviceId {
        self.device
    }

    /// Ends the current connection and stops handing out new ones (the
    /// server is going away).
    pub(super) fn close(&self) {
        self.accept.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.client_left();
    }
}

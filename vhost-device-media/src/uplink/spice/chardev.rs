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

use std::ffi::{CString, c_int};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use glib::{ControlFlow, MainContext, Priority};
use mediaredir_proto::wire::SPICE_PORT_NAME;

use super::ffi;
use super::port_stream::{PortStream, Waker};
use crate::counters::Counters;
use crate::uplink::stream::ClientStream;

/// How long the pump waits before waking the device again when
/// libspice-server took nothing (its queue to the client is full).
const STALL_RETRY: Duration = Duration::from_millis(2);

/// The char device instance with what its callbacks need. `#[repr(C)]`
/// with the instance first, so the `sin` pointer libspice-server passes
/// back is a pointer to the whole device.
#[repr(C)]
pub(super) struct PortDevice {
    sin: ffi::SpiceCharDeviceInstance,
    port: Arc<Port>,
}

/// The pointer to the device instance, to wake it from another thread.
#[derive(Clone, Copy)]
struct SinPtr(*mut ffi::SpiceCharDeviceInstance);

// SAFETY: the device is leaked (it lives as long as the process) and the
// pointer is only dereferenced by libspice-server on the Spice thread.
unsafe impl Send for SinPtr {}
// SAFETY: as above; sharing the address is harmless.
unsafe impl Sync for SinPtr {}

/// The port's shared state.
pub(super) struct Port {
    context: MainContext,
    sin: Mutex<Option<SinPtr>>,
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

    fn sin(&self) -> Option<SinPtr> {
        *self.sin.lock().unwrap_or_else(|p| p.into_inner())
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
        if let Some(sin) = self.sin() {
            // SAFETY: `sin` is the registered, leaked instance; this runs on
            // the Spice thread.
            unsafe { ffi::spice_server_port_event(sin.0, ffi::SPICE_PORT_EVENT_OPENED) };
        }
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
        if let Some(sin) = self.sin() {
            // SAFETY: the registered, leaked instance, on the Spice thread.
            unsafe { ffi::spice_server_char_device_wakeup(sin.0) };
        }
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
                if let Some(sin) = port.sin() {
                    // SAFETY: the registered, leaked instance, on the Spice
                    // thread (`invoke` runs there).
                    unsafe { ffi::spice_server_port_event(sin.0, ffi::SPICE_PORT_EVENT_CLOSED) };
                }
            }
        });
    }
}

/// Finds the port of a device pointer given back by libspice-server.
///
/// # Safety
/// `sin` must be the instance of a live [`PortDevice`].
unsafe fn port_of<'a>(sin: *mut ffi::SpiceCharDeviceInstance) -> &'a Port {
    // SAFETY: `PortDevice` is `repr(C)` with the instance first, and the
    // caller guarantees `sin` points into a live one.
    unsafe { &(*sin.cast::<PortDevice>()).port }
}

unsafe extern "C" fn state(sin: *mut ffi::SpiceCharDeviceInstance, connected: c_int) {
    // SAFETY: libspice-server passes back the instance we registered.
    let port = unsafe { port_of(sin) };
    if connected != 0 {
        port.client_arrived();
    } else {
        port.client_left();
    }
}

unsafe extern "C" fn event(sin: *mut ffi::SpiceCharDeviceInstance, event: u8) {
    // SAFETY: libspice-server passes back the instance we registered.
    let port = unsafe { port_of(sin) };
    match event {
        ffi::SPICE_PORT_EVENT_OPENED if port.lock_current().is_none() => port.client_arrived(),
        ffi::SPICE_PORT_EVENT_CLOSED => port.client_left(),
        _ => {}
    }
}

unsafe extern "C" fn write(
    sin: *mut ffi::SpiceCharDeviceInstance,
    buf: *const u8,
    len: c_int,
) -> c_int {
    // SAFETY: libspice-server passes back the instance we registered.
    let port = unsafe { port_of(sin) };
    let Ok(len) = usize::try_from(len) else {
        return -1;
    };
    if len == 0 || buf.is_null() {
        return 0;
    }
    // SAFETY: libspice-server hands `len` readable bytes at `buf` for the
    // duration of the call.
    let bytes = unsafe { std::slice::from_raw_parts(buf, len) };
    let taken = match port.lock_current().clone() {
        Some(stream) => stream.push(bytes),
        // No connection: the bytes have nowhere to go.
        None => len,
    };
    c_int::try_from(taken).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn read(
    sin: *mut ffi::SpiceCharDeviceInstance,
    buf: *mut u8,
    len: c_int,
) -> c_int {
    // SAFETY: libspice-server passes back the instance we registered.
    let port = unsafe { port_of(sin) };
    let Ok(len) = usize::try_from(len) else {
        return -1;
    };
    if len == 0 || buf.is_null() {
        return 0;
    }
    let Some(stream) = port.lock_current().clone() else {
        return 0;
    };
    // SAFETY: libspice-server hands a writable buffer of `len` bytes for
    // the duration of the call.
    let buf = unsafe { std::slice::from_raw_parts_mut(buf, len) };
    c_int::try_from(stream.pull(buf)).unwrap_or(0)
}

/// The char device interface: static, as libspice-server keeps a pointer.
struct Interface(ffi::SpiceCharDeviceInterface);

// SAFETY: the interface is immutable; its pointers are to static C strings
// and functions.
unsafe impl Sync for Interface {}

static INTERFACE: Interface = Interface(ffi::SpiceCharDeviceInterface {
    base: ffi::SpiceBaseInterface {
        type_: c"char_device".as_ptr(),
        description: c"vhost-user-mediaredir media port".as_ptr(),
        major_version: ffi::SPICE_INTERFACE_CHAR_DEVICE_MAJOR,
        minor_version: ffi::SPICE_INTERFACE_CHAR_DEVICE_MINOR,
    },
    state: Some(state),
    write: Some(write),
    read: Some(read),
    event: Some(event),
    flags: 0,
});

impl PortDevice {
    /// A media port whose connections go to `accept`. The device is leaked:
    /// libspice-server keeps pointers to it for the server's life.
    pub(super) fn new(
        context: MainContext,
        accept: Sender<ClientStream>,
        counters: Arc<Counters>,
    ) -> &'static mut PortDevice {
        let port = Arc::new_cyclic(|this| Port {
            context,
            sin: Mutex::new(None),
            current: Mutex::new(None),
            accept: Mutex::new(Some(accept)),
            counters,
            pumping: AtomicBool::new(false),
            this: this.clone(),
        });
        let portname = CString::new(SPICE_PORT_NAME).unwrap_or_default();
        let device = Box::leak(Box::new(PortDevice {
            sin: ffi::SpiceCharDeviceInstance {
                base: ffi::SpiceBaseInstance {
                    sif: &INTERFACE.0.base,
                },
                subtype: c"port".as_ptr(),
                st: std::ptr::null_mut(),
                portname: portname.into_raw(),
            },
            port,
        }));
        *device.port.sin.lock().unwrap_or_else(|p| p.into_inner()) = Some(SinPtr(&mut device.sin));
        device
    }

    /// The base instance, for `spice_server_add_interface`.
    pub(super) fn base(&mut self) -> *mut ffi::SpiceBaseInstance {
        &mut self.sin.base
    }

    /// Ends the current connection and stops handing out new ones (the
    /// server is going away).
    pub(super) fn close(&self) {
        self.port
            .accept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.port.client_left();
    }
}

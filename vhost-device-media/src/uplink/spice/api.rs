//! The safe face of libspice-server: every call from the daemon into the
//! library is here, one `unsafe` block each (`spice_server_new`, which
//! takes nothing, is declared safe), and so are the core interface's
//! callbacks that take a library function and the char device's callbacks
//! that must trust a buffer the library passes. Outside this
//! module the Spice uplink is safe code but for the one payload copy in
//! `port_stream.rs`.
//!
//! The invariants the C API leaves to its caller are kept by the types:
//!
//! - **One thread.** libspice-server is not thread-safe: the server, its
//!   char devices and its core-interface callbacks all belong to the Spice
//!   thread (the one that runs the server's GLib main context). [`Server`]
//!   holds a raw pointer, so it is neither `Send` nor `Sync`; a char device
//!   is reached through a [`CharDeviceId`] that is looked up in a
//!   thread-local registry, so from any other thread it finds nothing and
//!   does nothing.
//! - **Lifetimes.** The library keeps pointers to the server, the
//!   interfaces and the device instances for the server's life, and the
//!   server is never destroyed (it lives as long as the daemon, as QEMU's
//!   does): what it points to is leaked, and never borrowed by Rust again
//!   after it is handed over (the library writes into a device instance).
//! - **Callbacks.** The library's own timer and watch functions are kept
//!   with their argument in [`TimerCallback`] and [`WatchCallback`], made
//!   only where the library hands them over ([`timer_add`], [`watch_add`]:
//!   the event loop in `core.rs` gets them through [`CoreLoop`]).

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_int, c_void};
use std::ptr::NonNull;
use std::sync::Arc;

use super::SpiceError;
use super::ffi;

fn refused(what: &str) -> Result<(), SpiceError> {
    Err(SpiceError::Server(what.to_owned()))
}

/// A libspice-server instance, used on the thread that created it.
pub(super) struct Server(NonNull<ffi::SpiceServer>);

impl Server {
    /// Creates a server (not yet initialised).
    pub(super) fn new() -> Result<Server, SpiceError> {
        NonNull::new(ffi::spice_server_new())
            .map(Server)
            .ok_or_else(|| SpiceError::Server("spice_server_new failed".into()))
    }

    /// The address to listen on (`None`: any), Unix socket path if
    /// `unix_only`.
    pub(super) fn set_addr(&mut self, addr: Option<&CStr>, unix_only: bool) {
        let addr = addr.map_or(std::ptr::null(), CStr::as_ptr);
        let flags = if unix_only {
            ffi::SPICE_ADDR_FLAG_UNIX_ONLY
        } else {
            0
        };
        // SAFETY: the server is valid; libspice-server copies the address.
        unsafe { ffi::spice_server_set_addr(self.0.as_ptr(), addr, flags) };
    }

    /// The plain TCP port.
    pub(super) fn set_port(&mut self, port: u16) -> Result<(), SpiceError> {
        // SAFETY: the server is valid.
        if unsafe { ffi::spice_server_set_port(self.0.as_ptr(), i32::from(port)) } != 0 {
            return refused("spice_server_set_port refused the port");
        }
        Ok(())
    }

    /// The TLS port and its files (CA, certificate, key).
    pub(super) fn set_tls(
        &mut self,
        port: u16,
        ca: &CStr,
        cert: &CStr,
        key: &CStr,
    ) -> Result<(), SpiceError> {
        // SAFETY: the server is valid; the strings are NUL-terminated and
        // copied by libspice-server; the optional ones may be NULL.
        let rc = unsafe {
            ffi::spice_server_set_tls(
                self.0.as_ptr(),
                i32::from(port),
                ca.as_ptr(),
                cert.as_ptr(),
                key.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return refused("spice_server_set_tls refused the TLS settings");
        }
        Ok(())
    }

    /// No password at all.
    pub(super) fn set_noauth(&mut self) {
        // SAFETY: the server is valid.
        unsafe { ffi::spice_server_set_noauth(self.0.as_ptr()) };
    }

    /// Starts listening, with `core` as the server's event loop. The
    /// callbacks of `core` run on this thread from now on.
    pub(super) fn init(
        &mut self,
        core: &'static mut ffi::SpiceCoreInterface,
    ) -> Result<(), SpiceError> {
        // SAFETY: the server is valid and `core` lives for ever; its
        // callbacks are Rust functions of the right signatures.
        if unsafe { ffi::spice_server_init(self.0.as_ptr(), core) } != 0 {
            return refused("spice_server_init failed (address in use, or bad TLS files?)");
        }
        Ok(())
    }

    /// The password; it does not expire.
    pub(super) fn set_ticket(&mut self, password: &CStr) -> Result<(), SpiceError> {
        // SAFETY: the server is valid and initialised; the password is
        // copied. Lifetime 0: the ticket does not expire.
        if unsafe { ffi::spice_server_set_ticket(self.0.as_ptr(), password.as_ptr(), 0, 0, 0) } != 0
        {
            return refused("spice_server_set_ticket failed");
        }
        Ok(())
    }

    /// Adds a char device registered on this thread.
    pub(super) fn add_char_device(&mut self, device: CharDeviceId) -> Result<(), SpiceError> {
        let Some(instance) = device.instance() else {
            return refused("the char device belongs to another thread");
        };
        // `base` is the first field of the `repr(C)` instance.
        let base = instance.as_ptr().cast::<ffi::SpiceBaseInstance>();
        // SAFETY: the server is valid; the instance is leaked, so it
        // outlives the server.
        if unsafe { ffi::spice_server_add_interface(self.0.as_ptr(), base) } != 0 {
            return refused("spice_server_add_interface refused the media port");
        }
        Ok(())
    }
}

/// A timer function libspice-server gave, with its argument.
#[derive(Clone, Copy)]
pub(super) struct TimerCallback {
    func: ffi::SpiceTimerFunc,
    opaque: *mut c_void,
}

impl TimerCallback {
    /// A function of ours that takes no argument (tests): a safe function
    /// may be called with any pointer.
    #[cfg(test)]
    pub(super) fn from_fn(func: extern "C" fn(*mut c_void)) -> TimerCallback {
        TimerCallback {
            func: Some(func),
            opaque: std::ptr::null_mut(),
        }
    }

    /// Calls the function.
    pub(super) fn call(self) {
        if let Some(func) = self.func {
            // SAFETY: made by `timer_add`, whose caller promised that `func`
            // can be called with `opaque` on this thread until the timer is
            // removed, and kept only that long (the `CoreLoop` contract); or
            // a safe function, which takes any argument.
            unsafe { func(self.opaque) };
        }
    }
}

/// A watch function libspice-server gave, with its argument.
#[derive(Clone, Copy)]
pub(super) struct WatchCallback {
    func: ffi::SpiceWatchFunc,
    opaque: *mut c_void,
}

impl WatchCallback {
    /// A function of ours that takes no argument (tests): a safe function
    /// may be called with any pointer.
    #[cfg(test)]
    pub(super) fn from_fn(func: extern "C" fn(c_int, c_int, *mut c_void)) -> WatchCallback {
        WatchCallback {
            func: Some(func),
            opaque: std::ptr::null_mut(),
        }
    }

    /// Calls the function with the fd and the `SPICE_WATCH_EVENT_*` bits.
    pub(super) fn call(self, fd: c_int, event: c_int) {
        if let Some(func) = self.func {
            // SAFETY: made by `watch_add`, whose caller promised that `func`
            // can be called with `opaque` on this thread until the watch is
            // removed, and kept only that long (the `CoreLoop` contract); or
            // a safe function, which takes any argument.
            unsafe { func(fd, event, self.opaque) };
        }
    }
}

/// What the core interface does with a timer or watch function once it is
/// wrapped: the event loop (`core.rs`) keeps it and returns a handle. Runs
/// on the Spice thread.
///
/// # Safety
///
/// An implementation keeps a callback on this thread and only until
/// libspice-server removes its timer or watch (`timer_remove`,
/// `watch_remove`): the library's function may not be called after that.
pub(super) unsafe trait CoreLoop {
    /// A new timer that calls `callback` when it fires.
    fn timer_add(callback: TimerCallback) -> *mut ffi::SpiceTimer;
    /// A new watch of `fd` for the `SPICE_WATCH_EVENT_*` bits of `mask`.
    fn watch_add(fd: c_int, mask: c_int, callback: WatchCallback) -> *mut ffi::SpiceWatch;
}

/// The core interface's `timer_add`, handing the library's function to
/// `L` as a [`TimerCallback`]: the only place one is made from a C
/// function.
///
/// # Safety
/// libspice-server's `timer_add` contract: `func` can be called with
/// `opaque` on this thread until the timer is removed.
pub(super) unsafe extern "C" fn timer_add<L: CoreLoop>(
    func: ffi::SpiceTimerFunc,
    opaque: *mut c_void,
) -> *mut ffi::SpiceTimer {
    L::timer_add(TimerCallback { func, opaque })
}

/// The core interface's `watch_add`, handing the library's function to
/// `L` as a [`WatchCallback`]: the only place one is made from a C
/// function.
///
/// # Safety
/// libspice-server's `watch_add` contract: `func` can be called with
/// `opaque` on this thread until the watch is removed.
pub(super) unsafe extern "C" fn watch_add<L: CoreLoop>(
    fd: c_int,
    mask: c_int,
    func: ffi::SpiceWatchFunc,
    opaque: *mut c_void,
) -> *mut ffi::SpiceWatch {
    L::watch_add(fd, mask, WatchCallback { func, opaque })
}

/// What a char device does when libspice-server calls it (Spice thread).
pub(super) trait CharDeviceHandler {
    /// A client connected (`true`) or left (`false`).
    fn state(&self, connected: bool);
    /// Bytes from the client; returns how many were taken.
    fn write(&self, bytes: &[u8]) -> usize;
    /// Fills `buf` with bytes for the client; returns how many.
    fn read(&self, buf: &mut [u8]) -> usize;
    /// A port event (`SPICE_PORT_EVENT_*`).
    fn event(&self, event: u8);
}

/// A char device registered on the Spice thread. Only an address: the
/// device is found again in that thread's registry, so the id can be held
/// anywhere but acts only on the Spice thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CharDeviceId(usize);

struct Registered {
    instance: NonNull<ffi::SpiceCharDeviceInstance>,
    handler: Arc<dyn CharDeviceHandler>,
}

thread_local! {
    /// The char devices registered on this thread.
    static DEVICES: RefCell<Vec<Registered>> = const { RefCell::new(Vec::new()) };
}

fn handler_of(sin: *mut ffi::SpiceCharDeviceInstance) -> Option<Arc<dyn CharDeviceHandler>> {
    DEVICES
        .try_with(|devices| {
            let devices = devices.borrow();
            let found = devices.iter().find(|d| d.instance.as_ptr() == sin);
            found.map(|d| Arc::clone(&d.handler))
        })
        .ok()
        .flatten()
}

impl CharDeviceId {
    /// Registers a char device of `subtype` named `portname` on this
    /// thread, with the handler `make` builds knowing the device's id.
    pub(super) fn register<H: CharDeviceHandler + 'static>(
        subtype: &'static CStr,
        portname: &str,
        make: impl FnOnce(CharDeviceId) -> Arc<H>,
    ) -> Arc<H> {
        let interface: &'static ffi::SpiceCharDeviceInterface =
            Box::leak(Box::new(ffi::SpiceCharDeviceInterface {
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
            }));
        let portname = CString::new(portname).unwrap_or_default();
        let instance = NonNull::from(Box::leak(Box::new(ffi::SpiceCharDeviceInstance {
            base: ffi::SpiceBaseInstance {
                sif: &interface.base,
            },
            subtype: subtype.as_ptr(),
            st: std::ptr::null_mut(),
            portname: portname.into_raw(),
        })));
        let handler = make(CharDeviceId(instance.as_ptr().addr()));
        DEVICES.with_borrow_mut(|devices| {
            devices.push(Registered {
                instance,
                handler: Arc::clone(&handler) as Arc<dyn CharDeviceHandler>,
            });
        });
        handler
    }

    /// The instance, if registered on this thread.
    fn instance(self) -> Option<NonNull<ffi::SpiceCharDeviceInstance>> {
        DEVICES
            .try_with(|devices| {
                let devices = devices.borrow();
                let found = devices
                    .iter()
                    .find(|d| d.instance.as_ptr().addr() == self.0);
                found.map(|d| d.instance)
            })
            .ok()
            .flatten()
    }

    /// `spice_server_char_device_wakeup`: asks libspice-server to read.
    /// Does nothing off the Spice thread.
    pub(super) fn wakeup(self) {
        if let Some(instance) = self.instance() {
            // SAFETY: a registered, leaked instance, on its own thread.
            unsafe { ffi::spice_server_char_device_wakeup(instance.as_ptr()) };
        }
    }

    /// `spice_server_port_event`: tells the client the port opened or
    /// closed. Does nothing off the Spice thread.
    pub(super) fn port_event(self, event: u8) {
        if let Some(instance) = self.instance() {
            // SAFETY: a registered, leaked instance, on its own thread.
            unsafe { ffi::spice_server_port_event(instance.as_ptr(), event) };
        }
    }
}

extern "C" fn state(sin: *mut ffi::SpiceCharDeviceInstance, connected: c_int) {
    if let Some(handler) = handler_of(sin) {
        handler.state(connected != 0);
    }
}

extern "C" fn event(sin: *mut ffi::SpiceCharDeviceInstance, event: u8) {
    if let Some(handler) = handler_of(sin) {
        handler.event(event);
    }
}

/// Runs the `read` or `write` callback's work `f` with the handler of
/// `sin` and the buffer's length; -1 for a negative length, 0 for an
/// empty buffer or an unknown device.
fn serve(
    sin: *mut ffi::SpiceCharDeviceInstance,
    null_buf: bool,
    len: c_int,
    f: impl FnOnce(&dyn CharDeviceHandler, usize) -> usize,
) -> c_int {
    let Ok(len) = usize::try_from(len) else {
        return -1;
    };
    if len == 0 || null_buf {
        return 0;
    }
    let Some(handler) = handler_of(sin) else {
        return 0;
    };
    // At most `len`, which came from a `c_int`.
    c_int::try_from(f(&*handler, len)).unwrap_or(c_int::MAX)
}

/// # Safety
/// `buf` has `len` readable bytes for the call (libspice-server's contract).
unsafe extern "C" fn write(
    sin: *mut ffi::SpiceCharDeviceInstance,
    buf: *const u8,
    len: c_int,
) -> c_int {
    serve(sin, buf.is_null(), len, |handler, len| {
        // SAFETY: libspice-server hands `len` readable bytes at `buf` for
        // the duration of the call.
        let bytes = unsafe { std::slice::from_raw_parts(buf, len) };
        handler.write(bytes)
    })
}

/// # Safety
/// `buf` has `len` writable bytes for the call (libspice-server's contract).
unsafe extern "C" fn read(
    sin: *mut ffi::SpiceCharDeviceInstance,
    buf: *mut u8,
    len: c_int,
) -> c_int {
    serve(sin, buf.is_null(), len, |handler, len| {
        // SAFETY: libspice-server hands a writable buffer of `len` bytes
        // for the duration of the call.
        let buf = unsafe { std::slice::from_raw_parts_mut(buf, len) };
        handler.read(buf)
    })
}

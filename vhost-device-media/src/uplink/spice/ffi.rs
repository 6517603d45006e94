//! Hand-written bindings to the part of libspice-server 0.15 the Spice
//! uplink uses (`spice-server/spice-core.h`, `spice-char.h`,
//! `spice-server.h`). Written by hand rather than with bindgen so that the
//! build needs neither libclang nor the headers: the structures are few,
//! fixed by the library's ABI (interface major versions 1), and checked
//! against the headers here. Only [`super::api`] calls them.
//!
//! The callbacks the daemon implements are declared as safe `extern "C"
//! fn` where our implementation is sound whatever the arguments (it only
//! looks a handle up: timers, watches, char device instances), and as
//! `unsafe` where it must trust the library (a buffer to read or write, a
//! function to call later), so the compiler keeps the two kinds apart.

#![allow(missing_docs, non_camel_case_types, unreachable_pub)]

use std::ffi::{c_char, c_int, c_uint, c_void};

/// `SpiceServer` (opaque).
#[repr(C)]
pub(super) struct SpiceServer {
    _private: [u8; 0],
}

/// `SpiceTimer` (opaque to the library; ours, a handle, see `core.rs`).
#[repr(C)]
pub(super) struct SpiceTimer {
    _private: [u8; 0],
}

/// `SpiceWatch` (opaque to the library; ours, a handle, see `core.rs`).
#[repr(C)]
pub(super) struct SpiceWatch {
    _private: [u8; 0],
}

/// `SpiceCharDeviceState` (opaque, the library's).
#[repr(C)]
pub(super) struct SpiceCharDeviceState {
    _private: [u8; 0],
}

/// `SpiceChannelEventInfo`: only passed through by pointer here.
#[repr(C)]
pub(super) struct SpiceChannelEventInfo {
    _private: [u8; 0],
}

pub(super) type SpiceTimerFunc = Option<unsafe extern "C" fn(opaque: *mut c_void)>;
pub(super) type SpiceWatchFunc =
    Option<unsafe extern "C" fn(fd: c_int, event: c_int, opaque: *mut c_void)>;

pub(super) const SPICE_WATCH_EVENT_READ: c_int = 1 << 0;
pub(super) const SPICE_WATCH_EVENT_WRITE: c_int = 1 << 1;

pub(super) const SPICE_CHANNEL_EVENT_CONNECTED: c_int = 1;
pub(super) const SPICE_CHANNEL_EVENT_DISCONNECTED: c_int = 3;

pub(super) const SPICE_ADDR_FLAG_UNIX_ONLY: c_int = 1 << 2;

/// `SPICE_PORT_EVENT_OPENED` (spice-protocol `enums.h`).
pub(super) const SPICE_PORT_EVENT_OPENED: u8 = 0;
/// `SPICE_PORT_EVENT_CLOSED`.
pub(super) const SPICE_PORT_EVENT_CLOSED: u8 = 1;

/// `SpiceBaseInterface`.
#[repr(C)]
pub(super) struct SpiceBaseInterface {
    pub(super) type_: *const c_char,
    pub(super) description: *const c_char,
    pub(super) major_version: u32,
    pub(super) minor_version: u32,
}

/// `SpiceBaseInstance`.
#[repr(C)]
pub(super) struct SpiceBaseInstance {
    pub(super) sif: *const SpiceBaseInterface,
}

pub(super) const SPICE_INTERFACE_CORE_MAJOR: u32 = 1;
pub(super) const SPICE_INTERFACE_CORE_MINOR: u32 = 3;

/// `SpiceCoreInterface`.
#[repr(C)]
pub(super) struct SpiceCoreInterface {
    pub(super) base: SpiceBaseInterface,
    pub(super) timer_add:
        Option<unsafe extern "C" fn(func: SpiceTimerFunc, opaque: *mut c_void) -> *mut SpiceTimer>,
    pub(super) timer_start: Option<extern "C" fn(timer: *mut SpiceTimer, ms: u32)>,
    pub(super) timer_cancel: Option<extern "C" fn(timer: *mut SpiceTimer)>,
    pub(super) timer_remove: Option<extern "C" fn(timer: *mut SpiceTimer)>,
    pub(super) watch_add: Option<
        unsafe extern "C" fn(
            fd: c_int,
            event_mask: c_int,
            func: SpiceWatchFunc,
            opaque: *mut c_void,
        ) -> *mut SpiceWatch,
    >,
    pub(super) watch_update_mask: Option<extern "C" fn(watch: *mut SpiceWatch, event_mask: c_int)>,
    pub(super) watch_remove: Option<extern "C" fn(watch: *mut SpiceWatch)>,
    pub(super) channel_event: Option<extern "C" fn(event: c_int, info: *mut SpiceChannelEventInfo)>,
}

pub(super) const SPICE_INTERFACE_CHAR_DEVICE_MAJOR: u32 = 1;
pub(super) const SPICE_INTERFACE_CHAR_DEVICE_MINOR: u32 = 3;

/// `SpiceCharDeviceInterface`.
#[repr(C)]
pub(super) struct SpiceCharDeviceInterface {
    pub(super) base: SpiceBaseInterface,
    pub(super) state: Option<extern "C" fn(sin: *mut SpiceCharDeviceInstance, connected: c_int)>,
    pub(super) write: Option<
        unsafe extern "C" fn(
            sin: *mut SpiceCharDeviceInstance,
            buf: *const u8,
            len: c_int,
        ) -> c_int,
    >,
    pub(super) read: Option<
        unsafe extern "C" fn(sin: *mut SpiceCharDeviceInstance, buf: *mut u8, len: c_int) -> c_int,
    >,
    pub(super) event: Option<extern "C" fn(sin: *mut SpiceCharDeviceInstance, event: u8)>,
    /// `spice_char_device_flags` (an enum: `int`).
    pub(super) flags: c_uint,
}

/// `SpiceCharDeviceInstance`.
#[repr(C)]
pub(super) struct SpiceCharDeviceInstance {
    pub(super) base: SpiceBaseInstance,
    pub(super) subtype: *const c_char,
    pub(super) st: *mut SpiceCharDeviceState,
    pub(super) portname: *const c_char,
}

#[link(name = "spice-server")]
unsafe extern "C" {
    /// Takes nothing and may return NULL: safe to call.
    pub(super) safe fn spice_server_new() -> *mut SpiceServer;
    pub(super) fn spice_server_init(s: *mut SpiceServer, core: *mut SpiceCoreInterface) -> c_int;
    pub(super) fn spice_server_set_port(s: *mut SpiceServer, port: c_int) -> c_int;
    pub(super) fn spice_server_set_addr(s: *mut SpiceServer, addr: *const c_char, flags: c_int);
    pub(super) fn spice_server_set_noauth(s: *mut SpiceServer) -> c_int;
    pub(super) fn spice_server_set_ticket(
        s: *mut SpiceServer,
        passwd: *const c_char,
        lifetime: c_int,
        fail_if_connected: c_int,
        disconnect_if_connected: c_int,
    ) -> c_int;
    pub(super) fn spice_server_set_tls(
        s: *mut SpiceServer,
        port: c_int,
        ca_cert_file: *const c_char,
        certs_file: *const c_char,
        private_key_file: *const c_char,
        key_passwd: *const c_char,
        dh_key_file: *const c_char,
        ciphersuite: *const c_char,
    ) -> c_int;
    pub(super) fn spice_server_add_interface(
        s: *mut SpiceServer,
        sin: *mut SpiceBaseInstance,
    ) -> c_int;
    pub(super) fn spice_server_char_device_wakeup(sin: *mut SpiceCharDeviceInstance);
    pub(super) fn spice_server_port_event(sin: *mut SpiceCharDeviceInstance, event: u8);
}

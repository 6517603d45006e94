//! The few spice-client-gtk functions the viewer uses, behind a safe API:
//! no Rust crate binds libspice-client-gtk-3.0, so this is ours, linked by
//! `build.rs` through pkg-config. Properties (`scaling`, `resize-guest`,
//! `zoom-level`, the clipboard's `auto-clipboard`) go through GObject's
//! generic property API, which needs no binding.
//!
//! The widget is spice-gtk's `SpiceDisplay`, the one remote-viewer shows:
//! it draws the guest display, passes keyboard and pointer, grabs and
//! releases them, and scales. With a `monitor-id` it shows only that
//! monitor's rectangle of the channel's primary surface ([`monitors`]).

use std::ffi::{CString, c_char, c_int, c_uint, c_void};

use gtk::glib::translate::{FromGlibPtrNone as _, ToGlibPtr as _};
use gtk::prelude::*;
use spice_client_glib::{DisplayChannel, Session};

use crate::compose::Desktop;
use crate::monitors::{self, Monitor};
use spice_client_glib::ffi::{SpiceDisplayMonitorConfig, SpiceSession};

/// `SpiceDisplayKeyEvent`: press and release.
const KEY_EVENT_CLICK: c_int = 3;

unsafe extern "C" {
    fn spice_display_new_with_monitor(
        session: *mut SpiceSession,
        channel_id: c_int,
        monitor_id: c_int,
    ) -> *mut c_void;
    fn spice_display_send_keys(
        display: *mut c_void,
        keyvals: *const c_uint,
        nkeyvals: c_int,
        kind: c_int,
    );
    fn spice_display_mouse_ungrab(display: *mut c_void);
    fn spice_display_set_grab_keys(display: *mut c_void, seq: *mut c_void);
    fn spice_grab_sequence_new_from_string(text: *const c_char) -> *mut c_void;
    fn spice_grab_sequence_free(seq: *mut c_void);
    fn spice_gtk_session_get(session: *mut SpiceSession) -> *mut c_void;
    fn spice_usb_device_widget_new(
        session: *mut SpiceSession,
        format: *const c_char,
    ) -> *mut c_void;
}

/// A `SpiceDisplay` widget showing one monitor of one display channel of
/// a session.
#[derive(Debug, Clone)]
pub struct SpiceDisplay {
    widget: gtk::Widget,
    monitor_id: u32,
}

impl SpiceDisplay {
    /// The widget for monitor `monitor_id` of display channel `channel_id`
    /// of `session`.
    pub fn new(session: &Session, channel_id: i32, monitor_id: u32) -> SpiceDisplay {
        let session_ptr: *mut SpiceSession = session.to_glib_none().0;
        let monitor = c_int::try_from(monitor_id).unwrap_or(c_int::MAX);
        // SAFETY: `session_ptr` is a live SpiceSession (borrowed from
        // `session` for the call); the result is a new, floating widget.
        let ptr = unsafe { spice_display_new_with_monitor(session_ptr, channel_id, monitor) };
        // SAFETY: `ptr` is a valid, floating GtkWidget (never NULL:
        // g_object_new aborts on failure); `from_glib_none` sinks it.
        let widget = unsafe { gtk::Widget::from_glib_none(ptr.cast::<gtk::ffi::GtkWidget>()) };
        SpiceDisplay::unclamp(&widget);
        SpiceDisplay { widget, monitor_id }
    }

    /// The widget, to put in a container.
    pub fn widget(&self) -> &gtk::Widget {
        &self.widget
    }

    fn ptr(&self) -> *mut c_void {
        let ptr: *mut gtk::ffi::GtkWidget = self.widget.to_glib_none().0;
        ptr.cast()
    }

    /// Presses and releases `keyvals` (GDK key values) in order, then
    /// releases them in reverse: a key combination such as Ctrl+Alt+Del.
    pub fn send_keys(&self, keyvals: &[u32]) {
        let n = c_int::try_from(keyvals.len()).unwrap_or(0);
        // SAFETY: the widget is a live SpiceDisplay; `keyvals` is valid
        // for `n` elements during the call, which copies what it needs.
        unsafe { spice_display_send_keys(self.ptr(), keyvals.as_ptr(), n, KEY_EVENT_CLICK) };
    }

    /// Releases the pointer and keyboard grab.
    pub fn ungrab(&self) {
        // SAFETY: the widget is a live SpiceDisplay.
        unsafe { spice_display_mouse_ungrab(self.ptr()) };
    }

    /// The key combination that releases the grab, in spice-gtk's syntax
    /// (`"Control_L+Alt_L"`, key names joined by `+`).
    pub fn set_grab_keys(&self, keys: &str) -> bool {
        let Ok(text) = CString::new(keys) else {
            return false;
        };
        // SAFETY: `text` is a valid C string for the call.
        let seq = unsafe { spice_grab_sequence_new_from_string(text.as_ptr()) };
        if seq.is_null() {
            return false;
        }
        // SAFETY: the widget is a live SpiceDisplay and `seq` a valid
        // sequence, which the call copies.
        unsafe { spice_display_set_grab_keys(self.ptr(), seq) };
        // SAFETY: `seq` is ours (from `_new_from_string`), used no more.
        unsafe { spice_grab_sequence_free(seq) };
        true
    }

    /// Lets the window shrink below 640x480: spice-gtk asks for at least
    /// that whenever scaling is on (its size request, set again on every
    /// property or surface change); the viewer sizes the window itself
    /// ([`SpiceDisplay::guest_size`]) and the display scales into whatever
    /// it gets, as in remote-viewer.
    fn unclamp(widget: &gtk::Widget) {
        widget.set_size_request(1, 1);
        for property in ["width-request", "height-request"] {
            widget.connect_notify_local(Some(property), |w, _| {
                if (w.width_request(), w.height_request()) != (1, 1) {
                    w.set_size_request(1, 1);
                }
            });
        }
    }

    /// The size of the guest monitor shown, once its channel's primary
    /// surface exists.
    pub fn guest_size(&self) -> Option<(u32, u32)> {
        with_monitor_desktop(&self.display_channel()?, self.monitor_id, |d| {
            (d.width, d.height)
        })?
    }

    /// The display channel the widget shows.
    fn display_channel(&self) -> Option<DisplayChannel> {
        let session = self.widget.property::<Session>("session");
        let id = self.widget.property::<i32>("channel-id");
        session
            .channels()
            .into_iter()
            .filter_map(|c| c.downcast::<DisplayChannel>().ok())
            .find(|c| c.property::<i32>("channel-id") == id)
    }

    /// Whether the guest image is scaled to the widget, and only down.
    pub fn scaling(&self) -> (bool, bool) {
        (
            self.widget.property::<bool>("scaling"),
            self.widget.property::<bool>("only-downscale"),
        )
    }
}

/// Runs `f` on the guest's desktop image of `channel` (its primary
/// surface), if it has one.
pub fn with_desktop<R>(channel: &DisplayChannel, f: impl FnOnce(&Desktop<'_>) -> R) -> Option<R> {
    let primary = channel.primary(0)?;
    // SAFETY: `as_ptr` points at the plain struct `primary` owns.
    let raw = unsafe { &*primary.as_ptr() };
    let (width, height, stride) = (
        u32::try_from(raw.width).ok()?,
        u32::try_from(raw.height).ok()?,
        usize::try_from(raw.stride).ok()?,
    );
    let pixels = (!raw.data.is_null()).then(|| {
        // SAFETY: `data` is the channel's primary surface, `stride *
        // height` bytes that spice-gtk keeps until `display-primary-destroy`,
        // emitted on this thread (GTK's, which runs every Spice callback),
        // so not during `f`.
        unsafe { std::slice::from_raw_parts(raw.data, stride * height as usize) }
    });
    Some(f(&Desktop {
        width,
        height,
        stride,
        pixels,
    }))
}

/// Runs `f` on the part of the guest's desktop image of `channel` that
/// its monitor `monitor_id` shows, if the channel has a primary surface
/// and the monitor is on ([`monitors::area`]).
pub fn with_monitor_desktop<R>(
    channel: &DisplayChannel,
    monitor_id: u32,
    f: impl FnOnce(&Desktop<'_>) -> R,
) -> Option<Option<R>> {
    let monitors = monitors(channel);
    with_desktop(channel, |desktop| {
        let area = monitors::area(&monitors, monitor_id, (desktop.width, desktop.height))?;
        Some(f(&desktop.area(area)))
    })
}

/// The monitors `channel` announces (its `monitors` property).
pub fn monitors(channel: &DisplayChannel) -> Vec<Monitor> {
    let value = channel.property_value("monitors");
    // SAFETY: `monitors` is a boxed GArray property: the value holds a
    // GArray (or NULL) it owns while `value` lives, which is past the use.
    let array = unsafe {
        gtk::glib::gobject_ffi::g_value_get_boxed(value.to_glib_none().0)
            .cast::<gtk::glib::ffi::GArray>()
    };
    if array.is_null() {
        return Vec::new();
    }
    // SAFETY: `array` is the live GArray above.
    let array = unsafe { &*array };
    if array.data.is_null() || array.len == 0 {
        return Vec::new();
    }
    // SAFETY: spice-gtk's `monitors` array holds `len`
    // SpiceDisplayMonitorConfig elements at `data`, alive with `value`.
    let configs = unsafe {
        std::slice::from_raw_parts(
            array.data.cast::<SpiceDisplayMonitorConfig>(),
            array.len as usize,
        )
    };
    configs
        .iter()
        .map(|c| Monitor {
            id: c.id,
            x: c.x,
            y: c.y,
            width: c.width,
            height: c.height,
        })
        .collect()
}

/// Shares the clipboard between the user's desktop and the guest (the
/// session's `SpiceGtkSession` with `auto-clipboard`, as remote-viewer).
pub fn share_clipboard(session: &Session) {
    let session_ptr: *mut SpiceSession = session.to_glib_none().0;
    // SAFETY: `session_ptr` is a live SpiceSession; the result is the
    // session's own SpiceGtkSession (transfer none, as long as the session).
    let ptr = unsafe { spice_gtk_session_get(session_ptr) };
    if ptr.is_null() {
        return;
    }
    // SAFETY: `ptr` is a live GObject; `from_glib_none` takes a reference.
    let object =
        unsafe { gtk::glib::Object::from_glib_none(ptr.cast::<gtk::glib::gobject_ffi::GObject>()) };
    object.set_property("auto-clipboard", true);
}

/// spice-gtk's USB device list (check a device to redirect it).
pub fn usb_device_widget(session: &Session) -> Option<gtk::Widget> {
    let session_ptr: *mut SpiceSession = session.to_glib_none().0;
    // SAFETY: `session_ptr` is a live SpiceSession; a NULL format means
    // the default device description.
    let ptr = unsafe { spice_usb_device_widget_new(session_ptr, std::ptr::null()) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` is a new, floating GtkWidget; `from_glib_none` sinks it.
    Some(unsafe { gtk::Widget::from_glib_none(ptr.cast::<gtk::ffi::GtkWidget>()) })
}

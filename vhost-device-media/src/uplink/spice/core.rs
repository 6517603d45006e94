//! libspice-server's event loop: the `SpiceCoreInterface` (timers and file
//! descriptor watches) implemented on the GLib main context of the Spice
//! thread.
//!
//! libspice-server has no loop of its own for its main channel: the embedder
//! (QEMU) lends it one through this interface. The daemon runs one thread per
//! Spice server with its own `GMainContext` pushed as the thread default and
//! makes every libspice-server call on that thread, so every callback below
//! runs there too and uses `MainContext::ref_thread_default()`: the
//! interface's callbacks carry no user data to find the context otherwise.

use std::ffi::{c_int, c_void};
use std::time::Duration;

use glib::translate::FromGlibPtrFull;
use glib::{ControlFlow, MainContext, Priority, Source};

use super::ffi;

/// A function and its argument that libspice-server asked to be called.
#[derive(Clone, Copy)]
struct Callback<F> {
    func: F,
    opaque: *mut c_void,
}

// SAFETY: a callback is only ever invoked by a source attached to the Spice
// thread's own main context, so on the thread that registered it;
// `Send` is needed only because glib's source constructors demand it.
unsafe impl<F> Send for Callback<F> {}

impl Callback<ffi::SpiceTimerFunc> {
    /// Calls a timer's function (the closure captures the whole callback,
    /// which is `Send`, through this method).
    fn fire(self) {
        if let Some(func) = self.func {
            // SAFETY: the library registered `func` with `opaque`; a timer
            // fires on the Spice thread, as the interface requires.
            unsafe { func(self.opaque) };
        }
    }
}

/// A `SpiceTimer`: a one-shot GLib timeout, re-created on every start.
struct Timer {
    callback: Callback<ffi::SpiceTimerFunc>,
    source: Option<Source>,
}

impl Timer {
    fn cancel(&mut self) {
        if let Some(source) = self.source.take() {
            source.destroy();
        }
    }
}

/// A `SpiceWatch`: a GLib unix fd source, re-created when the mask changes.
struct Watch {
    fd: c_int,
    callback: Callback<ffi::SpiceWatchFunc>,
    source: Option<Source>,
}

impl Watch {
    fn set_mask(&mut self, mask: c_int) {
        if let Some(source) = self.source.take() {
            source.destroy();
        }
        let mut condition = 0;
        if mask & ffi::SPICE_WATCH_EVENT_READ != 0 {
            condition |= glib::ffi::G_IO_IN | glib::ffi::G_IO_HUP | glib::ffi::G_IO_ERR;
        }
        if mask & ffi::SPICE_WATCH_EVENT_WRITE != 0 {
            condition |= glib::ffi::G_IO_OUT | glib::ffi::G_IO_ERR;
        }
        if condition == 0 {
            return;
        }
        let data = Box::into_raw(Box::new(WatchData {
            callback: self.callback,
            mask,
        }));
        // SAFETY: `g_unix_fd_source_new` only creates a source for the fd;
        // libspice-server keeps the fd open until it removes the watch.
        let raw = unsafe { ffi::g_unix_fd_source_new(self.fd, condition) };
        let dispatch: ffi::GUnixFDSourceFunc = Some(watch_dispatch);
        // SAFETY: a unix fd source calls its callback as a
        // `GUnixFDSourceFunc`; GLib documents passing it through the generic
        // `GSourceFunc` type (G_SOURCE_FUNC), and both are C function
        // pointers of the same size.
        let func: glib::ffi::GSourceFunc = unsafe { std::mem::transmute(dispatch) };
        // SAFETY: `raw` is a new source; `data` is a leaked box that
        // `drop_watch_data` frees when GLib destroys the source.
        unsafe { glib::ffi::g_source_set_callback(raw, func, data.cast(), Some(drop_watch_data)) };
        // SAFETY: `raw` is a new reference we own; the wrapper takes it.
        let source = unsafe { Source::from_glib_full(raw) };
        source.attach(Some(&MainContext::ref_thread_default()));
        self.source = Some(source);
    }
}

/// What a watch source's callback needs.
struct WatchData {
    callback: Callback<ffi::SpiceWatchFunc>,
    mask: c_int,
}

unsafe extern "C" fn watch_dispatch(
    fd: c_int,
    condition: glib::ffi::GIOCondition,
    data: *mut c_void,
) -> glib::ffi::gboolean {
    // SAFETY: `data` is the `WatchData` this source was created with; it
    // lives until the source is destroyed, which cannot happen before this
    // dispatch returns.
    let data = unsafe { &*data.cast::<WatchData>() };
    let mut event = 0;
    if condition & glib::ffi::G_IO_IN != 0 {
        event |= ffi::SPICE_WATCH_EVENT_READ;
    }
    if condition & glib::ffi::G_IO_OUT != 0 {
        event |= ffi::SPICE_WATCH_EVENT_WRITE;
    }
    if condition & (glib::ffi::G_IO_HUP | glib::ffi::G_IO_ERR) != 0 {
        // A hang-up is reported to whichever direction is watched, so the
        // library reads (or writes) and sees the error itself.
        event |= data.mask & (ffi::SPICE_WATCH_EVENT_READ | ffi::SPICE_WATCH_EVENT_WRITE);
    }
    if let Some(func) = data.callback.func {
        // SAFETY: libspice-server registered `func` with `opaque` for this
        // fd; calling it on the Spice thread is the interface's contract.
        unsafe { func(fd, event, data.callback.opaque) };
    }
    glib::ffi::GTRUE
}

unsafe extern "C" fn drop_watch_data(data: *mut c_void) {
    // SAFETY: `data` came from `Box::into_raw` in `Watch::set_mask` and GLib
    // calls this destroy notifier exactly once.
    drop(unsafe { Box::from_raw(data.cast::<WatchData>()) });
}

unsafe extern "C" fn timer_add(
    func: ffi::SpiceTimerFunc,
    opaque: *mut c_void,
) -> *mut ffi::SpiceTimer {
    let timer = Box::new(Timer {
        callback: Callback { func, opaque },
        source: None,
    });
    Box::into_raw(timer).cast()
}

unsafe extern "C" fn timer_start(timer: *mut ffi::SpiceTimer, ms: u32) {
    // SAFETY: `timer` came from `timer_add` and has not been removed (the
    // interface's contract); only the Spice thread touches it.
    let timer = unsafe { &mut *timer.cast::<Timer>() };
    timer.cancel();
    let callback = timer.callback;
    let source = glib::timeout_source_new(
        Duration::from_millis(u64::from(ms)),
        None,
        Priority::DEFAULT,
        move || {
            callback.fire();
            ControlFlow::Break
        },
    );
    source.attach(Some(&MainContext::ref_thread_default()));
    timer.source = Some(source);
}

unsafe extern "C" fn timer_cancel(timer: *mut ffi::SpiceTimer) {
    // SAFETY: as in `timer_start`.
    let timer = unsafe { &mut *timer.cast::<Timer>() };
    timer.cancel();
}

unsafe extern "C" fn timer_remove(timer: *mut ffi::SpiceTimer) {
    // SAFETY: `timer` came from `Box::into_raw` in `timer_add`; the library
    // removes a timer once and never uses it again.
    let mut timer = unsafe { Box::from_raw(timer.cast::<Timer>()) };
    timer.cancel();
}

unsafe extern "C" fn watch_add(
    fd: c_int,
    mask: c_int,
    func: ffi::SpiceWatchFunc,
    opaque: *mut c_void,
) -> *mut ffi::SpiceWatch {
    let mut watch = Box::new(Watch {
        fd,
        callback: Callback { func, opaque },
        source: None,
    });
    watch.set_mask(mask);
    Box::into_raw(watch).cast()
}

unsafe extern "C" fn watch_update_mask(watch: *mut ffi::SpiceWatch, mask: c_int) {
    // SAFETY: `watch` came from `watch_add` and has not been removed; only
    // the Spice thread touches it.
    let watch = unsafe { &mut *watch.cast::<Watch>() };
    watch.set_mask(mask);
}

unsafe extern "C" fn watch_remove(watch: *mut ffi::SpiceWatch) {
    // SAFETY: `watch` came from `Box::into_raw` in `watch_add`; the library
    // removes a watch once and never uses it again.
    let mut watch = unsafe { Box::from_raw(watch.cast::<Watch>()) };
    watch.set_mask(0);
}

unsafe extern "C" fn channel_event(event: c_int, _info: *mut ffi::SpiceChannelEventInfo) {
    match event {
        ffi::SPICE_CHANNEL_EVENT_CONNECTED => log::debug!("spice: a channel connected"),
        ffi::SPICE_CHANNEL_EVENT_DISCONNECTED => log::debug!("spice: a channel disconnected"),
        _ => {}
    }
}

/// The core interface, for `spice_server_init`. libspice-server keeps the
/// pointer for the server's life, so the caller leaks it.
pub(super) fn interface() -> Box<ffi::SpiceCoreInterface> {
    Box::new(ffi::SpiceCoreInterface {
        base: ffi::SpiceBaseInterface {
            type_: c"core".as_ptr(),
            description: c"vhost-user-mediaredir GLib core".as_ptr(),
            major_version: ffi::SPICE_INTERFACE_CORE_MAJOR,
            minor_version: ffi::SPICE_INTERFACE_CORE_MINOR,
        },
        timer_add: Some(timer_add),
        timer_start: Some(timer_start),
        timer_cancel: Some(timer_cancel),
        timer_remove: Some(timer_remove),
        watch_add: Some(watch_add),
        watch_update_mask: Some(watch_update_mask),
        watch_remove: Some(watch_remove),
        channel_event: Some(channel_event),
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    use super::*;

    unsafe extern "C" fn count(opaque: *mut c_void) {
        // SAFETY: the tests pass a live `Cell<u32>` as `opaque`.
        let n = unsafe { &*opaque.cast::<Cell<u32>>() };
        n.set(n.get() + 1);
    }

    unsafe extern "C" fn count_event(_fd: c_int, event: c_int, opaque: *mut c_void) {
        // SAFETY: the tests pass a live `Cell<c_int>` as `opaque`.
        let seen = unsafe { &*opaque.cast::<Cell<c_int>>() };
        seen.set(seen.get() | event);
    }

    /// Runs `context` until `done`, for at most a second.
    fn spin(context: &MainContext, done: impl Fn() -> bool) {
        spin_for(context, Duration::from_secs(1), done);
    }

    /// Runs `context` for a while (to see that nothing happens).
    fn idle(context: &MainContext) {
        spin_for(context, Duration::from_millis(50), || false);
    }

    fn spin_for(context: &MainContext, time: Duration, done: impl Fn() -> bool) {
        let deadline = Instant::now() + time;
        while !done() && Instant::now() < deadline {
            context.iteration(false);
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn timers_fire_once_per_start_and_not_after_cancel() {
        let context = MainContext::new();
        context
            .with_thread_default(|| {
                let core = interface();
                let fired = Cell::new(0u32);
                let opaque = (&raw const fired).cast_mut().cast();
                let (add, start, cancel, remove) = (
                    core.timer_add.unwrap(),
                    core.timer_start.unwrap(),
                    core.timer_cancel.unwrap(),
                    core.timer_remove.unwrap(),
                );
                // SAFETY: the interface's own functions, on the thread whose
                // default context they use; `fired` outlives the timer.
                let timer = unsafe { add(Some(count), opaque) };
                // SAFETY: as above, `timer` is live.
                unsafe { start(timer, 5) };
                spin(&context, || fired.get() == 1);
                idle(&context);
                assert_eq!(fired.get(), 1, "one shot");
                // SAFETY: as above.
                unsafe { start(timer, 5) };
                // SAFETY: as above.
                unsafe { cancel(timer) };
                idle(&context);
                assert_eq!(fired.get(), 1, "cancelled");
                // SAFETY: as above; the timer is not used again.
                unsafe { remove(timer) };
            })
            .unwrap();
    }

    #[test]
    fn watches_report_readable_fds_until_removed() {
        let context = MainContext::new();
        context
            .with_thread_default(|| {
                let core = interface();
                let (a, mut b) = UnixStream::pair().unwrap();
                let seen = Cell::new(0);
                let opaque = (&raw const seen).cast_mut().cast();
                let (add, update, remove) = (
                    core.watch_add.unwrap(),
                    core.watch_update_mask.unwrap(),
                    core.watch_remove.unwrap(),
                );
                // SAFETY: the interface's own functions, on the thread whose
                // default context they use; `a` and `seen` outlive the watch.
                let watch = unsafe {
                    add(
                        a.as_raw_fd(),
                        ffi::SPICE_WATCH_EVENT_READ,
                        Some(count_event),
                        opaque,
                    )
                };
                idle(&context);
                assert_eq!(seen.get(), 0, "nothing to read yet");
                b.write_all(b"x").unwrap();
                spin(&context, || seen.get() != 0);
                assert_eq!(seen.get(), ffi::SPICE_WATCH_EVENT_READ);
                seen.set(0);
                // SAFETY: as above, `watch` is live.
                unsafe { update(watch, ffi::SPICE_WATCH_EVENT_WRITE) };
                spin(&context, || seen.get() != 0);
                assert_eq!(
                    seen.get() & ffi::SPICE_WATCH_EVENT_WRITE,
                    ffi::SPICE_WATCH_EVENT_WRITE
                );
                // SAFETY: as above; the watch is not used again.
                unsafe { remove(watch) };
                seen.set(0);
                idle(&context);
                assert_eq!(seen.get(), 0, "removed");
            })
            .unwrap();
    }
}

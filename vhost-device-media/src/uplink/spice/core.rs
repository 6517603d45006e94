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
//!
//! The `SpiceTimer` and `SpiceWatch` pointers the library holds are handles
//! (numbers) into tables of this thread, not addresses: a callback with a
//! handle that was removed, or from another thread, finds nothing and does
//! nothing, and these callbacks need no `unsafe`. The GLib sources capture
//! only the handle and look the library's function up when they fire.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_int;
use std::os::fd::RawFd;
use std::time::Duration;

use glib::{ControlFlow, IOCondition, MainContext, Priority, Source};

use super::api::{self, CoreLoop, TimerCallback, WatchCallback};
use super::ffi;

/// Objects of this thread by handle (never 0, never reused).
struct Table<T> {
    next: usize,
    items: HashMap<usize, T>,
}

impl<T> Table<T> {
    fn new() -> Table<T> {
        Table {
            next: 1,
            items: HashMap::new(),
        }
    }

    fn insert(&mut self, item: T) -> usize {
        let handle = self.next;
        self.next += 1;
        self.items.insert(handle, item);
        handle
    }
}

/// A `SpiceTimer`: a one-shot GLib timeout, re-created on every start.
struct Timer {
    callback: TimerCallback,
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
    fd: RawFd,
    callback: WatchCallback,
    source: Option<Source>,
}

thread_local! {
    static TIMERS: RefCell<Table<Timer>> = RefCell::new(Table::new());
    static WATCHES: RefCell<Table<Watch>> = RefCell::new(Table::new());
}

fn timer_handle(handle: usize) -> *mut ffi::SpiceTimer {
    std::ptr::without_provenance_mut(handle)
}

fn watch_handle(handle: usize) -> *mut ffi::SpiceWatch {
    std::ptr::without_provenance_mut(handle)
}

/// Runs `f` on the timer `handle` of this thread, if there is one.
fn with_timer<R>(handle: usize, f: impl FnOnce(&mut Timer) -> R) -> Option<R> {
    TIMERS
        .try_with(|timers| timers.borrow_mut().items.get_mut(&handle).map(f))
        .ok()
        .flatten()
}

/// Runs `f` on the watch `handle` of this thread, if there is one.
fn with_watch<R>(handle: usize, f: impl FnOnce(&mut Watch) -> R) -> Option<R> {
    WATCHES
        .try_with(|watches| watches.borrow_mut().items.get_mut(&handle).map(f))
        .ok()
        .flatten()
}

/// A timer's source fired: calls the library's function (with no table
/// borrowed, as the function may start or remove timers).
fn fire_timer(handle: usize) {
    if let Some(callback) = with_timer(handle, |timer| timer.callback) {
        callback.call();
    }
}

/// A watch's source fired with `condition`, for a watch of `mask`.
fn fire_watch(handle: usize, mask: c_int, fd: RawFd, condition: IOCondition) {
    let mut event = 0;
    if condition.contains(IOCondition::IN) {
        event |= ffi::SPICE_WATCH_EVENT_READ;
    }
    if condition.contains(IOCondition::OUT) {
        event |= ffi::SPICE_WATCH_EVENT_WRITE;
    }
    if condition.intersects(IOCondition::HUP | IOCondition::ERR) {
        // A hang-up is reported to whichever direction is watched, so the
        // library reads (or writes) and sees the error itself.
        event |= mask & (ffi::SPICE_WATCH_EVENT_READ | ffi::SPICE_WATCH_EVENT_WRITE);
    }
    if let Some(callback) = with_watch(handle, |watch| watch.callback) {
        callback.call(fd, event);
    }
}

impl Watch {
    fn set_mask(&mut self, handle: usize, mask: c_int) {
        if let Some(source) = self.source.take() {
            source.destroy();
        }
        let mut condition = IOCondition::empty();
        if mask & ffi::SPICE_WATCH_EVENT_READ != 0 {
            condition |= IOCondition::IN | IOCondition::HUP | IOCondition::ERR;
        }
        if mask & ffi::SPICE_WATCH_EVENT_WRITE != 0 {
            condition |= IOCondition::OUT | IOCondition::ERR;
        }
        if condition.is_empty() {
            return;
        }
        let source = glib_unix::fd_source_new(
            self.fd,
            condition,
            None,
            Priority::DEFAULT,
            move |fd, condition| {
                fire_watch(handle, mask, fd, condition);
                ControlFlow::Continue
            },
        );
        source.attach(Some(&MainContext::ref_thread_default()));
        self.source = Some(source);
    }
}

/// The GLib event loop of the Spice thread, as libspice-server's core
/// interface sees it.
struct GlibLoop;

// SAFETY: timers and watches live in this thread's tables (the callbacks
// are not `Send`), and `timer_remove` / `watch_remove` take them out of the
// table for good: a source that fires later finds nothing.
unsafe impl CoreLoop for GlibLoop {
    fn timer_add(callback: TimerCallback) -> *mut ffi::SpiceTimer {
        let timer = Timer {
            callback,
            source: None,
        };
        timer_handle(TIMERS.with_borrow_mut(|timers| timers.insert(timer)))
    }

    fn watch_add(fd: c_int, mask: c_int, callback: WatchCallback) -> *mut ffi::SpiceWatch {
        let watch = Watch {
            fd,
            callback,
            source: None,
        };
        let handle = WATCHES.with_borrow_mut(|watches| watches.insert(watch));
        with_watch(handle, |watch| watch.set_mask(handle, mask));
        watch_handle(handle)
    }
}

extern "C" fn timer_start(timer: *mut ffi::SpiceTimer, ms: u32) {
    let handle = timer.addr();
    with_timer(handle, |timer| {
        timer.cancel();
        let source = glib::timeout_source_new(
            Duration::from_millis(u64::from(ms)),
            None,
            Priority::DEFAULT,
            move || {
                fire_timer(handle);
                ControlFlow::Break
            },
        );
        source.attach(Some(&MainContext::ref_thread_default()));
        timer.source = Some(source);
    });
}

extern "C" fn timer_cancel(timer: *mut ffi::SpiceTimer) {
    with_timer(timer.addr(), Timer::cancel);
}

extern "C" fn timer_remove(timer: *mut ffi::SpiceTimer) {
    let removed = TIMERS
        .try_with(|timers| timers.borrow_mut().items.remove(&timer.addr()))
        .ok()
        .flatten();
    if let Some(mut timer) = removed {
        timer.cancel();
    }
}

extern "C" fn watch_update_mask(watch: *mut ffi::SpiceWatch, mask: c_int) {
    let handle = watch.addr();
    with_watch(handle, |watch| watch.set_mask(handle, mask));
}

extern "C" fn watch_remove(watch: *mut ffi::SpiceWatch) {
    let handle = watch.addr();
    let removed = WATCHES
        .try_with(|watches| watches.borrow_mut().items.remove(&handle))
        .ok()
        .flatten();
    if let Some(mut watch) = removed {
        watch.set_mask(handle, 0);
    }
}

extern "C" fn channel_event(event: c_int, _info: *mut ffi::SpiceChannelEventInfo) {
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
        timer_add: Some(api::timer_add::<GlibLoop>),
        timer_start: Some(timer_start),
        timer_cancel: Some(timer_cancel),
        timer_remove: Some(timer_remove),
        watch_add: Some(api::watch_add::<GlibLoop>),
        watch_update_mask: Some(watch_update_mask),
        watch_remove: Some(watch_remove),
        channel_event: Some(channel_event),
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::ffi::c_void;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    use super::*;

    thread_local! {
        /// Timer calls seen on this test's thread.
        static FIRED: Cell<u32> = const { Cell::new(0) };
        /// Watch events seen on this test's thread.
        static SEEN: Cell<c_int> = const { Cell::new(0) };
    }

    extern "C" fn count(_opaque: *mut c_void) {
        FIRED.set(FIRED.get() + 1);
    }

    extern "C" fn count_event(_fd: c_int, event: c_int, _opaque: *mut c_void) {
        SEEN.set(SEEN.get() | event);
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
                let (start, cancel, remove) = (
                    core.timer_start.unwrap(),
                    core.timer_cancel.unwrap(),
                    core.timer_remove.unwrap(),
                );
                let timer = GlibLoop::timer_add(TimerCallback::from_fn(count));
                start(timer, 5);
                spin(&context, || FIRED.get() == 1);
                idle(&context);
                assert_eq!(FIRED.get(), 1, "one shot");
                start(timer, 5);
                cancel(timer);
                idle(&context);
                assert_eq!(FIRED.get(), 1, "cancelled");
                remove(timer);
                start(timer, 1);
                idle(&context);
                assert_eq!(FIRED.get(), 1, "a removed timer is not started");
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
                let (update, remove) =
                    (core.watch_update_mask.unwrap(), core.watch_remove.unwrap());
                let watch = GlibLoop::watch_add(
                    a.as_raw_fd(),
                    ffi::SPICE_WATCH_EVENT_READ,
                    WatchCallback::from_fn(count_event),
                );
                idle(&context);
                assert_eq!(SEEN.get(), 0, "nothing to read yet");
                b.write_all(b"x").unwrap();
                spin(&context, || SEEN.get() != 0);
                assert_eq!(SEEN.get(), ffi::SPICE_WATCH_EVENT_READ);
                SEEN.set(0);
                update(watch, ffi::SPICE_WATCH_EVENT_WRITE);
                spin(&context, || SEEN.get() != 0);
                assert_eq!(
                    SEEN.get() & ffi::SPICE_WATCH_EVENT_WRITE,
                    ffi::SPICE_WATCH_EVENT_WRITE
                );
                remove(watch);
                SEEN.set(0);
                idle(&context);
                assert_eq!(SEEN.get(), 0, "removed");
            })
            .unwrap();
    }
}

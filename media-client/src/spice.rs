//! `media-client --spice HOST:PORT`: the daemon's Spice server as the
//! transport. Spice sessions (spice-client-glib) live on one thread that
//! runs GLib's default main context for the whole process (the library
//! attaches sources to that context, and its objects must die on the
//! thread that made them). A session connects, authenticates (ticket,
//! optionally TLS with a CA), opens the port channel named
//! [`SPICE_PORT_NAME`], and bridges the port's data to one end of a Unix
//! socket pair. The other end is handed to the ordinary connection code, so
//! the engine, the handshake, acknowledgements, liveness and reconnection
//! are exactly those of the socket transport. When either side ends (the
//! Spice connection drops, the daemon closes the port, or the engine ends
//! the connection) the bridge tears the whole session down; the caller's
//! reconnect loop then starts a new one.
//!
//! The crate's safe `PortChannel` lacks the `port-data` signal and
//! `write_async` (spice-client-glib 0.8): the signal is connected by name
//! and the write goes through the `-sys` function.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::ToSocketAddrs;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use client_engine::wire::SPICE_PORT_NAME;
use spice_client_glib::glib::translate::ToGlibPtr;
use spice_client_glib::prelude::*;
use spice_client_glib::{ChannelEvent, MainChannel, PortChannel, Session, ffi};
use spice_client_glib::{gio, glib};

/// How long connecting, authenticating and opening the media port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long what the engine wrote last may take to reach the server once
/// the engine ended the connection.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// `SPICE_PORT_EVENT_CLOSED` (spice-protocol): the daemon ended the
/// connection. (A client cannot send `OPENED`/`CLOSED` itself: connecting
/// the channel is what opens the port on the server, `state(1)`.)
const PORT_EVENT_CLOSED: i32 = 1;

/// Where the daemon's Spice server is and how to log in.
#[derive(Debug, Clone)]
pub struct SpiceTarget {
    /// A Unix socket path (`--spice unix:PATH`), instead of host and port.
    pub unix: Option<PathBuf>,
    /// Host name or address.
    pub host: String,
    /// Port (the TLS port with `ca_file`).
    pub port: String,
    /// The ticket, if the server uses ticketing.
    pub password: Option<String>,
    /// CA certificate (PEM): connect with TLS, verifying the server.
    pub ca_file: Option<PathBuf>,
}

impl SpiceTarget {
    /// `HOST:PORT` or `unix:PATH`, plus the options.
    pub fn parse(
        text: &str,
        password_file: Option<&PathBuf>,
        ca_file: Option<PathBuf>,
    ) -> anyhow::Result<SpiceTarget> {
        let unix = text.strip_prefix("unix:").map(PathBuf::from);
        let (host, port) = match (&unix, text.rsplit_once(':')) {
            (Some(_), _) => ("", ""),
            (None, Some((host, port))) => {
                port.parse::<u16>()
                    .with_context(|| format!("bad Spice port in {text}"))?;
                (host, port)
            }
            (None, None) => bail!("--spice wants HOST:PORT or unix:PATH, got {text}"),
        };
        if unix.is_some() && ca_file.is_some() {
            bail!("Spice TLS (--tls-ca) needs HOST:PORT, not a Unix socket");
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if unix.is_none() && ca_file.is_none() && !is_loopback(host, port) {
            // Without TLS nothing proves the server is the daemon (spec
            // CLI-SEC-4), as with plain TCP.
            bail!(
                "plain Spice is only allowed to a loopback address or a Unix socket; \
                 use --tls-ca (Spice TLS) to reach {host}"
            );
        }
        let password = match password_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            ),
            None => None,
        };
        Ok(SpiceTarget {
            unix,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: port.to_owned(),
            password,
            ca_file,
        })
    }
}

/// Whether every address `host` resolves to is a loopback address.
fn is_loopback(host: &str, port: &str) -> bool {
    let port = port.parse().unwrap_or(0);
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// Connects and opens the media port; returns the socket that carries the
/// port's bytes.
pub fn connect(target: &SpiceTarget) -> anyhow::Result<UnixStream> {
    let target = target.clone();
    bridge(move |id, ours, ready| start_session(id, &target, ours, ready))
}

/// The media port of a Spice session the program runs itself (the
/// viewer's desktop session, when the VM's Spice server offers the port):
/// registered on the main loop's thread, bridged by [`connect_shared`]
/// from any thread, as often as the media connection is made again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedPort(u64);

thread_local! {
    /// The shared ports, on the main loop's thread.
    static SHARED: RefCell<HashMap<u64, PortChannel>> = RefCell::new(HashMap::new());
}

impl SharedPort {
    /// Registers `port` (on the thread that runs GLib's default main
    /// context, see [`default_context_is_run_elsewhere`]).
    pub fn register(port: &PortChannel) -> SharedPort {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        SHARED.with(|m| m.borrow_mut().insert(id, port.clone()));
        SharedPort(id)
    }
}

/// Opens the shared media port `port`; returns the socket that carries its
/// bytes. Ending the connection closes the port's channel, not the session.
pub fn connect_shared(port: SharedPort) -> anyhow::Result<UnixStream> {
    bridge(move |id, ours, ready| {
        let Some(channel) = SHARED.with(|m| m.borrow().get(&port.0).cloned()) else {
            let _ = ready.send(Err("the session's media port is gone".into()));
            return;
        };
        let link = Link::start(id, None, ours, ready);
        let handlers = setup_port(&link, &channel);
        *link.handlers.borrow_mut() = handlers;
    })
}

/// A socket pair between the engine and a link that `start` makes on the
/// Spice thread; waits until the link's port is open.
fn bridge(
    start: impl FnOnce(u64, UnixStream, Sender<Result<(), String>>) + Send + 'static,
) -> anyhow::Result<UnixStream> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let context = spice_thread()?;
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let (ours, theirs) = UnixStream::pair()?;
    let reader = ours.try_clone()?;
    let (ready_tx, ready_rx) = mpsc::channel();
    context.invoke(move || start(id, ours, ready_tx));
    // Engine -> daemon: a plain thread reads the socket and hands the bytes
    // to the Spice thread.
    std::thread::Builder::new()
        .name("spice-bridge".into())
        .spawn(move || pump_engine(id, reader, context))?;
    match ready_rx.recv_timeout(CONNECT_TIMEOUT) {
        Ok(Ok(())) => Ok(theirs),
        Ok(Err(why)) => bail!("{why}"),
        // Dropping `theirs` ends the session.
        Err(_) => bail!("no media port {SPICE_PORT_NAME} within {CONNECT_TIMEOUT:?}"),
    }
}

/// The bridge's state, on the session thread.
struct Link {
    /// Which session (bytes from an old connection's bridge thread must
    /// not reach a new one).
    id: u64,
    /// The session, when the link made it; `None` for the media port of a
    /// session the program runs itself (the viewer's desktop), which must
    /// outlive the link.
    session: Option<Session>,
    /// Signal handlers on a shared port, removed when the link ends.
    handlers: RefCell<Vec<glib::SignalHandlerId>>,
    /// Our end of the socket pair (port data goes in here).
    socket: UnixStream,
    /// The media port, once found.
    port: RefCell<Option<PortChannel>>,
    /// Whether the daemon has opened the port (writes fail before).
    opened: Cell<bool>,
    /// Bytes from the engine waiting for the port to open.
    pending: RefCell<Vec<u8>>,
    /// Tells `connect` the outcome, once.
    ready: RefCell<Option<Sender<Result<(), String>>>>,
    ended: Cell<bool>,
}

thread_local! {
    /// The live sessions, on the Spice thread.
    static LINKS: RefCell<HashMap<u64, Rc<Link>>> = RefCell::new(HashMap::new());
}

impl Link {
    /// A new link `id`, registered on the Spice thread; `ready` hears
    /// whether its port opens.
    fn start(
        id: u64,
        session: Option<Session>,
        socket: UnixStream,
        ready: Sender<Result<(), String>>,
    ) -> Rc<Link> {
        let link = Rc::new(Link {
            id,
            session,
            handlers: RefCell::default(),
            socket,
            port: RefCell::new(None),
            opened: Cell::new(false),
            pending: RefCell::new(Vec::new()),
            ready: RefCell::new(Some(ready)),
            ended: Cell::new(false),
        });
        LINKS.with(|l| l.borrow_mut().insert(id, Rc::clone(&link)));
        link
    }

    fn end(&self, why: &str) {
        if self.ended.replace(true) {
            return;
        }
        if let Some(ready) = self.ready.borrow_mut().take() {
            let _ = ready.send(Err(why.to_owned()));
        } else {
            log::info!("spice: {why}");
        }
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        match &self.session {
            Some(session) => session.disconnect(),
            None => {
                // A shared port: the desktop's session stays; the port's
                // channel closes, so that the daemon sees the client leave,
                // and opens again for the next link.
                if let Some(port) = self.port.borrow().as_ref() {
                    for id in self.handlers.borrow_mut().drain(..) {
                        glib::prelude::ObjectExt::disconnect(port, id);
                    }
                    ChannelExt::disconnect(port, ChannelEvent::Closed);
                }
            }
        }
        // Released later, from the loop, not inside this signal handler.
        let id = self.id;
        glib::idle_add_local_once(move || {
            LINKS.with(|l| l.borrow_mut().remove(&id));
        });
    }

    /// The engine ended the connection: what it wrote goes out before the
    /// session ends. `write_async` only queues a message on the channel, and
    /// disconnecting the session drops what is still queued: the last
    /// acknowledgements and `EndOfStream` that `--once` sends just before it
    /// closes would be lost, and the guest would see the client leave
    /// before the end of its streams.
    fn finish(self: &Rc<Self>, why: &'static str) {
        let port = self.port.borrow().clone();
        let Some(port) = port.filter(|_| self.opened.get() && !self.ended.get()) else {
            self.end(why);
            return;
        };
        let end = |weak: Weak<Link>| {
            move || {
                if let Some(link) = weak.upgrade() {
                    link.end(why);
                }
            }
        };
        let flushed = end(Rc::downgrade(self));
        port.flush_async(None::<&gio::Cancellable>, move |result| {
            if let Err(e) = result {
                log::warn!("spice: flushing the media port: {e}");
            }
            flushed();
        });
        // A server that takes nothing more must not keep the session.
        glib::timeout_add_local_once(FLUSH_TIMEOUT, end(Rc::downgrade(self)));
    }

    /// The port is usable: flush what waited and report success.
    fn maybe_ready(&self) {
        if !self.opened.get() || self.port.borrow().is_none() {
            return;
        }
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        if !pending.is_empty() {
            self.write(pending);
        }
        if let Some(ready) = self.ready.borrow_mut().take() {
            log::info!("spice: media port {SPICE_PORT_NAME} open");
            let _ = ready.send(Ok(()));
        }
    }

    /// Bytes from the engine to the daemon.
    fn send(&self, bytes: Vec<u8>) {
        if self.opened.get() && self.port.borrow().is_some() {
            self.write(bytes);
        } else {
            self.pending.borrow_mut().extend_from_slice(&bytes);
        }
    }

    fn write(&self, bytes: Vec<u8>) {
        let Some(port) = self.port.borrow().clone() else {
            return;
        };
        let mut data = Box::new(bytes);
        let (ptr, len) = (data.as_mut_ptr(), data.len());
        let port_ptr: *mut ffi::SpicePortChannel = port.to_glib_none().0;
        // SAFETY: `port_ptr` is a live channel (we hold a reference); the
        // buffer is the boxed Vec, kept alive (and freed) by `write_done`,
        // which GLib calls exactly once on this thread.
        unsafe {
            ffi::spice_port_channel_write_async(
                port_ptr,
                ptr,
                len,
                std::ptr::null_mut(),
                Some(write_done),
                Box::into_raw(data).cast(),
            )
        };
    }
}

unsafe extern "C" fn write_done(
    source: *mut glib::gobject_ffi::GObject,
    result: *mut spice_client_glib::gio::ffi::GAsyncResult,
    data: glib::ffi::gpointer,
) {
    // SAFETY: `data` is the box `Link::write` leaked for this write.
    drop(unsafe { Box::from_raw(data.cast::<Vec<u8>>()) });
    let mut error: *mut glib::ffi::GError = std::ptr::null_mut();
    // SAFETY: `source` is the port channel the write was started on and
    // `result` its result; `error` receives an owned GError or stays NULL.
    let written =
        unsafe { ffi::spice_port_channel_write_finish(source.cast(), result, &mut error) };
    if !error.is_null() {
        // SAFETY: an owned GError returned by the call above.
        let error: glib::Error = unsafe { glib::translate::from_glib_full(error) };
        log::warn!("spice: port write failed ({written}): {error}");
        // The session that made the write ends with its connection.
    }
}

/// Connects the link to `port`'s signals and connects the channel; returns
/// the signal handlers.
fn setup_port(link: &Rc<Link>, port: &PortChannel) -> Vec<glib::SignalHandlerId> {
    let mut ids = Vec::new();
    let weak = Rc::downgrade(link);
    ids.push(port.connect_port_name_notify(move |port| {
        let Some(link) = weak.upgrade() else { return };
        if port.port_name().as_deref() == Some(SPICE_PORT_NAME) {
            *link.port.borrow_mut() = Some(port.clone());
            link.opened.set(port.is_port_opened());
            link.maybe_ready();
        }
    }));
    let weak = Rc::downgrade(link);
    ids.push(port.connect_port_opened_notify(move |port| {
        let Some(link) = weak.upgrade() else { return };
        if port.port_name().as_deref() == Some(SPICE_PORT_NAME) {
            link.opened.set(port.is_port_opened());
            link.maybe_ready();
        }
    }));
    let weak = Rc::downgrade(link);
    ids.push(port.connect_port_event(move |port, event| {
        let Some(link) = weak.upgrade() else { return };
        if event == PORT_EVENT_CLOSED && port.port_name().as_deref() == Some(SPICE_PORT_NAME) {
            link.end("the daemon closed the media port");
        }
    }));
    let weak = Rc::downgrade(link);
    ids.push(port.connect_local("port-data", false, move |args| {
        let link = weak.upgrade()?;
        let data = args.get(1)?.get::<glib::Pointer>().ok()?;
        let size = usize::try_from(args.get(2)?.get::<i32>().ok()?).ok()?;
        let is_media = args
            .first()
            .and_then(|a| a.get::<PortChannel>().ok())
            .is_some_and(|p| p.port_name().as_deref() == Some(SPICE_PORT_NAME));
        if !is_media || data.is_null() || size == 0 {
            return None;
        }
        // SAFETY: the signal's contract: `data` holds `size` bytes for the
        // duration of the emission.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) };
        if (&link.socket).write_all(bytes).is_err() {
            link.end("the engine closed the connection");
        }
        None
    }));
    let weak = Rc::downgrade(link);
    ids.push(port.connect_channel_event(move |port, event| {
        let Some(link) = weak.upgrade() else { return };
        let media = port.port_name().as_deref() == Some(SPICE_PORT_NAME);
        if media && event != ChannelEvent::Opened {
            link.end(&format!("media port channel: {event:?}"));
        }
    }));
    if port.port_name().as_deref() == Some(SPICE_PORT_NAME) {
        // Named already: a port of a session that was running before.
        *link.port.borrow_mut() = Some(port.clone());
        link.opened.set(port.is_port_opened());
        link.maybe_ready();
    }
    if !ChannelExt::connect(port) {
        log::warn!("spice: cannot connect a port channel");
    }
    ids
}

/// Whether GLib's default main context is running (a thread of ours, or
/// the program's own main loop, see [`default_context_is_run_elsewhere`]).
static STARTED: Mutex<bool> = Mutex::new(false);

/// The program runs GLib's default main context itself (the viewer's GTK
/// main loop): the Spice sessions live there, and no thread of ours is
/// started for them. Call it before the first [`connect`].
pub fn default_context_is_run_elsewhere() {
    *STARTED.lock().unwrap_or_else(|p| p.into_inner()) = true;
}

/// The thread that owns GLib's default main context for the process:
/// every Spice session lives and dies on it (GObjects and their signal
/// closures must be released on the thread that made them).
fn spice_thread() -> anyhow::Result<&'static glib::MainContext> {
    static CONTEXT: OnceLock<glib::MainContext> = OnceLock::new();
    let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
    let context = CONTEXT.get_or_init(glib::MainContext::default);
    if !*started {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("spice-client".into())
            .spawn(move || {
                let context = glib::MainContext::default();
                let main_loop = glib::MainLoop::new(Some(&context), false);
                let owned = context.with_thread_default(|| {
                    let _ = tx.send(true);
                    main_loop.run();
                });
                if owned.is_err() {
                    let _ = tx.send(false);
                }
            })?;
        if !rx.recv().unwrap_or(false) {
            bail!("cannot own GLib's default main context");
        }
        *started = true;
    }
    Ok(context)
}

/// Starts a session (on the Spice thread).
fn start_session(
    id: u64,
    target: &SpiceTarget,
    ours: UnixStream,
    ready: Sender<Result<(), String>>,
) {
    let session = Session::new();
    match (&target.unix, &target.ca_file) {
        (Some(path), _) => session.set_unix_path(Some(&path.to_string_lossy())),
        (None, Some(ca)) => {
            session.set_host(Some(&target.host));
            session.set_tls_port(Some(&target.port));
            session.set_ca_file(Some(&ca.to_string_lossy()));
        }
        (None, None) => {
            session.set_host(Some(&target.host));
            session.set_port(Some(&target.port));
        }
    }
    if let Some(password) = &target.password {
        session.set_password(Some(password));
    }
    let link = Link::start(id, Some(session.clone()), ours, ready);
    let weak = Rc::downgrade(&link);
    session.connect_channel_new(move |_, channel| {
        let Some(link) = weak.upgrade() else { return };
        if let Some(port) = channel.downcast_ref::<PortChannel>() {
            setup_port(&link, port);
        } else if let Some(main) = channel.downcast_ref::<MainChannel>() {
            let weak = Rc::downgrade(&link);
            main.connect_channel_event(move |_, event| {
                let Some(link) = weak.upgrade() else { return };
                match event {
                    ChannelEvent::Opened => log::debug!("spice: main channel open"),
                    ChannelEvent::ErrorAuth => link.end("Spice authentication failed"),
                    other => link.end(&format!("Spice main channel: {other:?}")),
                }
            });
        }
    });
    let weak = Rc::downgrade(&link);
    session.connect_disconnected(move |_| {
        if let Some(link) = weak.upgrade() {
            link.end("Spice session disconnected");
        }
    });
    if !session.connect() {
        link.end("cannot start the Spice connection");
    }
}

/// Runs `f` on the link of session `id`, if it still exists (Spice thread).
fn with_link(id: u64, f: impl FnOnce(&Rc<Link>)) {
    let link = LINKS.with(|l| l.borrow().get(&id).cloned());
    if let Some(link) = link {
        f(&link);
    }
}

/// Reads what the engine writes and hands it to session `id` on the Spice
/// thread, until the socket ends; then ends the session.
fn pump_engine(id: u64, mut reader: UnixStream, context: &glib::MainContext) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        if n == 0 {
            context.invoke(move || with_link(id, |link| link.finish("connection ended")));
            return;
        }
        let bytes = buf[..n].to_vec();
        context.invoke(move || with_link(id, |link| link.send(bytes)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = SpiceTarget::parse("127.0.0.1:5930", None, None).unwrap();
        assert_eq!((t.host.as_str(), t.port.as_str()), ("127.0.0.1", "5930"));
        let t = SpiceTarget::parse("[::1]:5930", None, None).unwrap();
        assert_eq!(t.host, "::1");
        let t = SpiceTarget::parse("unix:/run/m.spice", None, None).unwrap();
        assert_eq!(t.unix, Some(PathBuf::from("/run/m.spice")));
        let tls = SpiceTarget::parse("10.1.2.3:5931", None, Some("ca.pem".into())).unwrap();
        assert_eq!(tls.ca_file, Some(PathBuf::from("ca.pem")));
        // Plain Spice off loopback: nothing authenticates the daemon.
        assert!(SpiceTarget::parse("10.1.2.3:5930", None, None).is_err());
        assert!(SpiceTarget::parse("unix:/x", None, Some("ca.pem".into())).is_err());
        assert!(SpiceTarget::parse("127.0.0.1", None, None).is_err());
        assert!(SpiceTarget::parse("127.0.0.1:x", None, None).is_err());
    }
}

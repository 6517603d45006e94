//! The Spice uplink: the daemon's own Spice server (libspice-server, the
//! library QEMU uses), because QEMU offers no way for another process to
//! write into QEMU's Spice server. It has no display, only a char device of
//! subtype "port" named `org.spice-space.media-redir.0` (spec 10.2), which
//! the Spice client finds through the main channel. The port data is the
//! socket uplink's wire protocol, unchanged: this module only provides the
//! byte stream ([`PortStream`]) and hands each client connection to the
//! socket uplink's acceptor, so the protocol, flow control and buffer
//! completion are the same code.
//!
//! - [`ffi`]: the libspice-server declarations;
//! - [`api`]: the safe wrapper over them, where all the `unsafe` is;
//! - [`core`]: libspice-server's timers and watches on a GLib main context;
//! - [`chardev`]: the port device, client arrival and departure;
//! - [`port_stream`]: one connection's bytes, and the one payload copy;
//! - [`options`]: `-spice`-style options.

mod api;
mod chardev;
mod core;
mod ffi;
pub mod options;
pub mod port_stream;

use std::ffi::CString;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;

use glib::{MainContext, MainLoop};

pub use options::{SpiceError, SpiceOptions};
pub use port_stream::PortStream;

use crate::counters::Counters;
use crate::uplink::stream::ClientStream;

/// A running Spice server (on a thread of its own).
pub struct SpiceServer {
    context: MainContext,
    main_loop: MainLoop,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for SpiceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpiceServer").finish_non_exhaustive()
    }
}

fn cstring(text: &str) -> Result<CString, SpiceError> {
    CString::new(text).map_err(|_| SpiceError::BadOption(text.to_owned()))
}

fn path_cstring(path: &std::path::Path) -> Result<CString, SpiceError> {
    cstring(&path.to_string_lossy())
}

/// The settings as C strings, checked before the thread starts.
struct Settings {
    addr: Option<CString>,
    password: Option<CString>,
    tls: Option<[CString; 3]>,
}

impl Settings {
    fn new(opts: &SpiceOptions) -> Result<Settings, SpiceError> {
        let tls = match &opts.x509_dir {
            Some(dir) => Some([
                path_cstring(&dir.join("ca-cert.pem"))?,
                path_cstring(&dir.join("server-cert.pem"))?,
                path_cstring(&dir.join("server-key.pem"))?,
            ]),
            None => None,
        };
        if let Some(dir) = &opts.x509_dir {
            for name in ["ca-cert.pem", "server-cert.pem", "server-key.pem"] {
                if !dir.join(name).is_file() {
                    return Err(SpiceError::Server(format!(
                        "x509-dir {} has no {name}",
                        dir.display()
                    )));
                }
            }
        }
        Ok(Settings {
            addr: opts.addr.as_deref().map(cstring).transpose()?,
            password: opts.password()?.as_deref().map(cstring).transpose()?,
            tls,
        })
    }
}

impl SpiceServer {
    /// Starts a Spice server with the media port; client connections come
    /// out of the returned receiver.
    pub fn start(
        opts: &SpiceOptions,
        counters: Arc<Counters>,
    ) -> Result<(SpiceServer, Receiver<ClientStream>), SpiceError> {
        let settings = Settings::new(opts)?;
        let opts = opts.clone();
        let context = MainContext::new();
        let main_loop = MainLoop::new(Some(&context), false);
        let (accept_tx, accept_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread_context = context.clone();
        let thread_loop = main_loop.clone();
        let thread = thread::Builder::new()
            .name("spice-server".into())
            .spawn(move || {
                let run = thread_context.with_thread_default(|| {
                    let port = chardev::Port::register(thread_context.clone(), accept_tx, counters);
                    let started = init_server(&opts, &settings, port.device());
                    let ok = started.is_ok();
                    let _ = ready_tx.send(started);
                    if ok {
                        thread_loop.run();
                    }
                    port.close();
                });
                if run.is_err() {
                    log::error!("spice: cannot own the Spice thread's main context");
                }
            })
            .map_err(|e| SpiceError::Server(format!("cannot start the Spice thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok((
                SpiceServer {
                    context,
                    main_loop,
                    thread: Mutex::new(Some(thread)),
                },
                accept_rx,
            )),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(SpiceError::Server("the Spice thread died".into())),
        }
    }

    /// Stops the server's loop: no client is served any more.
    pub fn shutdown(&self) {
        let main_loop = self.main_loop.clone();
        self.context.invoke(move || main_loop.quit());
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// Creates, configures and starts libspice-server with the port device,
/// on the Spice thread. The server is never destroyed: it lives as long as
/// the daemon (as QEMU's does), and a stopped loop serves nobody.
fn init_server(
    opts: &SpiceOptions,
    settings: &Settings,
    device: api::CharDeviceId,
) -> Result<(), SpiceError> {
    let mut server = api::Server::new()?;
    server.set_addr(settings.addr.as_deref(), opts.unix);
    if let Some(port) = opts.port {
        server.set_port(port)?;
    }
    if let (Some(port), Some([ca, cert, key])) = (opts.tls_port, &settings.tls) {
        server.set_tls(port, ca, cert, key)?;
    }
    if opts.disable_ticketing {
        server.set_noauth();
    }
    server.init(Box::leak(core::interface()))?;
    if let Some(password) = &settings.password {
        server.set_ticket(password)?;
    }
    server.add_char_device(device)?;
    log::info!("spice: serving the media port ({opts:?})");
    Ok(())
}

//! The socket uplink: the wire protocol of `spec/schema/` over a Unix
//! socket, loopback TCP, TCP with TLS and client certificates, or the media
//! port of the daemon's own Spice server. On the plain sockets the payload
//! is written by `writev` straight from guest memory; TLS has to copy it to
//! encrypt it ([`super::tls`]), and libspice-server copies it once into its
//! own buffers (`super::spice`). Only the byte stream differs
//! ([`ClientStream`]): the protocol below is the same.
//!
//! The daemon listens; a client connects and says `Hello` (on the Unix
//! socket it may first wait, silent, for as long as it likes: see
//! [`ClientStream::may_idle_before_hello`]); a client that
//! completes the handshake replaces the one connected (spec, "Client
//! connection"). Each connection has a reader thread (hello, acks, reports,
//! pings) and a writer thread (control messages and samples, in order). A
//! sample's buffer is held, after it is written, until the client's
//! cumulative `Ack` covers it; flushes and disconnects complete what is held.
//!
//! Only the reader ends a connection the client closed or broke: a write
//! that fails (the client is gone, or stuck) shuts the stream down and lets
//! the reader first handle what the client sent before it left. A client
//! that sends its last `Ack`s and `EndOfStream` and closes at once must not
//! lose them because a write happened to notice the close first (spec 7.15,
//! DEV-CONN-4): the guest would see `CLIENT_DISCONNECTED` without the `EOS`
//! and its buffers complete `NO_CLIENT` instead of `OK`.
//!
//! The listening socket and the [`Uplink`] calls are here; the rest has a
//! module each: the state shared by the uplink and its connection threads
//! (`shared`), accepting clients (`accept`), a connection's handshake and
//! reader (`connection`), its writer (`writer`), and the measurement of
//! the link to the client from the writer's pings and the reader's pongs
//! and acknowledgements (`link`).

mod accept;
mod connection;
mod link;
mod shared;
mod writer;

use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::Duration;

use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{self, Message};

pub use super::addr::{ListenAddr, SocketUplinkError};
use super::stream::ClientStream;
use super::tls;
use super::{ClientEvents, Uplink};
use crate::counters::Counters;
use crate::guest_buffer::GuestBuffer;
use accept::{Accepted, spawn_acceptor};
use shared::{Outgoing, Shared, State, enqueue};

/// How long a client has to say `Hello` (and, first, to finish a TLS
/// handshake); on the Unix socket, from its first byte on (a connection
/// there may wait silent: QEMU's `chardev-relay` connects long before a
/// Spice client speaks through it).
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// A client silent for this long is considered gone (it must answer pings).
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// A write blocked this long means the client is stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed write, how long the reader may go on handling what the
/// client sent (a client that keeps talking into a dead connection must not
/// hold the guest's buffers).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Why a connection ended, from the I/O error that ended it: a timeout
/// says that the client stopped (`stopped`, e.g. "the client took no data
/// for 10 s"), not only "Resource temporarily unavailable".
fn io_why(err: &std::io::Error, stopped: &str) -> String {
    match err.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("{stopped}, so it is treated as lost ({err})")
        }
        _ => err.to_string(),
    }
}

/// The socket uplink.
pub struct SocketUplink {
    shared: Arc<Shared>,
    addr: ListenAddr,
    #[cfg(feature = "spice")]
    spice: Option<super::spice::SpiceServer>,
}

impl std::fmt::Debug for SocketUplink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketUplink")
            .field("addr", &self.addr)
            .finish()
    }
}

impl SocketUplink {
    /// Binds `addr` (loading its TLS certificates first, for a TLS
    /// address) and starts accepting clients. `session` is sent in `Welcome`
    /// (it changes when the daemon restarts).
    pub fn listen(
        addr: ListenAddr,
        counters: Arc<Counters>,
        session: u64,
    ) -> Result<SocketUplink, SocketUplinkError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            events: OnceLock::new(),
            counters,
            shutdown: AtomicBool::new(false),
            name: format!("vhost-user-mediaredir {}", env!("CARGO_PKG_VERSION")),
            session,
        });
        let shown = format!("{addr:?}");
        let listen_err = |source| SocketUplinkError::Listen {
            addr: shown.clone(),
            source,
        };
        let tcp = |sockaddr| {
            let listener = TcpListener::bind(sockaddr).map_err(listen_err)?;
            let bound = listener.local_addr().map_err(listen_err)?;
            Ok::<_, SocketUplinkError>((listener, bound))
        };
        #[cfg(feature = "spice")]
        let mut spice = None;
        let addr = match addr {
            #[cfg(feature = "spice")]
            ListenAddr::Spice(opts) => {
                let (server, clients) =
                    super::spice::SpiceServer::start(&opts, Arc::clone(&shared.counters))?;
                spice = Some(server);
                spawn_acceptor(&shared, move || {
                    clients
                        .recv()
                        .map(Accepted::Plain)
                        .map_err(|_| std::io::Error::other("the Spice server stopped"))
                })
                .map_err(listen_err)?;
                ListenAddr::Spice(opts)
            }
            ListenAddr::Unix(path) => {
                let _ = std::fs::remove_file(&path);
                let listener = UnixListener::bind(&path).map_err(listen_err)?;
                spawn_acceptor(&shared, move || {
                    let (s, _) = listener.accept()?;
                    Ok(Accepted::Plain(ClientStream::Unix(s)))
                })
                .map_err(listen_err)?;
                ListenAddr::Unix(path)
            }
            ListenAddr::Tcp(sockaddr) => {
                let (listener, bound) = tcp(sockaddr)?;
                spawn_acceptor(&shared, move || {
                    let (s, _) = listener.accept()?;
                    Ok(Accepted::Plain(ClientStream::Tcp(s)))
                })
                .map_err(listen_err)?;
                ListenAddr::Tcp(bound)
            }
            ListenAddr::Tls(sockaddr, files) => {
                let config = tls::server_config(&files)?;
                let (listener, bound) = tcp(sockaddr)?;
                spawn_acceptor(&shared, move || {
                    let (s, _) = listener.accept()?;
                    Ok(Accepted::Tls(s, Arc::clone(&config)))
                })
                .map_err(listen_err)?;
                ListenAddr::Tls(bound, files)
            }
        };
        Ok(SocketUplink {
            shared,
            addr,
            #[cfg(feature = "spice")]
            spice,
        })
    }

    /// Tells the uplink whom to report client events to.
    pub fn set_events(&self, events: Weak<dyn ClientEvents>) {
        let _ = self.shared.events.set(events);
    }

    /// The address listened on (with the port bound, when port 0 was asked).
    pub fn addr(&self) -> &ListenAddr {
        &self.addr
    }
}

impl Uplink for SocketUplink {
    fn send(&self, msg: Message) {
        let conn = self.shared.lock().current;
        if conn != 0 {
            enqueue(&self.shared, conn, Outgoing::Message(msg));
        }
    }

    fn send_sample(&self, sample: wire::SampleHeader, mut buffer: GuestBuffer) {
        let mut s = self.shared.lock();
        if s.current == 0 {
            drop(s);
            buffer.set_status(Status::NoClient);
            return;
        }
        let book = s.books.entry(sample.stream).or_default();
        book.queued = book.queued.max(sample.seq);
        s.queue.push_back(Outgoing::Sample(sample, buffer));
        drop(s);
        self.shared.wake.notify_all();
    }

    fn cancel(&self, stream: u32, status: Status) {
        let doomed: Vec<GuestBuffer> = {
            let mut s = self.shared.lock();
            let Some(book) = s.books.get_mut(&stream) else {
                return;
            };
            book.cancelled = Some((book.queued, status));
            book.unacked.drain(..).map(|(_, b)| b).collect()
        };
        for mut buf in doomed {
            buf.set_status(status);
        }
    }

    fn forget(&self, stream: u32) {
        let book = {
            let mut s = self.shared.lock();
            let book = s.books.remove(&stream);
            if book.is_some() {
                s.retired.push_back(stream);
                if s.retired.len() > shared::RETIRED_STREAMS {
                    s.retired.pop_front();
                }
            }
            book
        };
        if let Some(book) = book {
            for (_, mut buf) in book.unacked {
                buf.set_status(Status::Cancelled);
            }
        }
    }

    fn drop_client(&self, why: &str) {
        let conn = self.shared.lock().current;
        self.shared.disconnect(conn, why);
    }

    fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        let conn = self.shared.lock().current;
        self.shared.disconnect(conn, "daemon shutting down");
        // Unblock the accept loop.
        match &self.addr {
            ListenAddr::Unix(path) => {
                let _ = std::os::unix::net::UnixStream::connect(path);
                let _ = std::fs::remove_file(path);
            }
            ListenAddr::Tcp(addr) | ListenAddr::Tls(addr, _) => {
                let _ = TcpStream::connect(addr);
            }
            // Stopping the server ends the acceptor's channel.
            #[cfg(feature = "spice")]
            ListenAddr::Spice(_) => {
                if let Some(server) = &self.spice {
                    server.shutdown();
                }
            }
        }
    }
}

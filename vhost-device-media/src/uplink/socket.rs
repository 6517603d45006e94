//! The socket uplink: the wire protocol of `spec/schema/` over a Unix
//! socket, loopback TCP, TCP with TLS and client certificates, or the media
//! port of the daemon's own Spice server. On the plain sockets the payload
//! is written by `writev` straight from guest memory; TLS has to copy it to
//! encrypt it ([`super::tls`]), and libspice-server copies it once into its
//! own buffers (`super::spice`). Only the byte stream differs
//! ([`ClientStream`]): the protocol below is the same.
//!
//! The daemon listens; a client connects and says `Hello`; a client that
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

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{self, FrameReader, Message, PROTOCOL_MAJOR, PROTOCOL_MINOR};
use rustls::ServerConfig;

pub use super::addr::{ListenAddr, SocketUplinkError};
use super::stream::ClientStream;
use super::tls::{self, TlsStream};
use super::{ClientEvents, Uplink};
use crate::counters::{Counters, ErrorKind};
use crate::guest_buffer::GuestBuffer;

/// How long a client has to say `Hello` (and, first, to finish a TLS
/// handshake).
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// A client silent for this long is considered gone (it must answer pings).
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// A write blocked this long means the client is stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The writer pings an idle client this often.
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// After a failed write, how long the reader may go on handling what the
/// client sent (a client that keeps talking into a dead connection must not
/// hold the guest's buffers).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

enum Outgoing {
    Message(Message),
    Sample(wire::SampleHeader, GuestBuffer),
}

/// Per-stream bookkeeping of samples in flight to the client.
#[derive(Default)]
struct StreamBook {
    /// Written, waiting for an ack.
    unacked: VecDeque<(u64, GuestBuffer)>,
    /// Highest cumulative ack seen.
    acked: u64,
    /// Samples up to this seq were cancelled with this status.
    cancelled: Option<(u64, Status)>,
    /// Highest seq handed to the uplink.
    queued: u64,
}

#[derive(Default)]
struct State {
    /// Connection number of the current client (0: none).
    current: u64,
    next_conn: u64,
    stream: Option<Arc<ClientStream>>,
    queue: VecDeque<Outgoing>,
    books: HashMap<u32, StreamBook>,
    /// The current connection's writer failed (when, and why): its reader
    /// ends the connection once it has read what was already sent.
    hung_up: Option<(u64, Instant, String)>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    events: OnceLock<Weak<dyn ClientEvents>>,
    counters: Arc<Counters>,
    shutdown: AtomicBool,
    name: String,
    session: u64,
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

impl State {
    /// When connection `conn` was hung up, if it was.
    fn hung_up_for(&self, conn: u64) -> Option<Instant> {
        self.hung_up
            .as_ref()
            .filter(|(c, _, _)| *c == conn)
            .map(|(_, at, _)| *at)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn events(&self) -> Option<Arc<dyn ClientEvents>> {
        self.events.get().and_then(Weak::upgrade)
    }

    /// Ends connection `conn` if it is the current one: completes every
    /// held buffer with `NO_CLIENT` and tells the device.
    fn disconnect(&self, conn: u64, why: &str) {
        let mut doomed = Vec::new();
        {
            let mut s = self.lock();
            if s.current != conn || conn == 0 {
                return;
            }
            s.current = 0;
            s.hung_up = None;
            if let Some(stream) = s.stream.take() {
                stream.shutdown();
            }
            for item in s.queue.drain(..) {
                if let Outgoing::Sample(_, buf) = item {
                    doomed.push(buf);
                }
            }
            for book in s.books.values_mut() {
                doomed.extend(book.unacked.drain(..).map(|(_, b)| b));
            }
            s.books.clear();
        }
        log::info!("client disconnected: {why}");
        for mut buf in doomed {
            buf.set_status(Status::NoClient);
        }
        self.wake.notify_all();
        if let Some(events) = self.events() {
            events.client_disconnected();
        }
    }

    /// The writer of connection `conn` failed: shuts the stream down, so
    /// that its reader reaches the end of input right after what the client
    /// already sent, and leaves the disconnection to that reader.
    fn hang_up(&self, conn: u64, why: String) {
        let mut s = self.lock();
        if s.current != conn || conn == 0 || s.hung_up.is_some() {
            return;
        }
        if let Some(stream) = &s.stream {
            stream.shutdown();
        }
        s.hung_up = Some((conn, Instant::now(), why));
    }

    /// Why connection `conn` was hung up (`None`: it was not).
    fn hung_up(&self, conn: u64) -> Option<String> {
        let s = self.lock();
        s.hung_up_for(conn)?;
        s.hung_up.as_ref().map(|(_, _, why)| why.clone())
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
            name: format!("vhost-device-media {}", env!("CARGO_PKG_VERSION")),
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
                        .map_err(|_| io::Error::other("the Spice server stopped"))
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

/// A client connection as accepted, before any handshake.
enum Accepted {
    /// A plain socket: the protocol starts at once.
    Plain(ClientStream),
    /// TCP that must complete a TLS handshake first.
    Tls(TcpStream, Arc<ServerConfig>),
}

impl Accepted {
    /// The byte stream the protocol runs on.
    fn open(self, counters: &Arc<Counters>) -> io::Result<ClientStream> {
        match self {
            Accepted::Plain(stream) => Ok(stream),
            Accepted::Tls(sock, config) => {
                let tls = TlsStream::accept(sock, config, Arc::clone(counters), HELLO_TIMEOUT)
                    .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake: {e}")))?;
                Ok(ClientStream::Tls(Arc::new(tls)))
            }
        }
    }
}

/// Accepts clients with `accept` on a thread of its own until shutdown.
fn spawn_acceptor(
    shared: &Arc<Shared>,
    mut accept: impl FnMut() -> io::Result<Accepted> + Send + 'static,
) -> io::Result<()> {
    let shared = Arc::clone(shared);
    thread::Builder::new()
        .name("uplink-accept".into())
        .spawn(move || {
            loop {
                let conn = accept();
                if shared.shutdown.load(Ordering::Relaxed) {
                    break;
                }
                match conn {
                    Ok(conn) => start_connection(&shared, conn),
                    Err(err) => crate::input_warn!("accept failed: {err}"),
                }
            }
        })
        .map(drop)
}

fn start_connection(shared: &Arc<Shared>, conn: Accepted) {
    let reader_shared = Arc::clone(shared);
    let spawn = thread::Builder::new()
        .name("uplink-conn".into())
        .spawn(move || {
            let served = conn
                .open(&reader_shared.counters)
                .and_then(|stream| serve_connection(&reader_shared, stream));
            if let Err(err) = served {
                crate::input_warn!("client connection ended: {err}");
            }
        });
    if let Err(err) = spawn {
        log::error!("cannot start a client connection thread: {err}");
    }
}

/// Reads one whole frame, blocking. Reads never go past the frame's end,
/// so nothing is left over between frames.
pub(crate) fn read_frame<R: Read>(
    stream: &mut R,
    reader: &mut FrameReader,
) -> io::Result<(Message, Vec<u8>)> {
    let mut buf = [0u8; 16 << 10];
    loop {
        if let Some(frame) = reader.next_frame() {
            return Ok(frame);
        }
        let want = reader.wanted().clamp(1, buf.len());
        let n = stream.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed the connection",
            ));
        }
        reader
            .feed(&buf[..n])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    }
}

fn send_fatal(stream: &ClientStream, status: Status, message: &str) {
    let msg = Message::ProtocolError {
        status,
        fatal: true,
        message: message.into(),
    };
    if let Ok(head) = wire::encode_frame(&msg, 0) {
        let _ = stream.write_frame(&head, &[]);
    }
}

fn serve_connection(shared: &Arc<Shared>, stream: ClientStream) -> io::Result<()> {
    stream.set_timeouts(Some(HELLO_TIMEOUT), Some(WRITE_TIMEOUT))?;
    let mut reader_stream = io::BufReader::new(stream.try_clone()?);
    let mut reader = FrameReader::new();
    let caps = match read_frame(&mut reader_stream, &mut reader)? {
        (Message::Hello(hello), _) if hello.major == PROTOCOL_MAJOR => hello.caps,
        (Message::Hello(hello), _) => {
            send_fatal(
                &stream,
                Status::Unsupported,
                &format!("protocol major {} is not supported", hello.major),
            );
            return Err(io::Error::other(
                "client speaks another protocol major version",
            ));
        }
        (other, _) => {
            send_fatal(&stream, Status::Invalid, "the first frame must be Hello");
            return Err(io::Error::other(format!(
                "first frame was not Hello: {other:?}"
            )));
        }
    };
    stream.set_timeouts(Some(READ_TIMEOUT), Some(WRITE_TIMEOUT))?;
    let stream = Arc::new(stream);
    // Replace any current client, then queue Welcome before anything else.
    let previous = shared.lock().current;
    shared.disconnect(previous, "replaced by a new client");
    let conn = {
        let mut s = shared.lock();
        s.next_conn += 1;
        s.current = s.next_conn;
        s.stream = Some(Arc::clone(&stream));
        s.queue
            .push_back(Outgoing::Message(Message::Welcome(wire::Welcome {
                major: PROTOCOL_MAJOR,
                minor: PROTOCOL_MINOR,
                server: shared.name.clone(),
                session: shared.session,
            })));
        s.current
    };
    let writer_shared = Arc::clone(shared);
    let writer_stream = Arc::clone(&stream);
    thread::Builder::new()
        .name("uplink-writer".into())
        .spawn(move || write_loop(&writer_shared, &writer_stream, conn))?;
    log::info!("client connected");
    if let Some(events) = shared.events() {
        events.client_connected(caps);
    }
    let result = read_loop(shared, &mut reader_stream, &mut reader, conn);
    // A failed write is the cause; the end of input it provoked is not.
    let why = match (shared.hung_up(conn), &result) {
        (Some(why), _) => why,
        (None, Ok(())) => "closed".to_string(),
        (None, Err(err)) => err.to_string(),
    };
    shared.disconnect(conn, &why);
    result
}

fn read_loop<R: Read>(
    shared: &Shared,
    stream: &mut R,
    reader: &mut FrameReader,
    conn: u64,
) -> io::Result<()> {
    loop {
        let (msg, payload) = match read_frame(stream, reader) {
            Ok(frame) => frame,
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(err) => return Err(err),
        };
        {
            let s = shared.lock();
            if s.current != conn {
                return Ok(());
            }
            if s.hung_up_for(conn)
                .is_some_and(|at| at.elapsed() >= DRAIN_LIMIT)
            {
                // `serve_connection` reports the failed write.
                return Ok(());
            }
        }
        match msg {
            Message::Ack {
                stream,
                seq,
                status,
            } => {
                if let Err(err) = settle(shared, stream, seq, status) {
                    if let Some(conn) = shared.lock().stream.clone() {
                        send_fatal(&conn, Status::Invalid, &err.to_string());
                    }
                    return Err(err);
                }
            }
            Message::Ping { nonce } => {
                enqueue(shared, conn, Outgoing::Message(Message::Pong { nonce }))
            }
            Message::Pong { .. } => {}
            Message::ProtocolError {
                status,
                fatal,
                message,
            } => {
                crate::input_warn!("client protocol error {status}: {message}");
                if fatal {
                    return Ok(());
                }
            }
            Message::Hello(_) => return Err(io::Error::other("second Hello on one connection")),
            Message::CaptureSample(sample) => {
                if let Some(events) = shared.events() {
                    events.captured(sample, payload);
                }
            }
            other => {
                if let Some(events) = shared.events() {
                    events.client_message(other);
                }
            }
        }
    }
}

/// Completes every held sample of `stream` up to `seq`. An ack for a
/// stream never sent to this client, or beyond the last sample sent, is a
/// protocol violation (spec DEV-SEC-7).
fn settle(shared: &Shared, stream: u32, seq: u64, status: Status) -> io::Result<()> {
    let done: Vec<GuestBuffer> = {
        let mut s = shared.lock();
        let Some(book) = s.books.get_mut(&stream) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("ack for unknown stream {stream}"),
            ));
        };
        if seq > book.queued {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "ack of sample {seq} of stream {stream}, only {} sent",
                    book.queued
                ),
            ));
        }
        book.acked = book.acked.max(seq);
        let mut done = Vec::new();
        while book.unacked.front().is_some_and(|(n, _)| *n <= seq) {
            if let Some((_, buf)) = book.unacked.pop_front() {
                done.push(buf);
            }
        }
        done
    };
    for mut buf in done {
        buf.set_status(status);
    }
    Ok(())
}

fn enqueue(shared: &Shared, conn: u64, item: Outgoing) {
    let mut s = shared.lock();
    if s.current != conn {
        return;
    }
    s.queue.push_back(item);
    drop(s);
    shared.wake.notify_all();
}

fn write_loop(shared: &Shared, stream: &ClientStream, conn: u64) {
    let mut fbb = wire::FlatBufferBuilder::new();
    let mut head = Vec::new();
    loop {
        let item = {
            let mut s = shared.lock();
            loop {
                if s.current != conn {
                    return;
                }
                if let Some(item) = s.queue.pop_front() {
                    break Some(item);
                }
                let (guard, timeout) = shared
                    .wake
                    .wait_timeout(s, PING_INTERVAL)
                    .unwrap_or_else(|p| p.into_inner());
                s = guard;
                if timeout.timed_out() && s.queue.is_empty() {
                    break None;
                }
            }
        };
        let item = item.unwrap_or(Outgoing::Message(Message::Ping { nonce: 0 }));
        let result = match item {
            Outgoing::Message(msg) => match wire::encode_frame_into(&mut fbb, &msg, 0, &mut head) {
                Ok(()) => stream.write_frame(&head, &[]).map(|()| {
                    Counters::add(&shared.counters.wire_bytes, head.len() as u64);
                }),
                Err(err) => {
                    log::error!("refusing to send an invalid message {msg:?}: {err}");
                    Ok(())
                }
            },
            Outgoing::Sample(sample, buffer) => {
                write_sample(shared, stream, &mut fbb, &mut head, conn, sample, buffer)
            }
        };
        if let Err(err) = result {
            shared.counters.error(ErrorKind::Uplink);
            shared.hang_up(conn, format!("write failed: {err}"));
            return;
        }
    }
}

fn write_sample(
    shared: &Shared,
    stream: &ClientStream,
    fbb: &mut wire::FlatBufferBuilder<'static>,
    head: &mut Vec<u8>,
    conn: u64,
    sample: wire::SampleHeader,
    mut buffer: GuestBuffer,
) -> io::Result<()> {
    let (id, seq) = (sample.stream, sample.seq);
    let skip = match shared.lock().books.get(&id) {
        None => Some(Status::Cancelled),
        Some(book) => book
            .cancelled
            .filter(|(upto, _)| seq <= *upto)
            .map(|(_, status)| status),
    };
    if let Some(status) = skip {
        buffer.set_status(status);
        return Ok(());
    }
    let len = buffer.payload_len();
    wire::encode_frame_into(fbb, &Message::Sample(sample), len as usize, head)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    stream.write_frame(head, buffer.slices())?;
    Counters::add(&shared.counters.payload_bytes, u64::from(len));
    Counters::add(
        &shared.counters.wire_bytes,
        head.len() as u64 + u64::from(len),
    );
    let mut s = shared.lock();
    if s.current != conn {
        // The client went away while this sample was being written.
        drop(s);
        buffer.set_status(Status::NoClient);
        return Ok(());
    }
    match s.books.get_mut(&id) {
        Some(book) if seq > book.acked => book.unacked.push_back((seq, buffer)),
        Some(_) => {
            drop(s);
            buffer.set_status(Status::Ok);
        }
        None => {
            drop(s);
            buffer.set_status(Status::Cancelled);
        }
    }
    Ok(())
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
        let book = self.shared.lock().books.remove(&stream);
        if let Some(book) = book {
            for (_, mut buf) in book.unacked {
                buf.set_status(Status::Cancelled);
            }
        }
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

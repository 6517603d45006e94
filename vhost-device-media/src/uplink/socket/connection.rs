//! One client connection: the `Hello` handshake, then the reader (acks,
//! pings, reports, captured samples) until the client leaves or the writer
//! hangs up; the writer runs on a thread of its own (`super::writer`).
//! Frames are read by the wire peer's reader, whatever the byte stream
//! (socket, TLS, the Spice port).

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use mediaredir_peer::{FrameWriter, FramedReader};
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{self, Message, PROTOCOL_MAJOR, PROTOCOL_MINOR};

use super::link::LinkMeter;
use super::shared::{Outgoing, Shared, enqueue};
use super::writer::write_loop;
use super::{DRAIN_LIMIT, HELLO_TIMEOUT, READ_TIMEOUT, WRITE_TIMEOUT};
use crate::guest_buffer::GuestBuffer;
use crate::uplink::stream::ClientStream;

/// The reader side of a connection: whole frames from the buffered stream.
type Frames = FramedReader<io::BufReader<ClientStream>>;

/// Bytes asked of the stream at most per read (the buffered stream reads
/// ahead in bigger chunks).
const READ_CHUNK: usize = 16 << 10;

fn send_fatal(stream: &ClientStream, status: Status, message: &str) {
    let msg = Message::ProtocolError {
        status,
        fatal: true,
        message: message.into(),
    };
    if let Ok(head) = FrameWriter::new().head(&msg, 0) {
        let _ = stream.write_frame(head, &[]);
    }
}

/// Serves a freshly accepted client until it leaves. A connection that may
/// idle (the Unix socket: QEMU's relay waiting for a Spice client) gets
/// the `Hello` timeout from its first byte on; the others from the start.
pub(super) fn serve_connection(shared: &Arc<Shared>, stream: ClientStream) -> io::Result<()> {
    if stream.may_idle_before_hello() {
        stream.set_timeouts(None, Some(WRITE_TIMEOUT))?;
        if !stream.wait_first_byte()? {
            log::debug!("a client connection closed before saying anything");
            return Ok(());
        }
    }
    stream.set_timeouts(Some(HELLO_TIMEOUT), Some(WRITE_TIMEOUT))?;
    let mut frames = FramedReader::new(io::BufReader::new(stream.try_clone()?), READ_CHUNK);
    let caps = match frames.read_frame()? {
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
        s.link = Some(LinkMeter::new(Instant::now()));
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
    let result = read_loop(shared, &mut frames, conn);
    // A failed write is the cause; the end of input it provoked is not.
    let why = match (shared.hung_up(conn), &result) {
        (Some(why), _) => why,
        (None, Ok(())) => "closed".to_string(),
        (None, Err(err)) => {
            let stopped = format!("the client sent nothing for {} s", READ_TIMEOUT.as_secs());
            super::io_why(err, &stopped)
        }
    };
    shared.disconnect(conn, &why);
    result
}

fn read_loop(shared: &Shared, frames: &mut Frames, conn: u64) -> io::Result<()> {
    loop {
        let (msg, payload) = match frames.next_frame() {
            Ok(Some(frame)) => frame,
            // The client closed (between frames or not, with or without
            // TLS's close_notify): what it sent has been handled.
            Ok(None) => return Ok(()),
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
            Message::Pong { nonce } => {
                let measured = {
                    let mut s = shared.lock();
                    let inflight = s.inflight_bytes();
                    s.link
                        .as_mut()
                        .and_then(|link| link.pong(nonce, Instant::now(), inflight))
                };
                if let (Some(quality), Some(events)) = (measured, shared.events()) {
                    events.link_quality(quality);
                }
            }
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
/// protocol violation (spec DEV-SEC-7); one for a stream the guest has
/// destroyed since is the client's late answer, and is ignored.
fn settle(shared: &Shared, stream: u32, seq: u64, status: Status) -> io::Result<()> {
    let done: Vec<GuestBuffer> = {
        let mut s = shared.lock();
        if !s.books.contains_key(&stream) && s.retired.contains(&stream) {
            log::debug!("ack {seq} for destroyed stream {stream} ignored");
            return Ok(());
        }
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
        if status == Status::Ok
            && let Some(link) = s.link.as_mut()
        {
            link.acked(done.iter().map(|b| u64::from(b.payload_len())).sum());
        }
        done
    };
    for mut buf in done {
        buf.set_status(status);
    }
    Ok(())
}

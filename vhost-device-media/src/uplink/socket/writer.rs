//! A connection's writer thread: control messages and samples in queue
//! order, each sample's payload written straight from guest memory and its
//! buffer then held until the client's `Ack`; pings when idle. A failed
//! write hangs the connection up and leaves its end to the reader.

use std::io;
use std::time::Instant;

use mediaredir_peer::FrameWriter;
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{self, Message};

use super::link::{LINK_PING_INTERVAL, PONG_TIMEOUT};
use super::shared::{Outgoing, Shared};
use super::{WRITE_TIMEOUT, io_why};
use crate::counters::{Counters, ErrorKind};
use crate::guest_buffer::GuestBuffer;
use crate::uplink::stream::ClientStream;

/// Writes what is queued for connection `conn` until it ends, with a ping
/// every [`LINK_PING_INTERVAL`] (the keep-alive and the link measurement).
pub(super) fn write_loop(shared: &Shared, stream: &ClientStream, conn: u64) {
    let mut frames = FrameWriter::new();
    let mut next_ping = Instant::now() + LINK_PING_INTERVAL;
    loop {
        let item = {
            let mut s = shared.lock();
            loop {
                if s.current != conn {
                    return;
                }
                let now = Instant::now();
                if now >= next_ping {
                    next_ping = now + LINK_PING_INTERVAL;
                    break None;
                }
                if let Some(item) = s.queue.pop_front() {
                    break Some(item);
                }
                let (guard, _) = shared
                    .wake
                    .wait_timeout(s, next_ping - now)
                    .unwrap_or_else(|p| p.into_inner());
                s = guard;
            }
        };
        let item = match item.map_or_else(|| ping(shared), |item| Ok(Some(item))) {
            Ok(Some(item)) => item,
            Ok(None) => continue,
            Err(why) => {
                shared.counters.error(ErrorKind::Uplink);
                shared.hang_up(conn, why);
                return;
            }
        };
        let result = match item {
            Outgoing::Message(msg) => match frames.head(&msg, 0) {
                Ok(head) => stream.write_frame(head, &[]).map(|()| {
                    Counters::add(&shared.counters.wire_bytes, head.len() as u64);
                }),
                Err(err) => {
                    log::error!("refusing to send an invalid message {msg:?}: {err}");
                    Ok(())
                }
            },
            Outgoing::Sample(sample, buffer) => {
                write_sample(shared, stream, &mut frames, conn, sample, buffer)
            }
        };
        if let Err(err) = result {
            shared.counters.error(ErrorKind::Uplink);
            let stopped = format!("the client took no data for {} s", WRITE_TIMEOUT.as_secs());
            shared.hang_up(conn, format!("write failed: {}", io_why(&err, &stopped)));
            return;
        }
    }
}

/// The ping that is due, if the last one was answered; tells the device
/// how long an unanswered one has waited, and gives up on a client that
/// answered none for [`PONG_TIMEOUT`] (WIRE-8).
fn ping(shared: &Shared) -> Result<Option<Outgoing>, String> {
    let (nonce, waiting) = {
        let mut s = shared.lock();
        let inflight = s.inflight_bytes();
        match s.link.as_mut() {
            Some(link) => link.ping(Instant::now(), inflight),
            None => return Ok(None),
        }
    };
    if let Some(quality) = waiting {
        if let Event::LinkQuality { rtt_ns, .. } = quality
            && u128::from(rtt_ns) >= PONG_TIMEOUT.as_nanos()
        {
            return Err(format!(
                "the client answered no Ping for {} s, so it is treated as lost",
                PONG_TIMEOUT.as_secs()
            ));
        }
        if let Some(events) = shared.events() {
            events.link_quality(quality);
        }
    }
    Ok(nonce.map(|nonce| Outgoing::Message(Message::Ping { nonce })))
}

fn write_sample(
    shared: &Shared,
    stream: &ClientStream,
    frames: &mut FrameWriter,
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
    let head = frames
        .head(&Message::Sample(sample), len as usize)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if let Err(err) = stream.write_frame(head, buffer.slices()) {
        // The client went away while this sample was being written: a
        // buffer held when the client disconnects completes NO_CLIENT
        // (spec 7.9), so that the driver waits for the client to come
        // back (DRV-DATA-5) rather than seeing an I/O error.
        buffer.set_status(Status::NoClient);
        return Err(err);
    }
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

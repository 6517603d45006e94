//! One Spice client's byte stream, as the socket uplink's protocol threads
//! see it ([`crate::uplink::stream::ClientStream::Spice`]).
//!
//! libspice-server pulls the bytes to send through its char device's
//! `read` callback, on the Spice thread, into its own message buffers. So
//! `write_frame` does not copy: it publishes pointers to the frame (the
//! header and the payload slices in guest memory), pokes the Spice thread,
//! and blocks until the read callbacks have copied all of it; that copy,
//! made by the Spice API into its own buffers, is the only one and is
//! counted in `payload_bytes_copied` (header bytes are not payload). Bytes
//! from the client (acks, reports) arrive through the `write` callback
//! into a bounded queue that [`Read`] drains.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::counters::Counters;
use crate::guest_buffer::RawSlice;

/// Most bytes from the client held unread; beyond this the `write`
/// callback takes fewer bytes and libspice-server retries later.
const INBOUND_LIMIT: usize = 1 << 20;

/// Pokes the Spice thread to ask libspice-server to read.
pub(crate) trait Waker: Send + Sync {
    /// Asks for `spice_server_char_device_wakeup` on the Spice thread.
    fn wake(&self);
    /// Tells the Spice client the port closed (the daemon ended this
    /// connection), unless a newer connection replaced this one.
    fn closed_by_daemon(&self, stream: &PortStream);
}

/// The frame being sent: segment 0 is the header, the rest payload. The
/// pointers refer to memory the writer thread keeps alive and unchanged
/// while the frame is published: `write_frame` does not return until the
/// frame is consumed or withdrawn, under the lock that guards it.
struct Outgoing {
    segments: Vec<RawSlice>,
    segment: usize,
    offset: usize,
}

#[derive(Default)]
struct State {
    closed: bool,
    out: Option<Outgoing>,
    inbound: VecDeque<u8>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// One client connection on the Spice port.
pub struct PortStream {
    state: Mutex<State>,
    changed: Condvar,
    waker: Arc<dyn Waker>,
    counters: Arc<Counters>,
    /// Bytes handed to libspice-server so far (progress of the pump).
    consumed: AtomicU64,
    /// `read` callbacks that returned data (for the debug log).
    reads: AtomicU64,
}

impl std::fmt::Debug for PortStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortStream").finish_non_exhaustive()
    }
}

impl PortStream {
    pub(crate) fn new(waker: Arc<dyn Waker>, counters: Arc<Counters>) -> PortStream {
        PortStream {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            waker,
            counters,
            consumed: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `head` then `payload`, returning once libspice-server has
    /// copied every byte (or failing when the connection closes or the
    /// write timeout passes).
    pub fn write_frame(&self, head: &[u8], payload: &[RawSlice]) -> io::Result<()> {
        let mut segments = Vec::with_capacity(payload.len() + 1);
        segments.push(RawSlice {
            ptr: head.as_ptr(),
            len: head.len(),
        });
        segments.extend(payload.iter().filter(|s| s.len > 0).copied());
        let mut s = self.lock();
        if s.closed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "Spice port closed",
            ));
        }
        s.out = Some(Outgoing {
            segments,
            segment: 0,
            offset: 0,
        });
        let deadline = s.write_timeout.map(|t| Instant::now() + t);
        drop(s);
        self.waker.wake();
        let mut s = self.lock();
        loop {
            if s.out.is_none() {
                return Ok(());
            }
            if s.closed {
                s.out = None;
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "Spice port closed",
                ));
            }
            s = match deadline {
                None => self.changed.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        s.out = None;
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "Spice client does not take data",
                        ));
                    }
                    self.changed
                        .wait_timeout(s, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    /// Whether a frame waits to be read by libspice-server.
    pub(crate) fn has_pending(&self) -> bool {
        self.lock().out.is_some()
    }

    /// Bytes handed to libspice-server so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed.load(Ordering::Relaxed)
    }

    /// The char device's `read`: copies what is pending into `buf` (the
    /// Spice API's own buffer) and returns how many bytes it copied.
    pub(crate) fn pull(&self, buf: &mut [u8]) -> usize {
        let mut s = self.lock();
        let Some(out) = s.out.as_mut() else {
            return 0;
        };
        let mut n = 0;
        let mut payload = 0u64;
        while n < buf.len() && out.segment < out.segments.len() {
            let seg = out.segments[out.segment];
            let take = (seg.len - out.offset).min(buf.len() - n);
            let from = seg.ptr.wrapping_add(out.offset);
            // SAFETY: the segment lies in memory the writer keeps alive
            // while the frame is published (see `Outgoing`), so `from` has
            // `take` readable bytes (`offset + take` stays within it);
            // `buf[n..]` is libspice-server's buffer with at least `take`
            // bytes left, which cannot overlap guest memory or the writer's
            // header.
            unsafe { std::ptr::copy_nonoverlapping(from, buf[n..].as_mut_ptr(), take) };
            if out.segment > 0 {
                payload += take as u64;
            }
            n += take;
            out.offset += take;
            if out.offset == seg.len {
                out.segment += 1;
                out.offset = 0;
            }
        }
        if out.segment == out.segments.len() {
            s.out = None;
            drop(s);
            self.changed.notify_all();
        }
        Counters::add(&self.counters.payload_bytes_copied, payload);
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        if n > 0 {
            self.reads.fetch_add(1, Ordering::Relaxed);
        }
        n
    }

    /// The char device's `write`: queues bytes from the client; returns
    /// how many it took.
    pub(crate) fn push(&self, bytes: &[u8]) -> usize {
        let mut s = self.lock();
        if s.closed {
            return bytes.len();
        }
        let take = bytes
            .len()
            .min(INBOUND_LIMIT.saturating_sub(s.inbound.len()));
        s.inbound.extend(&bytes[..take]);
        drop(s);
        self.changed.notify_all();
        take
    }

    /// Ends the connection (the client left): readers see end of file,
    /// writers an error.
    pub(crate) fn close(&self) {
        log::debug!(
            "spice: connection closed after {} bytes in {} read callbacks",
            self.consumed(),
            self.reads.load(Ordering::Relaxed)
        );
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Ends the connection from the daemon's side and tells the client.
    pub fn shutdown(&self) {
        let was_closed = std::mem::replace(&mut self.lock().closed, true);
        self.changed.notify_all();
        if !was_closed {
            self.waker.closed_by_daemon(self);
        }
    }

    /// Sets read and write timeouts.
    pub fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) {
        let mut s = self.lock();
        s.read_timeout = read;
        s.write_timeout = write;
    }
}

impl Read for &PortStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut s = self.lock();
        let deadline = s.read_timeout.map(|t| Instant::now() + t);
        loop {
            if !s.inbound.is_empty() {
                let n = buf.len().min(s.inbound.len());
                for (dst, src) in buf.iter_mut().zip(s.inbound.drain(..n)) {
                    *dst = src;
                }
                return Ok(n);
            }
            if s.closed {
                return Ok(0);
            }
            s = match deadline {
                None => self.changed.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "Spice client silent",
                        ));
                    }
                    self.changed
                        .wait_timeout(s, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoWake;
    impl Waker for NoWake {
        fn wake(&self) {}
        fn closed_by_daemon(&self, _stream: &PortStream) {}
    }

    #[test]
    fn pull_copies_head_then_payload_and_counts_payload_only() {
        let counters = Arc::new(Counters::default());
        let stream = Arc::new(PortStream::new(Arc::new(NoWake), Arc::clone(&counters)));
        let payload = vec![9u8; 100_000];
        let writer = {
            let stream = Arc::clone(&stream);
            let payload = payload.clone();
            std::thread::spawn(move || {
                let slices: Vec<RawSlice> = payload
                    .chunks(7000)
                    .map(|c| RawSlice {
                        ptr: c.as_ptr(),
                        len: c.len(),
                    })
                    .collect();
                stream.write_frame(b"HEAD", &slices)
            })
        };
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        while got.len() < 4 + payload.len() {
            let n = stream.pull(&mut buf);
            got.extend_from_slice(&buf[..n]);
        }
        writer.join().unwrap().unwrap();
        assert_eq!(&got[..4], b"HEAD");
        assert!(got[4..].iter().all(|b| *b == 9));
        assert_eq!(counters.snapshot().payload_bytes_copied, 100_000);
        assert!(!stream.has_pending());
    }

    #[test]
    fn close_fails_the_writer_and_ends_the_reader() {
        let stream = Arc::new(PortStream::new(Arc::new(NoWake), Arc::default()));
        assert_eq!(stream.push(b"ack"), 3);
        let mut buf = [0u8; 8];
        assert_eq!((&*stream).read(&mut buf).unwrap(), 3);
        let writer = {
            let stream = Arc::clone(&stream);
            std::thread::spawn(move || stream.write_frame(b"x", &[]))
        };
        while !stream.has_pending() {
            std::thread::yield_now();
        }
        stream.close();
        assert!(writer.join().unwrap().is_err());
        assert_eq!((&*stream).read(&mut buf).unwrap(), 0);
    }
}

//! One server-side TLS connection, shared by a connection's reader and
//! writer threads.
//!
//! A rustls connection cannot be split into a read half and a write half,
//! so the socket is non-blocking and the connection sits behind a mutex that
//! is never held while waiting: each side takes the lock, moves what it can
//! between the socket and rustls, lets go, and waits in `poll()` for the
//! socket. The reader waits for input (and for room to send records that
//! reading queued, such as a key update); the writer waits for room to send.
//! Timeouts bound each wait, as `SO_RCVTIMEO`/`SO_SNDTIMEO` do on the plain
//! sockets.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection};
use vm_memory::VolatileSlice;

use crate::counters::Counters;
use crate::guest_buffer::RawSlice;

/// Plaintext handed to rustls at once: one full TLS record.
const RECORD: usize = 16 << 10;

#[derive(Debug, Clone, Copy, Default)]
struct Timeouts {
    read: Option<Duration>,
    write: Option<Duration>,
}

/// A TLS connection to a client that presented a valid certificate.
pub struct TlsStream {
    sock: TcpStream,
    conn: Mutex<ServerConnection>,
    /// Serialises frame writers and holds their bounce buffer.
    bounce: Mutex<Vec<u8>>,
    timeouts: Mutex<Timeouts>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("peer", &self.sock.peer_addr().ok())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `poll` events to wait for: `base`, plus room to write when rustls
/// holds records to send.
fn interest(conn: &ServerConnection, base: libc::c_short) -> libc::c_short {
    if conn.wants_write() {
        base | libc::POLLOUT
    } else {
        base
    }
}

impl TlsStream {
    /// Runs the server handshake on `sock`, failing after `timeout`. A
    /// client without a certificate that chains to the configured client CA
    /// fails here (after being sent the alert that says why).
    pub fn accept(
        sock: TcpStream,
        config: Arc<ServerConfig>,
        counters: Arc<Counters>,
        timeout: Duration,
    ) -> io::Result<TlsStream> {
        sock.set_nonblocking(true)?;
        sock.set_nodelay(true)?;
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        let tls = TlsStream {
            sock,
            conn: Mutex::new(conn),
            bounce: Mutex::new(vec![0; RECORD]),
            timeouts: Mutex::new(Timeouts::default()),
            counters,
        };
        let deadline = Instant::now() + timeout;
        loop {
            let events = {
                let mut conn = lock(&tls.conn);
                let flushed = tls.flush(&mut conn)?;
                if !conn.is_handshaking() && flushed {
                    break;
                }
                if !conn.is_handshaking() {
                    libc::POLLOUT
                } else if tls.receive(&mut conn)? {
                    continue;
                } else {
                    interest(&conn, libc::POLLIN)
                }
            };
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::TimedOut, "the TLS handshake timed out")
                })?;
            tls.wait(events, Some(left))?;
        }
        Ok(tls)
    }

    /// Sets the read and write timeouts (how long one wait for the socket
    /// may last).
    pub fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) {
        *lock(&self.timeouts) = Timeouts { read, write };
    }

    /// Sends `close_notify` if there is room, then closes both directions,
    /// waking a blocked reader or writer.
    pub fn shutdown(&self) {
        {
            let mut conn = lock(&self.conn);
            conn.send_close_notify();
            let _ = self.flush(&mut conn);
        }
        let _ = self.sock.shutdown(Shutdown::Both);
    }

    /// Reads decrypted bytes, blocking until some arrive. `Ok(0)` is the
    /// client's `close_notify`; a TCP end without it is `UnexpectedEof`.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let timeout = lock(&self.timeouts).read;
        loop {
            let events = {
                let mut conn = lock(&self.conn);
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) => return Err(err),
                }
                if self.receive(&mut conn)? {
                    continue;
                }
                self.flush(&mut conn)?;
                interest(&conn, libc::POLLIN)
            };
            self.wait(events, timeout)?;
        }
    }

    /// Writes `head` then the payload, encrypted, blocking until rustls has
    /// handed every record to the socket. The payload is copied out of guest
    /// memory into the bounce buffer, and by rustls into its records: both
    /// copies are counted.
    pub fn write_frame(&self, head: &[u8], payload: &[RawSlice]) -> io::Result<()> {
        let timeout = lock(&self.timeouts).write;
        let mut bounce = lock(&self.bounce);
        let bounce = bounce.as_mut_slice();
        let mut fill = head.len().min(RECORD);
        bounce[..fill].copy_from_slice(&head[..fill]);
        if fill < head.len() {
            self.send_plain(bounce, timeout)?;
            self.send_plain(&head[fill..], timeout)?;
            fill = 0;
        }
        for slice in payload {
            let mut done = 0;
            while done < slice.len {
                if fill == RECORD {
                    self.send_plain(bounce, timeout)?;
                    fill = 0;
                }
                let n = (slice.len - done).min(RECORD - fill);
                // SAFETY: `slice` lies in guest memory kept mapped by the
                // GuestBuffer the caller holds, and `done + n <= slice.len`.
                // The VolatileSlice only lives for this copy, which vm-memory
                // does as guest-memory accesses must be done (no Rust
                // reference to the bytes).
                let guest =
                    unsafe { VolatileSlice::new(slice.ptr.wrapping_add(done).cast_mut(), n) };
                guest.copy_to(&mut bounce[fill..fill + n]);
                fill += n;
                done += n;
            }
            // The bounce copy, then rustls's copy into its records.
            Counters::add(&self.counters.payload_bytes_copied, 2 * slice.len as u64);
        }
        self.send_plain(&bounce[..fill], timeout)?;
        self.flush_all(timeout)
    }

    /// Hands `data` to rustls, which encrypts it into records, sending
    /// records whenever rustls's buffer is full.
    fn send_plain(&self, mut data: &[u8], timeout: Option<Duration>) -> io::Result<()> {
        while !data.is_empty() {
            let events = {
                let mut conn = lock(&self.conn);
                let had_room = !conn.wants_write();
                let n = conn.writer().write(data)?;
                if n == 0 && had_room {
                    // Not a full buffer: the connection is closing.
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the TLS connection takes no more data",
                    ));
                }
                data = &data[n..];
                if n > 0 || self.flush(&mut conn)? {
                    continue;
                }
                libc::POLLOUT
            };
            self.wait(events, timeout)?;
        }
        Ok(())
    }

    /// Waits until every record rustls holds went to the socket.
    fn flush_all(&self, timeout: Option<Duration>) -> io::Result<()> {
        loop {
            if self.flush(&mut lock(&self.conn))? {
                return Ok(());
            }
            self.wait(libc::POLLOUT, timeout)?;
        }
    }

    /// Feeds rustls what the socket has and processes it. `Ok(true)` when
    /// something happened (bytes or the end of the stream), `Ok(false)` when
    /// the socket has nothing now.
    fn receive(&self, conn: &mut ServerConnection) -> io::Result<bool> {
        match conn.read_tls(&mut &self.sock) {
            Ok(0) if conn.is_handshaking() => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client closed the connection during the TLS handshake",
            )),
            Ok(0) => Ok(true),
            Ok(_) => match conn.process_new_packets() {
                Ok(_) => Ok(true),
                Err(err) => {
                    // Tell the client why (a certificate alert, say).
                    let _ = self.flush(conn);
                    Err(io::Error::new(io::ErrorKind::InvalidData, err))
                }
            },
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(err) => Err(err),
        }
    }

    /// Sends what records rustls holds until the socket is full. `Ok(true)`
    /// when nothing is left to send.
    fn flush(&self, conn: &mut ServerConnection) -> io::Result<bool> {
        while conn.wants_write() {
            match conn.write_tls(&mut &self.sock) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "client socket closed",
                    ));
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(true)
    }

    /// Waits for `events` on the socket (or an error or hang-up) for at
    /// most `timeout`.
    fn wait(&self, events: libc::c_short, timeout: Option<Duration>) -> io::Result<()> {
        let mut fds = libc::pollfd {
            fd: self.sock.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = timeout.map_or(-1, |t| {
            libc::c_int::try_from(t.as_millis().max(1)).unwrap_or(libc::c_int::MAX)
        });
        // SAFETY: `fds` is one valid pollfd that outlives the call.
        let n = unsafe { libc::poll(&mut fds, 1, ms) };
        match n {
            0 => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the TLS client socket timed out",
            )),
            n if n < 0 => {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    Ok(())
                } else {
                    Err(err)
                }
            }
            _ => Ok(()),
        }
    }
}

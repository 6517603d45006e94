//! TLS 1.3 over TCP (spec 10.2, WIRE-10): one stream type for both ends,
//! the daemon's (server, client certificate required) and `media-client`'s
//! (client, presenting its certificate). The configurations are in
//! [`config`].
//!
//! A rustls connection cannot be split into a read half and a write half,
//! while each end reads in one thread and writes in another. So the socket
//! is non-blocking and the connection sits behind a mutex that is never
//! held while waiting: each side takes the lock, moves what it can between
//! the socket and rustls, lets go, and waits in `poll()` for the socket.
//! The reader waits for input (and for room to send records that reading
//! queued, such as a key update); the writer waits for room to send.
//! Timeouts bound each wait, as `SO_RCVTIMEO`/`SO_SNDTIMEO` do on plain
//! sockets. Share it between threads with an `Arc`; `&TlsStream` is
//! [`Read`] and [`Write`].
//!
//! rustls takes plaintext as a `&[u8]`: a caller whose payload lies in
//! memory another party may write (guest memory) copies it into a buffer
//! of its own first (the daemon's TLS uplink does, and counts the copy).

pub mod config;

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

#[derive(Debug, Clone, Copy, Default)]
struct Timeouts {
    read: Option<Duration>,
    write: Option<Duration>,
}

/// A TLS connection whose handshake succeeded.
pub struct TlsStream {
    sock: TcpStream,
    conn: Mutex<Connection>,
    timeouts: Mutex<Timeouts>,
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
fn interest(conn: &Connection, base: PollFlags) -> PollFlags {
    if conn.wants_write() {
        base | PollFlags::OUT
    } else {
        base
    }
}

impl TlsStream {
    /// The server side: runs the handshake on an accepted `sock`, failing
    /// after `timeout`. A client without a certificate that the
    /// configuration accepts fails here (after being sent the alert that
    /// says why).
    ///
    /// # Errors
    /// The socket's errors, `TimedOut`, `InvalidData` for a refused peer.
    pub fn accept(
        sock: TcpStream,
        config: Arc<ServerConfig>,
        timeout: Duration,
    ) -> io::Result<TlsStream> {
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        TlsStream::handshake(sock, conn.into(), timeout)
    }

    /// The client side: runs the handshake with the server `host` (the
    /// name its certificate must carry) on a connected `sock`, failing
    /// after `timeout`.
    ///
    /// # Errors
    /// `InvalidInput` for a `host` that is no server name; as
    /// [`TlsStream::accept`].
    pub fn connect(
        sock: TcpStream,
        host: &str,
        config: Arc<ClientConfig>,
        timeout: Duration,
    ) -> io::Result<TlsStream> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{host} is not a valid server name: {e}"),
            )
        })?;
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        TlsStream::handshake(sock, conn.into(), timeout)
    }

    fn handshake(sock: TcpStream, conn: Connection, timeout: Duration) -> io::Result<TlsStream> {
        sock.set_nonblocking(true)?;
        sock.set_nodelay(true)?;
        let tls = TlsStream {
            sock,
            conn: Mutex::new(conn),
            timeouts: Mutex::new(Timeouts::default()),
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
                    PollFlags::OUT
                } else if tls.receive(&mut conn)? {
                    continue;
                } else {
                    interest(&conn, PollFlags::IN)
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
    /// may last; `None`: no limit).
    pub fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) {
        *lock(&self.timeouts) = Timeouts { read, write };
    }

    /// The TCP socket under the connection.
    pub fn socket(&self) -> &TcpStream {
        &self.sock
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
    /// peer's `close_notify`; a TCP end without it is `UnexpectedEof`.
    ///
    /// # Errors
    /// The socket's errors, `TimedOut` after the read timeout,
    /// `InvalidData` for a TLS error.
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
                interest(&conn, PollFlags::IN)
            };
            self.wait(events, timeout)?;
        }
    }

    /// Hands `data` to rustls, which encrypts it into records, sending
    /// records whenever rustls's buffer is full. What remains buffered goes
    /// out with [`TlsStream::flush_all`].
    ///
    /// # Errors
    /// The socket's errors, `TimedOut` after the write timeout,
    /// `BrokenPipe` when the connection is closing.
    pub fn send_plain(&self, mut data: &[u8]) -> io::Result<()> {
        let timeout = lock(&self.timeouts).write;
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
                PollFlags::OUT
            };
            self.wait(events, timeout)?;
        }
        Ok(())
    }

    /// Waits until every record rustls holds went to the socket.
    ///
    /// # Errors
    /// As [`TlsStream::send_plain`].
    pub fn flush_all(&self) -> io::Result<()> {
        let timeout = lock(&self.timeouts).write;
        loop {
            if self.flush(&mut lock(&self.conn))? {
                return Ok(());
            }
            self.wait(PollFlags::OUT, timeout)?;
        }
    }

    /// Feeds rustls what the socket has and processes it. `Ok(true)` when
    /// something happened (bytes or the end of the stream), `Ok(false)` when
    /// the socket has nothing now.
    fn receive(&self, conn: &mut Connection) -> io::Result<bool> {
        match conn.read_tls(&mut &self.sock) {
            Ok(0) if conn.is_handshaking() => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection during the TLS handshake",
            )),
            Ok(0) => Ok(true),
            Ok(_) => match conn.process_new_packets() {
                Ok(_) => Ok(true),
                Err(err) => {
                    // Tell the peer why (a certificate alert, say).
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
    fn flush(&self, conn: &mut Connection) -> io::Result<bool> {
        while conn.wants_write() {
            match conn.write_tls(&mut &self.sock) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the peer's socket is closed",
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
    fn wait(&self, events: PollFlags, timeout: Option<Duration>) -> io::Result<()> {
        let timeout = timeout
            .map(|t| Timespec::try_from(t.max(Duration::from_millis(1))))
            .transpose()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "timeout too long"))?;
        let mut fds = [PollFd::new(&self.sock, events)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the TLS socket timed out",
            )),
            Ok(_) => Ok(()),
            Err(rustix::io::Errno::INTR) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

impl Read for &TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        TlsStream::read(self, buf)
    }
}

impl Write for &TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send_plain(buf)?;
        self.flush_all()?;
        Ok(buf.len())
    }

    /// Every slice into records, then the records out: one frame's head
    /// and payload share records.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        for buf in bufs {
            self.send_plain(buf)?;
        }
        self.flush_all()?;
        Ok(bufs.iter().map(|b| b.len()).sum())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_all()
    }
}

#[cfg(test)]
mod tests;

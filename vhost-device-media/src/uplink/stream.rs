//! Byte streams to a client: a Unix or TCP socket, with a `writev` that
//! takes payload straight from guest memory (the wire peer's
//! `writev_frame`), or a TLS connection over TCP
//! (which has to copy the payload to encrypt it, see [`super::tls`]), or
//! the media port of the daemon's Spice server (whose API copies the
//! payload once into its own buffers, see `super::spice`).

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use mediaredir_peer::ByteRun;

use super::tls::TlsStream;
use crate::guest_buffer::RawSlice;

/// A connected client socket.
#[derive(Debug)]
pub enum ClientStream {
    /// Unix domain socket.
    Unix(UnixStream),
    /// TCP socket.
    Tcp(TcpStream),
    /// TLS connection over TCP, after a successful handshake.
    Tls(Arc<TlsStream>),
    /// The media port of the daemon's Spice server.
    #[cfg(feature = "spice")]
    Spice(Arc<super::spice::PortStream>),
}

impl ClientStream {
    /// A second handle to the same socket (reader and writer threads).
    pub fn try_clone(&self) -> io::Result<ClientStream> {
        Ok(match self {
            ClientStream::Unix(s) => ClientStream::Unix(s.try_clone()?),
            ClientStream::Tcp(s) => ClientStream::Tcp(s.try_clone()?),
            ClientStream::Tls(s) => ClientStream::Tls(Arc::clone(s)),
            #[cfg(feature = "spice")]
            ClientStream::Spice(s) => ClientStream::Spice(Arc::clone(s)),
        })
    }

    /// Closes both directions, waking a blocked reader or writer.
    pub fn shutdown(&self) {
        let _ = match self {
            ClientStream::Unix(s) => s.shutdown(Shutdown::Both),
            ClientStream::Tcp(s) => s.shutdown(Shutdown::Both),
            ClientStream::Tls(s) => {
                s.shutdown();
                Ok(())
            }
            #[cfg(feature = "spice")]
            ClientStream::Spice(s) => {
                s.shutdown();
                Ok(())
            }
        };
    }

    /// Sets read and write timeouts.
    pub fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        match self {
            ClientStream::Unix(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
            ClientStream::Tcp(s) => {
                s.set_nodelay(true)?;
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
            ClientStream::Tls(s) => {
                s.set_timeouts(read, write);
                Ok(())
            }
            #[cfg(feature = "spice")]
            ClientStream::Spice(s) => {
                s.set_timeouts(read, write);
                Ok(())
            }
        }
    }

    /// Whether the peer may stay connected without a word until it starts
    /// its `Hello`: only on the Unix socket. Its peers are local and let in
    /// by the socket's permissions, and one of them is QEMU's
    /// `chardev-relay` (docs/qemu-relay.md), whose socket chardev connects
    /// when QEMU starts and after each Spice client leaves, and speaks only
    /// once a client opens the Spice port. A remote peer (TCP, TLS) that
    /// says nothing is closed after the `Hello` timeout.
    pub fn may_idle_before_hello(&self) -> bool {
        matches!(self, ClientStream::Unix(_))
    }

    /// Waits, with the read timeout set, until the peer sends its first
    /// byte (`true`; the byte is left to be read) or closes without one
    /// (`false`). Other than the Unix socket, returns `true` at once.
    pub fn wait_first_byte(&self) -> io::Result<bool> {
        let ClientStream::Unix(s) = self else {
            return Ok(true);
        };
        loop {
            match rustix::net::recv(s, &mut [0u8; 1][..], rustix::net::RecvFlags::PEEK) {
                Ok((n, _)) => return Ok(n > 0),
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Writes `head` then every payload slice: on a socket with as few
    /// `writev` calls as the kernel allows, without copying the payload; on
    /// TLS encrypted (copied).
    pub fn write_frame(&self, head: &[u8], payload: &[RawSlice]) -> io::Result<()> {
        match self {
            ClientStream::Unix(s) => writev_frame(s.as_fd(), head, payload),
            ClientStream::Tcp(s) => writev_frame(s.as_fd(), head, payload),
            ClientStream::Tls(s) => s.write_frame(head, payload),
            #[cfg(feature = "spice")]
            ClientStream::Spice(s) => s.write_frame(head, payload),
        }
    }
}

/// Writes `head` then every payload slice to `fd` with the wire peer's
/// `writev` (no copy: the kernel reads guest memory).
fn writev_frame(fd: BorrowedFd<'_>, head: &[u8], payload: &[RawSlice]) -> io::Result<()> {
    let runs = payload.iter().map(|s| {
        // SAFETY: the slice lies in guest memory kept mapped by the
        // GuestBuffer the caller holds for the whole write; the run is only
        // handed to the kernel, never read through a Rust reference.
        unsafe { ByteRun::from_raw(s.ptr, s.len) }
    });
    mediaredir_peer::writev_frame(fd, head, runs)
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Unix(s) => s.read(buf),
            ClientStream::Tcp(s) => s.read(buf),
            ClientStream::Tls(s) => s.read(buf),
            #[cfg(feature = "spice")]
            ClientStream::Spice(s) => (&**s).read(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writev_sends_head_and_slices_in_order() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let a = ClientStream::Unix(a);
        let payload = vec![7u8; 300_000];
        let slices: Vec<RawSlice> = payload
            .chunks(1000)
            .map(|c| RawSlice {
                ptr: c.as_ptr(),
                len: c.len(),
            })
            .collect();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            b.read_to_end(&mut got).unwrap();
            got
        });
        a.write_frame(b"HEAD", &slices).unwrap();
        a.shutdown();
        let got = reader.join().unwrap();
        assert_eq!(&got[..4], b"HEAD");
        assert_eq!(got.len(), 4 + payload.len());
        assert!(got[4..].iter().all(|b| *b == 7));
    }
}

//! One server-side TLS connection of the uplink: the wire peer's
//! [`mediaredir_peer::TlsStream`] (shared by a connection's reader and
//! writer threads), plus what only the daemon needs: taking a sample's
//! payload out of guest memory into a bounce buffer, since rustls takes
//! plaintext as a `&[u8]` and guest memory is never made one, and counting
//! the copies.

use std::io;
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mediaredir_peer::TlsStream as PeerTls;
use rustls::ServerConfig;
use vm_memory::VolatileSlice;

use crate::counters::Counters;
use crate::guest_buffer::RawSlice;

/// Plaintext handed to rustls at once: one full TLS record.
const RECORD: usize = 16 << 10;

/// A TLS connection to a client that presented a valid certificate.
#[derive(Debug)]
pub struct TlsStream {
    tls: PeerTls,
    /// Serialises frame writers and holds their bounce buffer.
    bounce: Mutex<Vec<u8>>,
    counters: Arc<Counters>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
        Ok(TlsStream {
            tls: PeerTls::accept(sock, config, timeout)?,
            bounce: Mutex::new(vec![0; RECORD]),
            counters,
        })
    }

    /// Sets the read and write timeouts (how long one wait for the socket
    /// may last).
    pub fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) {
        self.tls.set_timeouts(read, write);
    }

    /// Sends `close_notify` if there is room, then closes both directions,
    /// waking a blocked reader or writer.
    pub fn shutdown(&self) {
        self.tls.shutdown();
    }

    /// Reads decrypted bytes, blocking until some arrive. `Ok(0)` is the
    /// client's `close_notify`; a TCP end without it is `UnexpectedEof`.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.tls.read(buf)
    }

    /// Writes `head` then the payload, encrypted, blocking until rustls has
    /// handed every record to the socket. The payload is copied out of guest
    /// memory into the bounce buffer, and by rustls into its records: both
    /// copies are counted.
    pub fn write_frame(&self, head: &[u8], payload: &[RawSlice]) -> io::Result<()> {
        let mut bounce = lock(&self.bounce);
        let bounce = bounce.as_mut_slice();
        let mut fill = head.len().min(RECORD);
        bounce[..fill].copy_from_slice(&head[..fill]);
        if fill < head.len() {
            self.tls.send_plain(bounce)?;
            self.tls.send_plain(&head[fill..])?;
            fill = 0;
        }
        for slice in payload {
            let mut done = 0;
            while done < slice.len {
                if fill == RECORD {
                    self.tls.send_plain(bounce)?;
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
        self.tls.send_plain(&bounce[..fill])?;
        self.tls.flush_all()
    }
}

//! TLS 1.3 to the daemon's TCP uplink (spec 10.2, WIRE-10): rustls with
//! the ring provider, the daemon's certificate checked against `--tls-ca`
//! and the host name of `--connect`, and the client certificate of
//! `--tls-cert`/`--tls-key` presented (the daemon requires one).
//!
//! A rustls connection is one object for both directions, while the client
//! reads in one thread and writes in another. So the connection sits behind
//! a mutex that is never held while waiting on the socket: the reader reads
//! ciphertext without the lock and then feeds it to rustls; a writer hands
//! rustls its plaintext under the lock, takes the records out, and writes
//! them after letting go. A second mutex orders the socket writes (the
//! reader writes too, when reading queued records such as a key update).

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// The PEM files of `--tls-ca`, `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone)]
pub(crate) struct TlsOptions {
    /// CA certificate(s) the daemon's certificate must chain to.
    pub(crate) ca: PathBuf,
    /// Client certificate chain (leaf first) and its key.
    pub(crate) identity: Option<(PathBuf, PathBuf)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    Ok(certs)
}

/// The client configuration: TLS 1.3 only, ring, the daemon verified
/// against `ca`, the client certificate presented if given.
pub(crate) fn client_config(opts: &TlsOptions) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for ca in certificates(&opts.ca)? {
        roots
            .add(ca)
            .with_context(|| format!("CA certificate {}", opts.ca.display()))?;
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots);
    let config = match &opts.identity {
        Some((cert, key)) => {
            let chain = certificates(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("reading the key {}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("client certificate")?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// One TLS connection, shared by the reader and the writer thread (each
/// holds a [`TlsStream`] made by [`TlsStream::try_clone`]).
pub(crate) struct TlsStream {
    sock: TcpStream,
    conn: Arc<Mutex<ClientConnection>>,
    /// Orders socket writes of TLS records.
    send: Arc<Mutex<()>>,
    /// Ciphertext read and not yet taken by rustls.
    pending: Vec<u8>,
}

impl TlsStream {
    /// Runs the handshake with the daemon at `host` over `sock`.
    pub(crate) fn connect(
        mut sock: TcpStream,
        host: &str,
        config: Arc<ClientConfig>,
    ) -> anyhow::Result<TlsStream> {
        let name = ServerName::try_from(host.to_owned())
            .with_context(|| format!("{host} is not a valid server name"))?;
        let mut conn = ClientConnection::new(config, name).context("TLS client")?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).context("TLS handshake")?;
        }
        // The handshake's last flight (the client certificate and Finished).
        while conn.wants_write() {
            conn.write_tls(&mut sock).context("TLS handshake")?;
        }
        Ok(TlsStream {
            sock,
            conn: Arc::new(Mutex::new(conn)),
            send: Arc::new(Mutex::new(())),
            pending: Vec::new(),
        })
    }

    /// Another handle on the same connection.
    pub(crate) fn try_clone(&self) -> io::Result<TlsStream> {
        Ok(TlsStream {
            sock: self.sock.try_clone()?,
            conn: self.conn.clone(),
            send: self.send.clone(),
            pending: Vec::new(),
        })
    }

    /// The socket (timeouts, shutdown).
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// Writes every record rustls holds.
    fn flush_records(&self) -> io::Result<()> {
        let _order = lock(&self.send);
        loop {
            let mut records = Vec::new();
            {
                let mut conn = lock(&self.conn);
                while conn.wants_write() {
                    conn.write_tls(&mut records)?;
                }
            }
            if records.is_empty() {
                return Ok(());
            }
            (&self.sock).write_all(&records)?;
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut chunk = [0u8; 16 << 10];
        loop {
            let wants_write = {
                let mut conn = lock(&self.conn);
                while !self.pending.is_empty() {
                    let mut rest = &self.pending[..];
                    match conn.read_tls(&mut rest) {
                        Ok(n) => {
                            self.pending.drain(..n);
                        }
                        // Its plaintext buffer is full: read that first.
                        Err(_) => break,
                    }
                    conn.process_new_packets().map_err(io::Error::other)?;
                }
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    // The daemon closed without close_notify: a close all
                    // the same (the frame reader decides whether it was
                    // clean).
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                conn.wants_write()
            };
            if wants_write {
                self.flush_records()?;
            }
            let n = (&self.sock).read(&mut chunk)?;
            if n == 0 {
                let mut conn = lock(&self.conn);
                let _ = conn.read_tls(&mut &[][..]);
                conn.process_new_packets().map_err(io::Error::other)?;
                return match conn.reader().read(buf) {
                    Ok(n) => Ok(n),
                    Err(_) => Ok(0),
                };
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = lock(&self.conn).writer().write(buf)?;
        self.flush_records()?;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                ErrorKind::WriteZero,
                "TLS connection refuses data",
            ));
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_records()
    }
}

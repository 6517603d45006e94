//! TLS for the TCP uplink: TLS 1.3 (rustls, ring provider) with client
//! authentication required (spec 10.2, WIRE-10).
//!
//! The daemon presents `--tls-cert` (chain, leaf first) with `--tls-key`,
//! and accepts only clients whose certificate chains to `--tls-client-ca`:
//! a client with no certificate, or one from another CA, fails the handshake
//! and never reaches the protocol (no `Hello`, no connect event).
//!
//! The frames are the same as on a plain socket, and so is the protocol
//! code: a [`TlsStream`] is one more kind of
//! [`ClientStream`](super::stream::ClientStream). What differs is the data
//! path. Encryption cannot read guest memory in place: rustls takes the
//! plaintext as a `&[u8]`, which must never be made of guest memory (the
//! guest may write it at any time). So each payload byte is copied twice in
//! user space: from guest memory into a 16 KiB bounce buffer (a volatile
//! copy, as vm-memory does it), then by rustls into the record it encrypts in
//! place. Both copies are counted in `payload_bytes_copied`, which therefore
//! grows by twice the payload on a TLS connection, where the plain socket
//! path (`writev` from guest memory) adds 0. That is the cost of encryption
//! the API forces, as the Spice library's copy is on the Spice uplink.
//! (Kernel TLS would remove both copies, but needs the `tls` kernel module.)

mod stream;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};

pub use stream::TlsStream;

/// The PEM files of a TLS uplink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The daemon's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CA certificate(s) client certificates must chain to.
    pub client_ca: PathBuf,
}

/// Why the TLS configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file is unreadable or malformed.
    #[error("cannot read the {what} {}: {source}", path.display())]
    Pem {
        /// Which file (certificate, key, client CA).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Cause.
        source: pem::Error,
    },
    /// A certificate file holds no certificate.
    #[error("{} holds no certificate", .0.display())]
    NoCertificate(PathBuf),
    /// rustls refused the certificates or key.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The crypto provider of every TLS connection: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(
    what: &'static str,
    path: &PathBuf,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |source| TlsError::Pem {
        what,
        path: path.clone(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.clone()));
    }
    Ok(certs)
}

/// The server configuration of `files`: TLS 1.3 only, a client certificate
/// chaining to the client CA required, no session resumption (a client that
/// reconnects does a full handshake).
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates("certificate", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| TlsError::Pem {
        what: "key",
        path: files.key.clone(),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    for ca in certificates("client CA", &files.client_ca)? {
        roots
            .add(ca)
            .map_err(|e| TlsError::Config(format!("{}: {e}", files.client_ca.display())))?;
    }
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

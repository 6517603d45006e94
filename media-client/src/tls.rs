//! TLS 1.3 to the daemon's TCP uplink (spec 10.2, WIRE-10): the wire
//! peer's TLS stream and client configuration (`mediaredir_peer::tls`, the
//! daemon's end uses the same), the daemon's certificate checked against
//! `--tls-ca` and the host name of `--connect`, and the client certificate
//! of `--tls-cert`/`--tls-key` presented (the daemon requires one).

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use mediaredir_peer::TlsStream;
use mediaredir_peer::tls::config::client_config;

/// How long the TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// The PEM files of `--tls-ca`, `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// CA certificate(s) the daemon's certificate must chain to.
    pub ca: PathBuf,
    /// Client certificate chain (leaf first) and its key.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// Runs the TLS handshake with the daemon `host` on the connected `sock`.
pub fn connect(sock: TcpStream, host: &str, opts: &TlsOptions) -> anyhow::Result<TlsStream> {
    let identity = opts
        .identity
        .as_ref()
        .map(|(cert, key)| (cert.as_path(), key.as_path()));
    let config = client_config(&opts.ca, identity)?;
    TlsStream::connect(sock, host, config, HANDSHAKE_TIMEOUT).context("TLS handshake")
}

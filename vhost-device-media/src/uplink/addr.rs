//! Where the socket uplink listens, and which addresses need TLS: TCP off
//! loopback is refused unless it speaks TLS with client certificates (spec
//! WIRE-10); a Unix socket never uses TLS.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use super::tls::{TlsError, TlsFiles};

/// The command-line flags that turn TLS on, for error messages.
const TLS_FLAGS: &str = "--tls-cert, --tls-key and --tls-client-ca";

/// Where the socket uplink listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A Unix socket path.
    Unix(PathBuf),
    /// A plain TCP address (loopback only).
    Tcp(SocketAddr),
    /// A TCP address speaking TLS 1.3 with client certificates required.
    Tls(SocketAddr, TlsFiles),
    /// The media port of the daemon's own Spice server.
    #[cfg(feature = "spice")]
    Spice(super::spice::SpiceOptions),
}

/// Why an uplink address or listener is refused.
#[derive(Debug, thiserror::Error)]
pub enum SocketUplinkError {
    /// The address does not parse.
    #[error("bad uplink address {0:?}: expected unix:PATH, tcp:HOST:PORT or spice:OPTIONS")]
    BadAddress(String),
    /// Plain TCP off loopback would expose the guest's media unauthenticated.
    #[error(
        "plain TCP is only allowed on loopback ({0}); use a loopback address, a Unix socket, \
         or TLS with client certificates ({TLS_FLAGS})"
    )]
    NotLoopback(SocketAddr),
    /// TLS was asked for an uplink that is not TCP.
    #[error("TLS ({TLS_FLAGS}) applies only to a tcp:HOST:PORT uplink, not {0:?}")]
    TlsNeedsTcp(String),
    /// Some of the TLS files were given, not all.
    #[error("TLS needs all of {TLS_FLAGS}")]
    TlsIncomplete,
    /// The TLS certificates or key cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The Spice options are wrong, or the Spice server cannot start.
    #[cfg(feature = "spice")]
    #[error(transparent)]
    Spice(#[from] super::spice::SpiceError),
    /// This build has no Spice uplink.
    #[cfg(not(feature = "spice"))]
    #[error("this build has no Spice uplink (built without the `spice` feature)")]
    NoSpice,
    /// Binding failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: String,
        /// Cause.
        source: io::Error,
    },
}

impl ListenAddr {
    /// Parses `unix:PATH` or `tcp:HOST:PORT` for a plain socket (TCP on
    /// loopback only).
    pub fn parse(text: &str) -> Result<ListenAddr, SocketUplinkError> {
        ListenAddr::parse_with_tls(text, None)
    }

    /// Parses `unix:PATH`, `tcp:HOST:PORT` or `spice:OPTIONS` (see
    /// `super::spice::SpiceOptions`). With `tls`, a TCP address
    /// speaks TLS and may be any address; a Unix socket refuses TLS.
    pub fn parse_with_tls(
        text: &str,
        tls: Option<TlsFiles>,
    ) -> Result<ListenAddr, SocketUplinkError> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(SocketUplinkError::BadAddress(text.into()));
            }
            if tls.is_some() {
                return Err(SocketUplinkError::TlsNeedsTcp(text.into()));
            }
            return Ok(ListenAddr::Unix(path.into()));
        }
        if let Some(options) = text.strip_prefix("spice:") {
            if tls.is_some() {
                return Err(SocketUplinkError::TlsNeedsTcp(text.into()));
            }
            #[cfg(feature = "spice")]
            return Ok(ListenAddr::Spice(super::spice::SpiceOptions::parse(
                options,
            )?));
            #[cfg(not(feature = "spice"))]
            return {
                let _ = options;
                Err(SocketUplinkError::NoSpice)
            };
        }
        if let Some(hostport) = text.strip_prefix("tcp:") {
            let addr = hostport
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| SocketUplinkError::BadAddress(text.into()))?;
            return match tls {
                Some(files) => Ok(ListenAddr::Tls(addr, files)),
                None if addr.ip().is_loopback() => Ok(ListenAddr::Tcp(addr)),
                None => Err(SocketUplinkError::NotLoopback(addr)),
            };
        }
        Err(SocketUplinkError::BadAddress(text.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> TlsFiles {
        TlsFiles {
            cert: "c.pem".into(),
            key: "k.pem".into(),
            client_ca: "ca.pem".into(),
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(
            ListenAddr::parse("unix:/tmp/x.sock").unwrap(),
            ListenAddr::Unix("/tmp/x.sock".into())
        );
        assert!(matches!(
            ListenAddr::parse("tcp:127.0.0.1:5000").unwrap(),
            ListenAddr::Tcp(_)
        ));
        assert!(matches!(
            ListenAddr::parse("tcp:0.0.0.0:5000"),
            Err(SocketUplinkError::NotLoopback(_))
        ));
        assert!(ListenAddr::parse("udp:1").is_err());
        assert!(ListenAddr::parse("unix:").is_err());
    }

    #[test]
    fn tls_addresses() {
        assert_eq!(
            ListenAddr::parse_with_tls("tcp:0.0.0.0:5000", Some(files())).unwrap(),
            ListenAddr::Tls("0.0.0.0:5000".parse().unwrap(), files())
        );
        assert!(matches!(
            ListenAddr::parse_with_tls("tcp:127.0.0.1:5000", Some(files())).unwrap(),
            ListenAddr::Tls(..)
        ));
        assert!(matches!(
            ListenAddr::parse_with_tls("unix:/tmp/x", Some(files())),
            Err(SocketUplinkError::TlsNeedsTcp(_))
        ));
        let refusal = ListenAddr::parse("tcp:0.0.0.0:5000")
            .unwrap_err()
            .to_string();
        assert!(refusal.contains("--tls-cert"), "{refusal}");
    }
}

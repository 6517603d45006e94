//! Accepting clients: a thread per listening socket (or per Spice server)
//! hands each accepted connection, after its TLS handshake if it has one,
//! to a connection thread of its own.

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;

use rustls::ServerConfig;

use super::HELLO_TIMEOUT;
use super::connection::serve_connection;
use super::shared::Shared;
use crate::counters::Counters;
use crate::uplink::stream::ClientStream;
use crate::uplink::tls::TlsStream;

/// A client connection as accepted, before any handshake.
pub(super) enum Accepted {
    /// A plain socket: the protocol starts at once.
    Plain(ClientStream),
    /// TCP that must complete a TLS handshake first.
    Tls(TcpStream, Arc<ServerConfig>),
}

impl Accepted {
    /// The byte stream the protocol runs on.
    fn open(self, counters: &Arc<Counters>) -> io::Result<ClientStream> {
        match self {
            Accepted::Plain(stream) => Ok(stream),
            Accepted::Tls(sock, config) => {
                let tls = TlsStream::accept(sock, config, Arc::clone(counters), HELLO_TIMEOUT)
                    .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake: {e}")))?;
                Ok(ClientStream::Tls(Arc::new(tls)))
            }
        }
    }
}

/// Accepts clients with `accept` on a thread of its own until shutdown.
pub(super) fn spawn_acceptor(
    shared: &Arc<Shared>,
    mut accept: impl FnMut() -> io::Result<Accepted> + Send + 'static,
) -> io::Result<()> {
    let shared = Arc::clone(shared);
    thread::Builder::new()
        .name("uplink-accept".into())
        .spawn(move || {
            loop {
                let conn = accept();
                if shared.shutdown.load(Ordering::Relaxed) {
                    break;
                }
                match conn {
                    Ok(conn) => start_connection(&shared, conn),
                    Err(err) => crate::input_warn!("accept failed: {err}"),
                }
            }
        })
        .map(drop)
}

fn start_connection(shared: &Arc<Shared>, conn: Accepted) {
    let reader_shared = Arc::clone(shared);
    let spawn = thread::Builder::new()
        .name("uplink-conn".into())
        .spawn(move || {
            let served = conn
                .open(&reader_shared.counters)
                .and_then(|stream| serve_connection(&reader_shared, stream));
            if let Err(err) = served {
                crate::input_warn!("client connection ended: {err}");
            }
        });
    if let Err(err) = spawn {
        log::error!("cannot start a client connection thread: {err}");
    }
}

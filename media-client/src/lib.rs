//! The transports of the client engine on the user's device, shared by
//! the `media-client` program and the viewer: a connection to the daemon's
//! socket uplink (Unix, TCP, TCP with TLS 1.3) or to the media port of its
//! Spice server, which says `Hello`, feeds the [`client_engine::Engine`]
//! and writes its events back (`connection`), the Spice client bridge
//! (`spice`), TLS (`tls`) and statistics lines (`stats`).

use std::path::PathBuf;

use anyhow::bail;

pub mod connection;
pub mod spice;
pub mod stats;
pub mod tls;

/// Where the daemon listens.
#[derive(Debug, Clone)]
pub enum Addr {
    /// A Unix stream socket.
    Unix(PathBuf),
    /// A TCP address (`host:port`).
    Tcp(String),
    /// The media port of the daemon's Spice server.
    Spice(spice::SpiceTarget),
    /// The media port of a Spice session the program runs itself (the
    /// viewer's desktop session).
    SharedSpicePort(spice::SharedPort),
}

/// `unix:PATH` or `tcp:HOST:PORT`.
pub fn parse_addr(s: &str) -> anyhow::Result<Addr> {
    if let Some(p) = s.strip_prefix("unix:") {
        Ok(Addr::Unix(PathBuf::from(p)))
    } else if let Some(a) = s.strip_prefix("tcp:") {
        Ok(Addr::Tcp(a.to_owned()))
    } else {
        bail!("address must be unix:PATH or tcp:HOST:PORT, got {s}")
    }
}

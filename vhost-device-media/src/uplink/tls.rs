//! TLS for the TCP uplink: TLS 1.3 (rustls, ring provider) with client
//! authentication required (spec 10.2, WIRE-10). The configuration and the
//! TLS stream are the wire peer's (`mediaredir_peer::tls`, shared with
//! `media-client`); what is the daemon's own is the payload's way out of
//! guest memory ([`TlsStream::write_frame`]).
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

pub use mediaredir_peer::tls::config::{TlsError, TlsFiles, provider, server_config};
pub use stream::TlsStream;

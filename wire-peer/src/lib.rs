//! One peer of the host-client wire protocol (`spec/schema/`,
//! `mediaredir_proto::wire`), whichever end it is: the daemon's socket, TLS
//! and Spice uplinks and `media-client` use the same code for
//!
//! - [`frame`]: reading whole frames from any byte stream
//!   ([`FramedReader`]) and writing them ([`FrameWriter`]; [`writev_frame`]
//!   for a payload in guest memory, which it never copies nor reads);
//! - [`tls`]: the TLS 1.3 stream of both ends ([`TlsStream`]) and their
//!   configurations from PEM files;
//! - [`reconnect`]: connecting again with back-off ([`reconnect_loop`]).
//!
//! What a peer says (handshake, acknowledgements, liveness) stays with it:
//! this crate moves frames, it does not speak the protocol.

pub mod frame;
pub mod reconnect;
pub mod tls;

pub use frame::{ByteRun, Frame, FrameWriter, FramedReader, is_timeout, writev_frame};
pub use reconnect::{Backoff, reconnect_loop};
pub use tls::TlsStream;

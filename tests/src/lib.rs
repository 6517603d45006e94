//! Harness of the cross-crate conformance and end-to-end tests.
//!
//! The tests live in `tests/tests/`. Each starts real components (the daemon
//! binary on a real Unix socket, the guest driver over vhost-user, a client
//! on the daemon's uplink) and cites the numbered requirement of
//! `spec/README.md` it checks, so that a guest driver or a backend can be held
//! to the specification. This library holds what they share: a daemon
//! process, a scratch directory, a wire-protocol test client and a VM
//! desktop (QEMU with Spice, `desktop`) for the viewer; child
//! processes are guarded with the `test-support` crate.

pub mod client;
pub mod daemon;
pub mod desktop;
pub mod media;
pub mod relay;
pub mod rig;
pub mod scratch;

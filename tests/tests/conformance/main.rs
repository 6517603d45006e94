//! Conformance tests of the device (spec/README.md): the real daemon binary
//! on a real vhost-user socket, driven by the guest driver core over its
//! vhost-user transport, with a wire-protocol client on the daemon's socket
//! uplink. Each test names the requirements it checks.

mod calls;
mod client_loss;
mod control;
mod data;
mod init;
mod malformed;

//! `vhost-user-mediaredir`: the host daemon of the media-redirection virtio device.
//!
//! QEMU attaches this daemon over vhost-user. It maps the guest's memory,
//! parses the device's virtqueues as `spec/README.md` specifies and forwards
//! the guest's ORIGINAL compressed media to the user's device, where the
//! client engine decodes and renders it. Nothing is decoded or encoded here.
//!
//! This crate will hold (see the daemon issue):
//! - the device model: presentations, streams, their state machines, request
//!   validation and flow control, in modules that import no vhost type so that
//!   tests drive the model directly;
//! - the `VhostUserBackend` implementation, and queue processing in its own
//!   module;
//! - the uplinks (where media goes): the in-process client engine (default),
//!   a Unix/TCP socket speaking the wire protocol of `spec/schema/`, and a
//!   Spice port channel served by an embedded libspice-server;
//! - counters of streams, buffers and payload bytes, including the bytes
//!   copied in user space, which stay 0 on the zero-copy paths.

pub mod args;
pub mod capture;
pub mod chain;
pub mod core;
pub mod counters;
pub mod daemon;
pub mod guest_buffer;
pub mod limits;
pub mod memory;
pub mod model;
pub mod queues;
pub mod ratelimit;
pub mod signals;
pub mod uplink;
pub mod vhost_user;

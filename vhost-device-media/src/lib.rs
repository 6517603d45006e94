//! `vhost-user-mediaredir`: the host daemon of the media-redirection virtio device.
//!
//! QEMU attaches this daemon over vhost-user. It maps the guest's memory,
//! parses the device's virtqueues as `spec/README.md` specifies and forwards
//! the guest's ORIGINAL compressed media to the user's device, where the
//! client engine decodes and renders it. Nothing is decoded or encoded here.
//!
//! The layers, each importing only the ones below it (checked by
//! `tests/module_graph.rs`):
//! - [`vhost_user`]: the vhost-user adapter, the only module that names
//!   vhost-user-backend or QEMU's mapped guest memory;
//! - [`queues`]: virtqueue processing over the [`queues::Virtqueue`] and
//!   [`memory::GuestRam`] traits, so tests run it on plain memory;
//! - [`core`]: the model behind a lock, the uplink, the event and capture
//!   backlogs ([`capture`]); no virtqueue or guest-memory type;
//! - [`model`]: presentations, streams, their state machines, request
//!   validation and flow control, driven directly by its tests;
//! - [`uplink`]: where media goes (the in-process client engine, a socket
//!   speaking the wire protocol, a Spice port), seeing the payload only as
//!   the [`guest_buffer::RawSlice`]s of a [`guest_buffer::GuestBuffer`];
//! - [`counters`]: streams, buffers and payload bytes, including the bytes
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

//! The `null` uplink: no client ever connects.
//!
//! The spec defines what a device without a client does (capabilities
//! empty, `NO_CLIENT` for stream creation and data), so this uplink is a real
//! configuration: a VM whose players must always fall back to local decoding,
//! and the daemon's behaviour before any client is configured.

use mediaredir_proto::status::Status;
use mediaredir_proto::wire;

use super::Uplink;
use crate::guest_buffer::GuestBuffer;

/// An uplink with no client.
#[derive(Debug, Default)]
pub struct NullUplink;

impl Uplink for NullUplink {
    fn send(&self, _msg: wire::Message) {}

    fn send_sample(&self, _sample: wire::SampleHeader, mut buffer: GuestBuffer) {
        buffer.set_status(Status::NoClient);
    }

    fn cancel(&self, _stream: u32, _status: Status) {}

    fn forget(&self, _stream: u32) {}

    fn shutdown(&self) {}
}

//! Uplinks: where the daemon sends media and control, and where client
//! reports come from.
//!
//! An uplink owns every playback buffer it was given until the client
//! acknowledges it (then it completes `OK`), a flush or destroy cancels it,
//! or the client goes away (`NO_CLIENT`): it never loses one, because a
//! dropped [`GuestBuffer`] completes itself.

pub mod addr;
#[cfg(feature = "local")]
pub mod local;
pub mod null;
pub mod socket;
#[cfg(feature = "spice")]
pub mod spice;
pub mod stream;
pub mod tls;

use mediaredir_proto::status::Status;
use mediaredir_proto::wire;

use crate::guest_buffer::GuestBuffer;

/// Where media goes.
pub trait Uplink: Send + Sync {
    /// Sends a control message to the client; dropped when none is
    /// connected (the model replays state on connect).
    fn send(&self, msg: wire::Message);

    /// Sends a sample whose payload is `buffer`. The uplink completes the
    /// buffer when the client acknowledges it or when it cannot be sent.
    fn send_sample(&self, sample: wire::SampleHeader, buffer: GuestBuffer);

    /// Completes every buffer of `stream` the uplink holds with `status`.
    fn cancel(&self, stream: u32, status: Status);

    /// The stream is gone: completes what the uplink still holds of it
    /// (`CANCELLED`) and drops its bookkeeping.
    fn forget(&self, stream: u32);

    /// Stops accepting clients and closes the connection.
    fn shutdown(&self);

    /// Drops the connected client (it stalled, DEV-TIME-3), as if it had
    /// disconnected; `why` is logged. An uplink whose client cannot be
    /// dropped (the in-process engine) only logs.
    fn drop_client(&self, why: &str) {
        log::warn!("cannot drop this uplink's client ({why})");
    }
}

/// What an uplink reports about its client.
pub trait ClientEvents: Send + Sync {
    /// A client connected and said hello.
    fn client_connected(&self, caps: wire::Capabilities);
    /// The client went away.
    fn client_disconnected(&self);
    /// The uplink measured the link to its client: a
    /// [`mediaredir_proto::event::Event::LinkQuality`] for the guest (spec
    /// 7.11). Receivers that do not tell a guest ignore it.
    fn link_quality(&self, quality: mediaredir_proto::event::Event) {
        log::debug!("link quality {quality:?}");
    }
    /// The client sent a report (EOS, position, error, QoS, ...).
    fn client_message(&self, msg: wire::Message);
    /// The client sent a captured sample (spec 7.10); the receiver
    /// acknowledges it to the client. Receivers without a capture path
    /// (test doubles) ignore it.
    fn captured(&self, sample: wire::SampleHeader, payload: Vec<u8>) {
        log::debug!(
            "capture sample {} of stream {} ({} bytes) ignored",
            sample.seq,
            sample.stream,
            payload.len()
        );
    }
}

//! Control requests on their way to the device, without blocking the loop:
//! each `CONTROL` waits in arrival order until its client has no other
//! request at the device (one at a time per client, so a client's requests
//! are answered in order and each is checked against what the earlier ones
//! created), is then checked against what the client owns (BRK-3), gets the
//! device generation, and goes on the controlq. The loop goes back to
//! polling; `control_answers` relays the answer when the device returns
//! the chain.
//!
//! The broker's own requests (destroying what a departed client created,
//! spec 9.3) travel the same way with nobody to answer.

use std::time::Instant;

use mediaredir_proto::broker::BrokerMessage;
use mediaredir_proto::control::{ControlRequest, ResponseHeader};
use mediaredir_proto::status::Status;

use super::{Broker, ClientId};
use crate::driver::DriverError;
use crate::transport::Transport;

/// `CONTROL`s one client may have waiting (not yet at the device) before
/// the broker stops reading its messages.
pub(super) const MAX_WAITING_CONTROLS: usize = 32;

/// A control request not yet on the controlq.
#[derive(Debug)]
pub(super) struct WaitingControl {
    pub(super) client: ClientId,
    pub(super) what: ControlSource,
}

/// Who asked.
#[derive(Debug)]
pub(super) enum ControlSource {
    /// A client's `CONTROL` (its tag and bytes, decoded when it is sent so
    /// that the checks see what its earlier requests created).
    Client { tag: u32, bytes: Vec<u8> },
    /// The broker's own request on behalf of a departed client: nobody is
    /// answered.
    CleanUp(ControlRequest),
}

/// A control request on the controlq, waiting for the device's answer.
#[derive(Debug)]
pub(super) struct PendingControl {
    pub(super) client: ClientId,
    /// The client's tag; `None` for the broker's own requests.
    pub(super) tag: Option<u32>,
    /// The request as sent (its kind, target, and what an `OK` records).
    pub(super) request: ControlRequest,
    /// When the broker stops waiting (the driver's timeout).
    pub(super) deadline: Instant,
}

/// What became of a request taken from the waiting list.
enum Started {
    /// Sent, or answered at once (refused by the broker, or the driver
    /// failed).
    Done,
    /// The controlq is full: it waits for room.
    Full(WaitingControl),
}

impl<T: Transport> Broker<T> {
    /// Answers a `CONTROL` with a bare response header.
    pub(super) fn control_status(
        &mut self,
        id: ClientId,
        tag: u32,
        request: &[u8],
        status: Status,
    ) {
        let target = request
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes);
        self.control_header(id, tag, target, status);
    }

    /// Answers a `CONTROL` for `target` with a bare response header.
    pub(super) fn control_header(&mut self, id: ClientId, tag: u32, target: u32, status: Status) {
        let header = ResponseHeader { status, id: target };
        self.reply(
            id,
            tag,
            &BrokerMessage::ControlReply(header.to_bytes().to_vec()),
            None,
        );
    }

    /// A client's `CONTROL`: waits its turn, then goes to the device.
    pub(super) fn control(&mut self, id: ClientId, tag: u32, bytes: &[u8]) {
        self.control_waiting.push_back(WaitingControl {
            client: id,
            what: ControlSource::Client {
                tag,
                bytes: bytes.to_vec(),
            },
        });
        self.dispatch_controls();
    }

    /// The broker's own request for a departed client's object.
    pub(super) fn clean_up(&mut self, client: ClientId, request: ControlRequest) {
        self.control_waiting.push_back(WaitingControl {
            client,
            what: ControlSource::CleanUp(request),
        });
    }

    /// Whether `id` has a request of its own at the device.
    fn control_in_flight(&self, id: ClientId) -> bool {
        self.controls
            .values()
            .any(|p| p.client == id && p.tag.is_some())
    }

    /// `CONTROL`s of `id` not yet at the device.
    pub(super) fn controls_waiting(&self, id: ClientId) -> usize {
        self.control_waiting
            .iter()
            .filter(|w| w.client == id && matches!(w.what, ControlSource::Client { .. }))
            .count()
    }

    /// Sends every waiting request whose client has none at the device, in
    /// arrival order, until the controlq is full.
    pub(super) fn dispatch_controls(&mut self) {
        let mut i = 0;
        while i < self.control_waiting.len() {
            let w = &self.control_waiting[i];
            let own = matches!(w.what, ControlSource::Client { .. });
            if own && self.control_in_flight(w.client) {
                i += 1;
                continue;
            }
            let Some(w) = self.control_waiting.remove(i) else {
                break;
            };
            if let Started::Full(w) = self.start_control(w) {
                self.control_waiting.insert(i, w);
                break;
            }
        }
    }

    fn start_control(&mut self, w: WaitingControl) -> Started {
        let id = w.client;
        let (tag, request) = match &w.what {
            ControlSource::CleanUp(request) => (None, request.clone()),
            ControlSource::Client { tag, bytes } => {
                let Some(request) = self.checked(id, *tag, bytes) else {
                    return Started::Done;
                };
                (Some(*tag), request)
            }
        };
        let request = ControlRequest {
            generation: self.generation,
            ..request
        };
        let code = request.request.code();
        let submitted = self
            .dev
            .response_capacity(code)
            .and_then(|capacity| self.dev.submit_control(&request.encode(), capacity));
        match submitted {
            Ok(token) => {
                let deadline = Instant::now() + self.dev.control_timeout();
                self.controls.insert(
                    token,
                    PendingControl {
                        client: id,
                        tag,
                        request,
                        deadline,
                    },
                );
            }
            Err(DriverError::QueueFull(_)) => return Started::Full(w),
            Err(e) => {
                log::warn!("broker: {code:?}: {e}");
                if let Some(tag) = tag {
                    self.control_header(id, tag, request.target, Status::Io);
                }
            }
        }
        Started::Done
    }

    /// A client's request decoded and checked, or `None` when it was
    /// answered here (client gone or stale, malformed, not its object).
    fn checked(&mut self, id: ClientId, tag: u32, bytes: &[u8]) -> Option<ControlRequest> {
        if self.clients.get(&id)?.stale {
            self.control_status(id, tag, bytes, Status::Stale);
            return None;
        }
        let request = match ControlRequest::decode(bytes, &self.limits) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("broker: client {id}: malformed control request: {e}");
                self.control_status(id, tag, bytes, e.status());
                return None;
            }
        };
        let code = request.request.code();
        let allowed = self
            .clients
            .get(&id)
            .is_some_and(|c| c.owned.may_address(code, request.target));
        if !allowed {
            log::info!(
                "broker: client {id}: {code:?} for {} it does not own",
                request.target
            );
            self.control_status(id, tag, bytes, Status::NoEntity);
            return None;
        }
        Some(request)
    }
}

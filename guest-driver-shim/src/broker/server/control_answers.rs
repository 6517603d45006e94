//! Answers to the control requests at the device, relayed as the loop
//! finds them on the controlq's used ring: an `OK` records what it created
//! or destroyed as the client's (or, when the client left meanwhile,
//! destroys what it created), a `STALE` answer resets the device. A request
//! unanswered after the driver's timeout gets `IO`, as a blocking wait
//! did, and the device is reset (its host daemon is gone; the reset waits
//! until it is back); the driver keeps the chain's buffers until the device
//! returns it or is reset.

use std::time::Instant;

use mediaredir_proto::broker::BrokerMessage;
use mediaredir_proto::control::{ControlRequest, Request, ResponseHeader};
use mediaredir_proto::status::Status;

use super::control::{ControlSource, PendingControl};
use super::{Broker, ClientId};
use crate::broker::BrokerError;
use crate::driver::{ControlToken, DriverError, RawResponse};
use crate::transport::Transport;

impl<T: Transport> Broker<T> {
    /// Relays the answers the device returned, gives up on the requests
    /// past their deadline, and sends what waited for its turn.
    pub(super) fn service_controls(&mut self) -> Result<(), BrokerError> {
        for answer in self.dev.poll_control_answers()? {
            // A reset while relaying an earlier answer forgot the others.
            let Some(pending) = self.controls.remove(&answer.token) else {
                continue;
            };
            self.answered(pending, answer.response)?;
        }
        self.expire_controls()?;
        self.dispatch_controls();
        Ok(())
    }

    /// The earliest deadline of a request at the device.
    pub(super) fn next_control_deadline(&self) -> Option<Instant> {
        self.controls.values().map(|p| p.deadline).min()
    }

    fn answered(
        &mut self,
        pending: PendingControl,
        response: Result<RawResponse, DriverError>,
    ) -> Result<(), BrokerError> {
        let PendingControl {
            client: id,
            tag,
            request,
            ..
        } = pending;
        let code = request.request.code();
        let answer = match response {
            Ok(answer) => answer.bytes,
            Err(e) => {
                log::warn!("broker: {code:?}: {e}");
                if let Some(tag) = tag {
                    self.control_header(id, tag, request.target, Status::Io);
                }
                return Ok(());
            }
        };
        let header = match ResponseHeader::decode(&answer) {
            Ok((h, _)) => h,
            Err(e) => {
                log::warn!("broker: {code:?}: unreadable response: {e}");
                if let Some(tag) = tag {
                    self.control_header(id, tag, request.target, Status::Io);
                }
                return Ok(());
            }
        };
        if header.status == Status::Ok {
            match self.clients.get_mut(&id) {
                Some(client) => client
                    .owned
                    .record(&request.request, request.target, header.id),
                None => self.destroy_orphan(id, &request, header.id),
            }
        }
        if let Some(tag) = tag {
            self.reply(id, tag, &BrokerMessage::ControlReply(answer), None);
        }
        if header.status == Status::Stale {
            log::warn!("broker: the device answered STALE: it restarted");
            self.reset_device()?;
        }
        Ok(())
    }

    /// Destroys what an `OK` answer created for client `id`, which left
    /// while the request was at the device (spec 9.3).
    fn destroy_orphan(&mut self, id: ClientId, request: &ControlRequest, created: u32) {
        let undo = match request.request {
            Request::PresCreate { .. } => Request::PresDestroy,
            Request::CallCreate { .. } => Request::CallEnd,
            _ => return,
        };
        log::info!("broker: client {id} left before {created} was created; destroying it");
        self.clean_up(
            id,
            ControlRequest {
                generation: self.generation,
                target: created,
                request: undo,
            },
        );
    }

    /// Gives up on the requests past their deadline: `IO`, then a device
    /// reset, as when a blocking wait timed out.
    fn expire_controls(&mut self) -> Result<(), BrokerError> {
        let now = Instant::now();
        let expired: Vec<ControlToken> = self
            .controls
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(&token, _)| token)
            .collect();
        if expired.is_empty() {
            return Ok(());
        }
        for token in expired {
            let Some(p) = self.controls.remove(&token) else {
                continue;
            };
            self.dev.abandon_control(token);
            log::warn!(
                "broker: {:?} for {} unanswered after {:?}",
                p.request.request.code(),
                p.request.target,
                self.dev.control_timeout()
            );
            if let Some(tag) = p.tag {
                self.control_header(p.client, tag, p.request.target, Status::Io);
            }
        }
        // The device stopped answering (its host daemon is gone): reset it
        // once it is back.
        self.reset_device()
    }

    /// At a device reset: every request at the device gets `STALE`
    /// (spec 9.3) and the broker's own requests are dropped (the reset
    /// destroyed their objects). Clients' waiting requests stay: they are
    /// checked against the new state when their turn comes.
    pub(super) fn reset_controls(&mut self) {
        for (_, p) in std::mem::take(&mut self.controls) {
            if let Some(tag) = p.tag {
                self.control_header(p.client, tag, p.request.target, Status::Stale);
            }
        }
        self.control_waiting
            .retain(|w| matches!(w.what, ControlSource::Client { .. }));
    }
}

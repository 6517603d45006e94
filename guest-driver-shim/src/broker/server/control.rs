//! Control requests on their way to the device: checked against what the
//! client owns (BRK-3), forwarded one at a time with the device generation
//! filled in, and answered; a `STALE` answer or a device that stopped
//! answering resets the device.

use mediaredir_proto::broker::BrokerMessage;
use mediaredir_proto::control::{ControlRequest, ResponseHeader};
use mediaredir_proto::status::Status;

use super::{Broker, ClientId};
use crate::broker::BrokerError;
use crate::driver::DriverError;
use crate::transport::Transport;

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
        let header = ResponseHeader { status, id: target };
        self.reply(
            id,
            tag,
            &BrokerMessage::ControlReply(header.to_bytes().to_vec()),
            None,
        );
    }

    pub(super) fn control(
        &mut self,
        id: ClientId,
        tag: u32,
        bytes: &[u8],
    ) -> Result<(), BrokerError> {
        let request = match ControlRequest::decode(bytes, &self.limits) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("broker: client {id}: malformed control request: {e}");
                self.control_status(id, tag, bytes, e.status());
                return Ok(());
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
            return Ok(());
        }
        let answer = match self.forward_control(&request) {
            Ok(answer) => answer,
            Err(e) => {
                log::warn!("broker: {code:?}: {e}");
                self.control_status(id, tag, bytes, Status::Io);
                if matches!(e, DriverError::Timeout { .. }) {
                    // The device stopped answering (its host daemon is
                    // gone): reset it once it is back.
                    self.reset_device()?;
                }
                return Ok(());
            }
        };
        let header = ResponseHeader::decode(&answer).map(|(h, _)| h);
        match header {
            Ok(h) if h.status == Status::Ok => {
                if let Some(client) = self.clients.get_mut(&id) {
                    client.owned.record(&request.request, request.target, h.id);
                }
                self.reply(id, tag, &BrokerMessage::ControlReply(answer), None);
            }
            Ok(h) if h.status == Status::Stale => {
                self.reply(id, tag, &BrokerMessage::ControlReply(answer), None);
                log::warn!("broker: the device answered STALE: it restarted");
                self.reset_device()?;
            }
            Ok(_) => self.reply(id, tag, &BrokerMessage::ControlReply(answer), None),
            Err(e) => {
                log::warn!("broker: {code:?}: unreadable response: {e}");
                self.control_status(id, tag, bytes, Status::Io);
            }
        }
        Ok(())
    }

    /// Sends `request` with the current generation; the raw response.
    pub(super) fn forward_control(
        &mut self,
        request: &ControlRequest,
    ) -> Result<Vec<u8>, DriverError> {
        let bytes = ControlRequest {
            generation: self.generation,
            target: request.target,
            request: request.request.clone(),
        }
        .encode();
        let capacity = self.dev.response_capacity(request.request.code())?;
        let answer = self.dev.control_raw(&bytes, capacity)?;
        Ok(answer.bytes)
    }
}

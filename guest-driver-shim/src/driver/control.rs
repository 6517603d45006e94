//! Control requests: each goes on the controlq as one chain (the encoded
//! request, then a response buffer sized for the largest answer to its
//! code), one at a time, with a deadline. The buffers of a request the
//! driver stopped waiting for stay allocated until the device returns its
//! chain, and such a late answer is dropped.

use std::sync::Arc;
use std::time::Instant;

use mediaredir_proto::ProtoError;
use mediaredir_proto::control::{
    ControlRequest, MAX_CODECS, MAX_SOURCES, Request, RequestCode, ResponseHeader,
};
use mediaredir_proto::device::{CONTROLQ, DeviceConfig, HARD_MAX_SDP};
use mediaredir_proto::response::{
    RawCallStats, RawCapsHdr, RawCodecCap, RawPosition, RawSource, ResponseBody,
};

use super::{DriverError, MediaDevice, next_used, notify_if_needed, queue_full};
use crate::dma::DmaBuffer;
use crate::transport::Transport;

/// The raw answer to [`MediaDevice::control_raw`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// Used length the device reported (clamped to the buffer).
    pub used_len: u32,
    /// The first `used_len` bytes of the response buffer.
    pub bytes: Vec<u8>,
}

/// Buffers of a control chain in flight.
#[derive(Debug)]
pub(super) struct ControlPending {
    _request: DmaBuffer,
    response: DmaBuffer,
}

/// Response buffer size for a request code (header + largest body).
fn response_capacity(code: RequestCode, config: &DeviceConfig) -> usize {
    let body = match code {
        RequestCode::GetCaps => size_of::<RawCapsHdr>() + MAX_CODECS * size_of::<RawCodecCap>(),
        RequestCode::EnumSources => 8 + MAX_SOURCES * size_of::<RawSource>(),
        RequestCode::PresQueryPosition => size_of::<RawPosition>(),
        RequestCode::CallCreate => 8 + config.max_sdp.min(HARD_MAX_SDP) as usize,
        RequestCode::CallStats => size_of::<RawCallStats>(),
        _ => 0,
    };
    ResponseHeader::SIZE + body
}

impl<T: Transport> MediaDevice<T> {
    /// Sends `request` for `target` with the current generation, waits for
    /// the answer (at most the configured timeout) and decodes it. The body
    /// is [`ResponseBody::None`] unless the status is OK.
    pub fn control(
        &mut self,
        request: Request,
        target: u32,
    ) -> Result<(ResponseHeader, ResponseBody), DriverError> {
        let config = self.state()?.config;
        let code = request.code();
        let bytes = ControlRequest {
            generation: config.generation,
            target,
            request,
        }
        .encode();
        let answer = self.control_raw(&bytes, response_capacity(code, &config))?;
        if (answer.used_len as usize) < ResponseHeader::SIZE {
            return Err(ProtoError::Truncated {
                what: "response header",
                need: ResponseHeader::SIZE,
                got: answer.used_len as usize,
            }
            .into());
        }
        let (header, rest) = ResponseHeader::decode(&answer.bytes)?;
        let body = if header.status.is_ok() {
            ResponseBody::decode(code, rest)?
        } else {
            ResponseBody::None
        };
        Ok((header, body))
    }

    /// Bytes of response buffer a request with `code` needs (header plus
    /// its largest body), for callers of [`MediaDevice::control_raw`] that
    /// forward encoded requests (the broker).
    pub fn response_capacity(&self, code: RequestCode) -> Result<usize, DriverError> {
        Ok(response_capacity(code, &self.state()?.config))
    }

    /// Sends arbitrary bytes as the readable part of a control chain with a
    /// writable buffer of `response_capacity` bytes, and returns what the
    /// device wrote. For conformance tests of malformed requests.
    pub fn control_raw(
        &mut self,
        request: &[u8],
        response_capacity: usize,
    ) -> Result<RawResponse, DriverError> {
        let timeout = self.options.timeout;
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        let dma = Arc::clone(self.transport.dma());
        let request_buffer = dma.alloc(request.len().max(1), 8)?;
        request_buffer.write_at(0, request)?;
        let response = dma.alloc(response_capacity.max(1), 8)?;
        let vq = &mut state.queues[usize::from(CONTROLQ)];
        let head = vq
            .add_chain(
                &[request_buffer.segment(0, request.len())?],
                &[response.segment(0, response_capacity)?],
            )
            .map_err(queue_full(CONTROLQ))?;
        state.control.insert(
            head,
            ControlPending {
                _request: request_buffer,
                response,
            },
        );
        notify_if_needed(&mut self.transport, vq)?;
        let deadline = Instant::now() + timeout;
        loop {
            let Some(used) = next_used(&mut self.transport, vq, deadline)? else {
                log::warn!("control request (head {head}) unanswered after {timeout:?}");
                return Err(DriverError::Timeout {
                    queue: CONTROLQ,
                    after: timeout,
                });
            };
            let Some(pending) = state.control.remove(&used.head) else {
                log::warn!("controlq: used head {} has no request", used.head);
                continue;
            };
            if used.head != head {
                log::info!("controlq: late answer to an abandoned request dropped");
                continue;
            }
            let len = (used.len as usize).min(response_capacity);
            let bytes = pending.response.read_vec(0, len)?;
            return Ok(RawResponse {
                used_len: used.len,
                bytes,
            });
        }
    }
}

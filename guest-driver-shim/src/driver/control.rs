//! Control requests: each goes on the controlq as one chain (the encoded
//! request, then a response buffer sized for the largest answer to its
//! code) and is named by a [`ControlToken`] until its answer is collected.
//!
//! Two ways to wait, one mechanism: [`MediaDevice::submit_control`] and
//! [`MediaDevice::poll_control_answers`] let a caller with a loop of its
//! own (the broker) keep several requests in flight and never block on the
//! device; [`MediaDevice::control`] and [`MediaDevice::control_raw`] submit
//! one and wait for its answer, at most the configured timeout. A request
//! whose caller stopped waiting ([`MediaDevice::abandon_control`], or a
//! blocking wait that timed out) keeps its buffers allocated until the
//! device returns its chain (a late answer must never land in reused
//! memory), and that late answer is dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediaredir_proto::ProtoError;
use mediaredir_proto::control::{
    ControlRequest, MAX_CODECS, MAX_SOURCES, Request, RequestCode, ResponseHeader,
};
use mediaredir_proto::device::{CONTROLQ, DeviceConfig, HARD_MAX_SDP};
use mediaredir_proto::response::{
    RawCallStats, RawCapsHdr, RawCodecCap, RawPosition, RawSource, ResponseBody,
};

use super::{DriverError, MediaDevice, State, notify_if_needed, queue_full};
use crate::dma::DmaBuffer;
use crate::transport::Transport;
use crate::virtqueue::UsedElem;

/// The raw answer to [`MediaDevice::control_raw`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// Used length the device reported (clamped to the buffer).
    pub used_len: u32,
    /// The first `used_len` bytes of the response buffer.
    pub bytes: Vec<u8>,
}

/// Names a control request from [`MediaDevice::submit_control`] until its
/// answer is collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ControlToken(pub u64);

/// An answer collected by [`MediaDevice::poll_control_answers`].
#[derive(Debug)]
pub struct ControlAnswer {
    /// The token [`MediaDevice::submit_control`] returned.
    pub token: ControlToken,
    /// What the device wrote, or why it could not be read.
    pub response: Result<RawResponse, DriverError>,
}

/// Buffers of a control chain in flight.
#[derive(Debug)]
pub(super) struct ControlPending {
    token: ControlToken,
    _request: DmaBuffer,
    response: DmaBuffer,
    capacity: usize,
    /// Nobody waits for the answer any more: it is dropped on arrival.
    abandoned: bool,
}

/// Answers collected while waiting for another one (a blocking wait),
/// kept for the next [`MediaDevice::poll_control_answers`].
pub(super) type ReadyAnswers = VecDeque<ControlAnswer>;

/// Response buffer size for a request code (header + largest body).
fn response_capacity(code: RequestCode, config: &DeviceConfig) -> usize {
    let body = match code {
        RequestCode::GetCaps => size_of::<RawCapsHdr>() + MAX_CODECS * size_of::<RawCodecCap>(),
        RequestCode::EnumSources => 8 + MAX_SOURCES * size_of::<RawSource>(),
        RequestCode::PresQueryPosition => size_of::<RawPosition>(),
        RequestCode::CallCreate => 8 + config.limits.max_sdp.min(HARD_MAX_SDP) as usize,
        RequestCode::CallStats => size_of::<RawCallStats>(),
        _ => 0,
    };
    ResponseHeader::SIZE + body
}

/// Reads the answer of a returned chain.
fn read_answer(pending: &ControlPending, used: UsedElem) -> ControlAnswer {
    let len = (used.len as usize).min(pending.capacity);
    ControlAnswer {
        token: pending.token,
        response: pending
            .response
            .read_vec(0, len)
            .map(|bytes| RawResponse {
                used_len: used.len,
                bytes,
            })
            .map_err(DriverError::from),
    }
}

/// Moves the answers the device returned into `state.control_ready`,
/// dropping those nobody waits for.
fn collect_answers(state: &mut State) {
    let vq = &mut state.queues[usize::from(CONTROLQ)];
    while let Some(used) = vq.poll_used() {
        let Some(pending) = state.control.remove(&used.head) else {
            log::warn!("controlq: used head {} has no request", used.head);
            continue;
        };
        if pending.abandoned {
            log::info!("controlq: late answer to an abandoned request dropped");
            continue;
        }
        state.control_ready.push_back(read_answer(&pending, used));
    }
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
    /// its largest body), for callers of [`MediaDevice::control_raw`] and
    /// [`MediaDevice::submit_control`] that forward encoded requests (the
    /// broker).
    pub fn response_capacity(&self, code: RequestCode) -> Result<usize, DriverError> {
        Ok(response_capacity(code, &self.state()?.config))
    }

    /// How long [`MediaDevice::control`] waits for an answer (the
    /// configured timeout); a caller of [`MediaDevice::submit_control`]
    /// gives up after as long.
    pub fn control_timeout(&self) -> Duration {
        self.options.timeout
    }

    /// Sends arbitrary bytes as the readable part of a control chain with a
    /// writable buffer of `response_capacity` bytes, and returns what the
    /// device wrote, waiting at most the configured timeout. For
    /// conformance tests of malformed requests.
    pub fn control_raw(
        &mut self,
        request: &[u8],
        response_capacity: usize,
    ) -> Result<RawResponse, DriverError> {
        let token = self.submit_control(request, response_capacity)?;
        self.wait_control(token, self.options.timeout)
    }

    /// Puts `request` on the controlq with a writable buffer of
    /// `response_capacity` bytes and returns at once; the answer comes from
    /// [`MediaDevice::poll_control_answers`]. `QueueFull` when the controlq
    /// has no room.
    pub fn submit_control(
        &mut self,
        request: &[u8],
        response_capacity: usize,
    ) -> Result<ControlToken, DriverError> {
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
        let token = ControlToken(self.next_token);
        self.next_token += 1;
        state.control.insert(
            head,
            ControlPending {
                token,
                _request: request_buffer,
                response,
                capacity: response_capacity,
                abandoned: false,
            },
        );
        notify_if_needed(&mut self.transport, vq)?;
        Ok(token)
    }

    /// The answers the device has returned since the last call, without
    /// waiting (the controlq's used-buffer notification says when to call
    /// it again: [`crate::transport::Transport::used_fd`]).
    pub fn poll_control_answers(&mut self) -> Result<Vec<ControlAnswer>, DriverError> {
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        collect_answers(state);
        Ok(state.control_ready.drain(..).collect())
    }

    /// Stops waiting for `token`: its buffers stay allocated until the
    /// device returns the chain, and its answer is then dropped. Nothing
    /// happens for a token already answered and collected.
    pub fn abandon_control(&mut self, token: ControlToken) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        state.control_ready.retain(|a| a.token != token);
        if let Some(pending) = state.control.values_mut().find(|p| p.token == token) {
            pending.abandoned = true;
        }
    }

    /// Waits at most `timeout` for the answer to `token`; answers to other
    /// requests that arrive meanwhile are kept for
    /// [`MediaDevice::poll_control_answers`]. On timeout the request is
    /// abandoned.
    fn wait_control(
        &mut self,
        token: ControlToken,
        timeout: Duration,
    ) -> Result<RawResponse, DriverError> {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
            collect_answers(state);
            let mine = state.control_ready.iter().position(|a| a.token == token);
            if let Some(answer) = mine.and_then(|at| state.control_ready.remove(at)) {
                return answer.response;
            }
            let vq = &state.queues[usize::from(CONTROLQ)];
            if vq.has_used() {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                log::warn!("control request {token:?} unanswered after {timeout:?}");
                self.abandon_control(token);
                return Err(DriverError::Timeout {
                    queue: CONTROLQ,
                    after: timeout,
                });
            }
            self.transport.wait_used(CONTROLQ, deadline - now)?;
        }
    }
}

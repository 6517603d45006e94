//! Call media sessions (spec 7.12): the guest softphone keeps its
//! signalling and exchanges SDP with the device; the client runs the RTP
//! media with the remote peer. This is the session state table, and what
//! the client reports about each session.
//!
//! `CALL_CREATE` is the one request whose answer waits for the client: the
//! response carries the client's SDP. The model marks the reply deferred;
//! the queue layer keeps the chain until the client's `CallLocalSdp` (or
//! 10 s, then `IO`) and the model says what to answer.

use mediaredir_proto::control::Request;
use mediaredir_proto::event::Event;
use mediaredir_proto::response::{CallStatsInfo, ResponseBody};
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{self, CallAction, MediaMask};

use super::{Action, DeviceModel, Reply};

/// State of a call session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// The client is producing its SDP (`CALL_CREATE` not answered yet).
    Creating {
        /// Whether the client makes the offer (else it answers one).
        offer: bool,
    },
    /// A local offer waits for `CALL_SET_REMOTE`.
    Negotiating,
    /// SDP exchanged; media not started.
    Ready,
    /// Media flowing.
    Active,
    /// On hold.
    Held,
    /// Ended without `CALL_END` (peer hang-up, failure, client gone).
    Ended,
}

/// A call media session.
#[derive(Debug, Clone)]
pub struct CallSession {
    /// Session id.
    pub id: u32,
    /// State.
    pub state: CallState,
    /// Last statistics the client reported.
    pub stats: CallStatsInfo,
}

/// What to answer a deferred `CALL_CREATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredAnswer {
    /// The session (the deferred request's id).
    pub session: u32,
    /// The reply: `OK` with the client's SDP, or an error.
    pub reply: Reply,
}

impl DeviceModel {
    /// A call request (spec 7.12 state table).
    pub(super) fn call_request(
        &mut self,
        request: Request,
        target: u32,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        if !self.features.call {
            // DEV-INIT-1: a request of a feature not negotiated is unknown.
            return Err(Status::UnknownRequest);
        }
        if let Request::CallCreate { sdp } = request {
            return self.call_create(sdp, actions);
        }
        let session = self.calls.get_mut(&target).ok_or(Status::NoEntity)?;
        let send = |action| {
            Action::Send(wire::Message::CallControl {
                session: target,
                action,
            })
        };
        use CallState as S;
        match (request, session.state) {
            (Request::CallEnd, _) => {
                let ended = session.state == S::Ended;
                self.calls.remove(&target);
                if !ended {
                    actions.push(send(CallAction::End));
                }
            }
            (Request::CallStats, _) => {
                return Ok(Reply::ok(target, ResponseBody::CallStats(session.stats)));
            }
            (_, S::Creating { .. }) => return Err(Status::BadState),
            (Request::CallSetRemote { sdp }, S::Negotiating) => {
                session.state = S::Ready;
                actions.push(Action::Send(wire::Message::CallRemoteSdp {
                    session: target,
                    sdp,
                }));
            }
            (Request::CallStart, S::Ready) => {
                session.state = S::Active;
                actions.push(send(CallAction::Start));
            }
            (Request::CallStart, S::Active) => {}
            (Request::CallHold { hold: true }, S::Active) => {
                session.state = S::Held;
                actions.push(send(CallAction::Hold));
            }
            (Request::CallHold { hold: false }, S::Held) => {
                session.state = S::Active;
                actions.push(send(CallAction::Resume));
            }
            (Request::CallHold { hold: true }, S::Held)
            | (Request::CallHold { hold: false }, S::Active) => {}
            (Request::CallDtmf { event, duration_ms }, S::Active) => {
                if event > wire::MAX_DTMF_EVENT
                    || !(wire::MIN_DTMF_DURATION_MS..=wire::MAX_DTMF_DURATION_MS)
                        .contains(&duration_ms)
                {
                    return Err(Status::Invalid);
                }
                actions.push(send(CallAction::Dtmf { event, duration_ms }));
            }
            (Request::CallMute { media, mute }, state) if state != S::Ended => {
                let mask = MediaMask::from_bits(media)
                    .filter(|m| !m.is_empty())
                    .ok_or(Status::Invalid)?;
                actions.push(send(if mute {
                    CallAction::Mute(mask)
                } else {
                    CallAction::Unmute(mask)
                }));
            }
            _ => return Err(Status::BadState),
        }
        Ok(Reply::ok(target, ResponseBody::None))
    }

    fn call_create(
        &mut self,
        sdp: Option<String>,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        let caps = self.client.as_ref().ok_or(Status::NoClient)?;
        if !caps.features.contains(wire::ClientFeatures::CALL) {
            return Err(Status::Unsupported);
        }
        if self.calls.len() >= self.limits.device.max_call_sessions as usize {
            return Err(Status::Limit);
        }
        let id = self.alloc_id();
        let offer = sdp.is_none();
        self.calls.insert(
            id,
            CallSession {
                id,
                state: CallState::Creating { offer },
                stats: CallStatsInfo::default(),
            },
        );
        actions.push(Action::Send(wire::Message::CallCreate {
            session: id,
            sdp: sdp.unwrap_or_default(),
        }));
        Ok(Reply {
            status: Status::Ok,
            id,
            body: ResponseBody::None,
            deferred: true,
        })
    }

    /// The client's SDP for session `session` arrived: the deferred
    /// `CALL_CREATE` can be answered.
    fn call_local_sdp(&mut self, session: u32, sdp: &str) -> Option<DeferredAnswer> {
        let call = self.calls.get_mut(&session)?;
        let CallState::Creating { offer } = call.state else {
            log::warn!("client sent SDP for call {session}, which has its SDP already");
            return None;
        };
        let too_long = sdp.len() > self.limits.device.max_sdp as usize;
        if sdp.is_empty() || too_long || sdp.contains('\0') {
            log::warn!(
                "client SDP for call {session} refused ({} bytes)",
                sdp.len()
            );
            self.calls.remove(&session);
            return Some(DeferredAnswer {
                session,
                reply: Reply::error(Status::Io, 0),
            });
        }
        call.state = if offer {
            CallState::Negotiating
        } else {
            CallState::Ready
        };
        Some(DeferredAnswer {
            session,
            reply: Reply::ok(session, ResponseBody::CallSdp(sdp.to_owned())),
        })
    }

    /// A deferred `CALL_CREATE` got no SDP in time (DEV-CALL-2): the
    /// session is forgotten and ended at the client.
    pub fn call_create_timed_out(&mut self, session: u32) -> (Option<DeferredAnswer>, Vec<Action>) {
        match self.calls.get(&session).map(|c| c.state) {
            Some(CallState::Creating { .. }) => {
                self.calls.remove(&session);
                let answer = DeferredAnswer {
                    session,
                    reply: Reply::error(Status::Io, 0),
                };
                let end = Action::Send(wire::Message::CallControl {
                    session,
                    action: CallAction::End,
                });
                (Some(answer), vec![end])
            }
            _ => (None, Vec::new()),
        }
    }

    /// A call message from the client.
    pub(super) fn call_message(&mut self, msg: &wire::Message, actions: &mut Vec<Action>) {
        match msg {
            wire::Message::CallLocalSdp { session, sdp } => {
                if let Some(answer) = self.call_local_sdp(*session, sdp) {
                    actions.push(Action::AnswerDeferred(answer));
                }
            }
            wire::Message::CallStats(s) => {
                if let Some(call) = self.calls.get_mut(&s.session) {
                    call.stats = CallStatsInfo {
                        jitter_us: s.jitter_us,
                        rtt_us: s.rtt_us,
                        packets_lost: s.packets_lost,
                        packets_received: s.packets_received,
                        mos_x100: s.mos_x100,
                    };
                    self.push_event(Event::CallStats {
                        session: s.session,
                        jitter_us: u64::from(s.jitter_us),
                        packets_lost: s.packets_lost,
                        rtt_us: u64::from(s.rtt_us),
                        mos_x100: u64::from(s.mos_x100),
                        packets_received: s.packets_received,
                    });
                }
            }
            wire::Message::CallEnded {
                session,
                status,
                reason,
            } => {
                let Some(call) = self.calls.get_mut(session) else {
                    return;
                };
                match call.state {
                    CallState::Ended => {}
                    CallState::Creating { .. } => {
                        // The client gave up before answering.
                        self.calls.remove(session);
                        let answer = DeferredAnswer {
                            session: *session,
                            reply: Reply::error(*status, 0),
                        };
                        actions.push(Action::AnswerDeferred(answer));
                    }
                    _ => {
                        log::info!("call {session} ended at the client: {status}: {reason}");
                        call.state = CallState::Ended;
                        self.push_event(Event::CallEnded {
                            session: *session,
                            status: *status,
                        });
                    }
                }
            }
            wire::Message::CallDtmfReceived { session, event }
                if self.calls.contains_key(session) =>
            {
                self.push_event(Event::CallDtmf {
                    session: *session,
                    event: u64::from(*event),
                });
            }
            _ => {}
        }
    }

    /// The client went away: every session ends (DEV-CALL-3); creations
    /// waiting for its SDP are answered `NO_CLIENT`.
    pub(super) fn calls_client_gone(&mut self, actions: &mut Vec<Action>) {
        let ids: Vec<u32> = self.calls.keys().copied().collect();
        for id in ids {
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            match call.state {
                CallState::Creating { .. } => {
                    self.calls.remove(&id);
                    actions.push(Action::AnswerDeferred(DeferredAnswer {
                        session: id,
                        reply: Reply::error(Status::NoClient, 0),
                    }));
                }
                CallState::Ended => {}
                _ => {
                    call.state = CallState::Ended;
                    self.push_event(Event::CallEnded {
                        session: id,
                        status: Status::NoClient,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use mediaredir_proto::control::ControlRequest;

    use super::*;
    use crate::limits::Limits;

    fn model() -> DeviceModel {
        let mut m = DeviceModel::new(3, Limits::default());
        m.set_features(super::super::Features {
            call: true,
            ..Default::default()
        });
        m.client_connected(wire::Capabilities {
            features: wire::ClientFeatures::CALL,
            codecs: Vec::new(),
            sources: Vec::new(),
        });
        m
    }

    fn req(m: &mut DeviceModel, target: u32, request: Request) -> (Reply, Vec<Action>) {
        m.handle(
            ControlRequest {
                generation: 3,
                target,
                request,
            },
            Instant::now(),
        )
    }

    fn answered(actions: &[Action]) -> Option<&DeferredAnswer> {
        actions.iter().find_map(|a| match a {
            Action::AnswerDeferred(d) => Some(d),
            _ => None,
        })
    }

    /// A session through a local offer, the remote answer and start.
    fn active(m: &mut DeviceModel) -> u32 {
        let (reply, actions) = req(m, 0, Request::CallCreate { sdp: None });
        assert!(reply.deferred && reply.status == Status::Ok);
        let id = reply.id;
        assert_eq!(
            actions,
            vec![Action::Send(wire::Message::CallCreate {
                session: id,
                sdp: String::new()
            })]
        );
        let actions = m.client_message(
            &wire::Message::CallLocalSdp {
                session: id,
                sdp: "v=0\r\n".into(),
            },
            Instant::now(),
        );
        let answer = answered(&actions).expect("the deferred create is answered");
        assert_eq!(answer.reply.body, ResponseBody::CallSdp("v=0\r\n".into()));
        assert_eq!(
            req(m, id, Request::CallStart).0.status,
            Status::BadState,
            "NEGOTIATING"
        );
        let (reply, actions) = req(
            m,
            id,
            Request::CallSetRemote {
                sdp: "v=0 remote".into(),
            },
        );
        assert_eq!(reply.status, Status::Ok);
        assert!(matches!(
            &actions[..],
            [Action::Send(wire::Message::CallRemoteSdp { .. })]
        ));
        assert_eq!(req(m, id, Request::CallStart).0.status, Status::Ok);
        id
    }

    #[test]
    fn the_state_table() {
        let mut m = model();
        let id = active(&mut m);
        let dtmf = |event, duration_ms| Request::CallDtmf { event, duration_ms };
        assert_eq!(req(&mut m, id, dtmf(5, 100)).0.status, Status::Ok);
        assert_eq!(req(&mut m, id, dtmf(16, 100)).0.status, Status::Invalid);
        assert_eq!(req(&mut m, id, dtmf(5, 1)).0.status, Status::Invalid);
        assert_eq!(
            req(&mut m, id, Request::CallHold { hold: true }).0.status,
            Status::Ok
        );
        assert_eq!(
            req(&mut m, id, dtmf(5, 100)).0.status,
            Status::BadState,
            "held"
        );
        assert_eq!(
            req(&mut m, id, Request::CallHold { hold: false }).0.status,
            Status::Ok
        );
        let mute = |media, mute| Request::CallMute { media, mute };
        assert_eq!(req(&mut m, id, mute(1, true)).0.status, Status::Ok);
        assert_eq!(req(&mut m, id, mute(0, true)).0.status, Status::Invalid);
        assert_eq!(
            req(&mut m, id, Request::CallSetRemote { sdp: "x".into() })
                .0
                .status,
            Status::BadState
        );
        // Statistics as reported.
        m.client_message(
            &wire::Message::CallStats(wire::CallStats {
                session: id,
                jitter_us: 800,
                packets_lost: 1,
                packets_received: 500,
                rtt_us: 2000,
                mos_x100: 430,
            }),
            Instant::now(),
        );
        let (reply, _) = req(&mut m, id, Request::CallStats);
        assert!(
            matches!(reply.body, ResponseBody::CallStats(s) if s.packets_received == 500 && s.mos_x100 == 430)
        );
        // The peer hangs up: ENDED, then only CALL_END and CALL_STATS work.
        m.client_message(
            &wire::Message::CallEnded {
                session: id,
                status: Status::Ok,
                reason: "bye".into(),
            },
            Instant::now(),
        );
        assert_eq!(
            req(&mut m, id, Request::CallHold { hold: true }).0.status,
            Status::BadState
        );
        assert_eq!(req(&mut m, id, Request::CallStats).0.status, Status::Ok);
        let (reply, actions) = req(&mut m, id, Request::CallEnd);
        assert_eq!(reply.status, Status::Ok);
        assert!(
            actions.is_empty(),
            "an ended call is not ended again at the client"
        );
        assert_eq!(
            req(&mut m, id, Request::CallStats).0.status,
            Status::NoEntity
        );
    }

    #[test]
    fn answering_a_remote_offer_and_losing_the_client() {
        let mut m = model();
        let (reply, _) = req(
            &mut m,
            0,
            Request::CallCreate {
                sdp: Some("v=0 offer".into()),
            },
        );
        let id = reply.id;
        let actions = m.client_message(
            &wire::Message::CallLocalSdp {
                session: id,
                sdp: "v=0 answer".into(),
            },
            Instant::now(),
        );
        assert!(answered(&actions).is_some());
        assert_eq!(
            req(&mut m, id, Request::CallStart).0.status,
            Status::Ok,
            "READY"
        );
        let (pending, _) = req(&mut m, 0, Request::CallCreate { sdp: None });
        let actions = m.client_disconnected();
        let answer = answered(&actions).expect("the pending create is answered");
        assert_eq!(
            (answer.session, answer.reply.status),
            (pending.id, Status::NoClient)
        );
        let events: Vec<Event> = std::iter::from_fn(|| m.events.pop()).collect();
        assert!(events.contains(&Event::CallEnded {
            session: id,
            status: Status::NoClient
        }));
    }

    #[test]
    fn limits_and_timeouts() {
        let mut m = model();
        let (reply, _) = req(&mut m, 0, Request::CallCreate { sdp: None });
        let (answer, actions) = m.call_create_timed_out(reply.id);
        assert_eq!(answer.map(|a| a.reply.status), Some(Status::Io));
        assert_eq!(
            actions,
            vec![Action::Send(wire::Message::CallControl {
                session: reply.id,
                action: CallAction::End
            })]
        );
        let late = m.client_message(
            &wire::Message::CallLocalSdp {
                session: reply.id,
                sdp: "v=0".into(),
            },
            Instant::now(),
        );
        assert!(answered(&late).is_none(), "a late SDP answers nothing");
        for _ in 0..m.limits.device.max_call_sessions {
            assert_eq!(
                req(&mut m, 0, Request::CallCreate { sdp: None }).0.status,
                Status::Ok
            );
        }
        assert_eq!(
            req(&mut m, 0, Request::CallCreate { sdp: None }).0.status,
            Status::Limit
        );
        let mut no_call = DeviceModel::new(3, Limits::default());
        no_call.set_features(super::super::Features {
            call: true,
            ..Default::default()
        });
        assert_eq!(
            req(&mut no_call, 0, Request::CallCreate { sdp: None })
                .0
                .status,
            Status::NoClient
        );
        no_call.client_connected(wire::Capabilities::default());
        assert_eq!(
            req(&mut no_call, 0, Request::CallCreate { sdp: None })
                .0
                .status,
            Status::Unsupported
        );
    }
}

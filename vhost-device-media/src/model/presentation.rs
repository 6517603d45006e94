//! A presentation: streams that play on one clock, with its transport state
//! (spec, "Presentation states") and what the client reported of its
//! position (`super::position`); and the control requests on presentations
//! (`PRES_*`).

use std::time::Instant;

use mediaredir_proto::control::{Geometry, UNITY_Q16};
use mediaredir_proto::response::{PositionInfo, PresentationState, ResponseBody};
use mediaredir_proto::status::Status;
use mediaredir_proto::wire;

use super::position::Progress;
use super::to_wire::{create_presentation_msg, geometry_msg};
use super::{Action, DeviceModel, Reply};

/// A presentation.
#[derive(Debug)]
pub struct Presentation {
    /// Presentation id.
    pub id: u32,
    /// Live source (no preroll).
    pub live: bool,
    /// Transport state.
    pub state: PresentationState,
    /// Playback rate in 1/65536 units.
    pub rate_q16: u32,
    /// Overlay geometry, once set.
    pub geometry: Option<Geometry>,
    /// Its streams, in creation order.
    pub streams: Vec<u32>,
    /// What the client reported of its position.
    pub progress: Progress,
}

impl Presentation {
    /// A new, idle presentation.
    pub fn new(id: u32, live: bool) -> Presentation {
        Presentation {
            id,
            live,
            state: PresentationState::Idle,
            rate_q16: UNITY_Q16,
            geometry: None,
            streams: Vec::new(),
            progress: Progress::default(),
        }
    }
}

impl DeviceModel {
    /// The presentation a request targets (`NO_ENTITY` if there is none).
    fn presentation_mut(&mut self, target: u32) -> Result<&mut Presentation, Status> {
        self.presentations.get_mut(&target).ok_or(Status::NoEntity)
    }

    /// `PRES_CREATE`.
    pub(super) fn create_presentation(
        &mut self,
        live: bool,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        if self.presentations.len() >= self.limits.device.max_presentations as usize {
            return Err(Status::Limit);
        }
        let id = self.alloc_id();
        self.presentations.insert(id, Presentation::new(id, live));
        actions.push(Action::Send(create_presentation_msg(id, live)));
        Ok(Reply::ok(id, ResponseBody::None))
    }

    /// `PRES_DESTROY`: its streams go with it.
    pub(super) fn destroy_presentation(
        &mut self,
        target: u32,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        let pres = self.presentations.remove(&target).ok_or(Status::NoEntity)?;
        for stream in pres.streams {
            if let Some(removed) = self.streams.remove(&stream) {
                actions.extend(removed.drain_txq());
            }
            actions.push(Action::Cancel {
                stream,
                status: Status::Cancelled,
            });
            actions.push(Action::Forget { stream });
        }
        actions.push(Action::Send(wire::Message::DestroyPresentation {
            id: target,
        }));
        Ok(Reply::ok(target, ResponseBody::None))
    }

    /// `PRES_PLAY` (`play`) or `PRES_PAUSE`.
    pub(super) fn play_or_pause(
        &mut self,
        target: u32,
        play: bool,
        now: Instant,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        // The position holds where the old state had it (a pause stops
        // it where playing moved it to) until the client's reports show
        // progress again.
        let (position, _) = self.position_now(target, now).ok_or(Status::NoEntity)?;
        let pres = self.presentation_mut(target)?;
        pres.progress.rebase(position, now);
        if play {
            pres.state = PresentationState::Playing;
            actions.push(Action::Send(wire::Message::Play {
                presentation: target,
            }));
        } else {
            pres.state = PresentationState::Paused;
            actions.push(Action::Send(wire::Message::Pause {
                presentation: target,
            }));
        }
        Ok(Reply::ok(target, ResponseBody::None))
    }

    /// `PRES_FLUSH`: the position jumps to `position_ns` and the streams'
    /// in-flight data is cancelled.
    pub(super) fn flush(
        &mut self,
        target: u32,
        position_ns: u64,
        now: Instant,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        let pres = self.presentation_mut(target)?;
        pres.progress.flush(position_ns, now);
        let streams = pres.streams.clone();
        for id in streams {
            if let Some(stream) = self.streams.get_mut(&id) {
                stream.reopen();
                stream.sent_end_ns = None;
                actions.extend(stream.drain_txq());
                actions.push(Action::Cancel {
                    stream: id,
                    status: Status::Cancelled,
                });
            }
        }
        actions.push(Action::Send(wire::Message::Flush {
            presentation: target,
            position_ns,
        }));
        Ok(Reply::ok(target, ResponseBody::None))
    }

    /// `PRES_SET_RATE`.
    pub(super) fn set_rate(
        &mut self,
        target: u32,
        rate_q16: u32,
        now: Instant,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        let (position, _) = self.position_now(target, now).ok_or(Status::NoEntity)?;
        let pres = self.presentation_mut(target)?;
        pres.progress.rebase(position, now);
        pres.rate_q16 = rate_q16;
        actions.push(Action::Send(wire::Message::SetRate {
            presentation: target,
            rate_q16,
        }));
        Ok(Reply::ok(target, ResponseBody::None))
    }

    /// `PRES_SET_GEOMETRY`.
    pub(super) fn set_geometry(
        &mut self,
        target: u32,
        geometry: Geometry,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        let pres = self.presentation_mut(target)?;
        actions.push(Action::Send(wire::Message::SetGeometry(geometry_msg(
            target, &geometry,
        ))));
        pres.geometry = Some(geometry);
        Ok(Reply::ok(target, ResponseBody::None))
    }

    /// `PRES_QUERY_POSITION` (spec 7.13, "Position").
    pub(super) fn query_position(&self, target: u32, now: Instant) -> Result<Reply, Status> {
        let pres = self.presentations.get(&target).ok_or(Status::NoEntity)?;
        if self.client.is_none() {
            return Err(Status::NoClient);
        }
        let (position_ns, buffered_ns) = self.position_now(target, now).ok_or(Status::NoEntity)?;
        Ok(Reply::ok(
            target,
            ResponseBody::Position(PositionInfo {
                position_ns,
                buffered_ns,
                state: pres.state,
            }),
        ))
    }
}

//! A presentation: streams that play on one clock, with its transport state
//! (spec, "Presentation states") and what the client last reported of its
//! position; and the control requests on presentations (`PRES_*`).

use std::time::Instant;

use mediaredir_proto::control::{Geometry, UNITY_Q16};
use mediaredir_proto::response::{PositionInfo, PresentationState, ResponseBody};
use mediaredir_proto::status::Status;
use mediaredir_proto::wire;

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
    /// Last position the client reported, and when.
    pub position: Option<(u64, Instant)>,
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
            position: None,
        }
    }

    /// The position now: the client's last report, advanced by the time
    /// since at the current rate while playing.
    pub fn position_at(&self, now: Instant) -> PositionInfo {
        let position_ns = match self.position {
            None => mediaredir_proto::time::TIME_NONE,
            Some((ns, at)) if self.state == PresentationState::Playing => {
                let elapsed =
                    u64::try_from(now.saturating_duration_since(at).as_nanos()).unwrap_or(u64::MAX);
                let advanced =
                    u128::from(elapsed) * u128::from(self.rate_q16) / u128::from(UNITY_Q16);
                ns.saturating_add(u64::try_from(advanced).unwrap_or(u64::MAX))
            }
            Some((ns, _)) => ns,
        };
        PositionInfo {
            position_ns,
            buffered_ns: 0,
            state: self.state,
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
        let pres = self.presentation_mut(target)?;
        // Restart position extrapolation from now, from where the
        // old state had it: a pause stops the position where
        // playing moved it to, a play starts from where the pause
        // held it (computed after the change, a pause fell back to
        // the client's last report, up to a tick behind).
        if pres.position.is_some() {
            let position = pres.position_at(now).position_ns;
            pres.position = Some((position, now));
        }
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
        pres.position = Some((position_ns, now));
        let streams = pres.streams.clone();
        for id in streams {
            if let Some(stream) = self.streams.get_mut(&id) {
                stream.reopen();
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
        let pres = self.presentation_mut(target)?;
        let position = pres.position_at(now).position_ns;
        pres.position = Some((position, now));
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

    /// `PRES_QUERY_POSITION`.
    pub(super) fn query_position(&self, target: u32, now: Instant) -> Result<Reply, Status> {
        let pres = self.presentations.get(&target).ok_or(Status::NoEntity)?;
        if self.client.is_none() {
            return Err(Status::NoClient);
        }
        Ok(Reply::ok(
            target,
            ResponseBody::Position(pres.position_at(now)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn position_advances_only_while_playing() {
        let t0 = Instant::now();
        let mut p = Presentation::new(1, false);
        assert_eq!(
            p.position_at(t0).position_ns,
            mediaredir_proto::time::TIME_NONE
        );
        p.position = Some((1_000, t0));
        p.state = PresentationState::Playing;
        p.rate_q16 = 2 * UNITY_Q16;
        assert_eq!(
            p.position_at(t0 + Duration::from_micros(1)).position_ns,
            3_000
        );
        p.state = PresentationState::Paused;
        assert_eq!(
            p.position_at(t0 + Duration::from_secs(5)).position_ns,
            1_000
        );
    }
}

//! A presentation: streams that play on one clock, with its transport state
//! (spec, "Presentation states") and what the client last reported of its
//! position.

use std::time::Instant;

use mediaredir_proto::control::{Geometry, UNITY_Q16};
use mediaredir_proto::response::{PositionInfo, PresentationState};

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

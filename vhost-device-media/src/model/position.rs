//! The position a presentation shows the guest (spec 7.13, "Position"),
//! made from the client's output only: its reports, the rate at which its
//! reported position advances against the device's clock, and the media
//! the device has forwarded to it.
//!
//! A wall clock alone would have a stalled client look as if it played on
//! (a client stopped for 14 s showed the guest 2.9 s -> 16.9 s while it had
//! rendered 2.8 s). So the device extrapolates only at the rate the
//! client's last two reports measured, only for [`EXTRAPOLATION_WINDOW`]
//! after the last report, and never past the end of the media it has
//! forwarded: when reports stop, or the client has nothing left to play,
//! the position stops. A playing client whose position does not advance
//! for [`STALL_TIMEOUT`] while it was sent media to play (at least
//! [`STALL_MIN_AHEAD`] ahead) is lost (DEV-TIME-3); one that played all it
//! got is starved, not lost.

use std::time::{Duration, Instant};

use mediaredir_proto::control::UNITY_Q16;
use mediaredir_proto::response::PresentationState;
use mediaredir_proto::time::TIME_NONE;

use super::{DeviceModel, StreamState};

/// How long after a report the position goes on advancing (spec 7.13: a
/// client reports at least once a second while playing).
pub const EXTRAPOLATION_WINDOW: Duration = Duration::from_secs(1);

/// A client that reported progress, is `PLAYING` and holds media, and whose
/// reported position has not advanced for this long, is lost (DEV-TIME-3).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(3);

/// The media a stalled client must have been sent ahead of its position:
/// a client that played all it got shows the last frame (up to a frame's
/// duration before the end of what it was sent) and is starved, not stalled.
pub const STALL_MIN_AHEAD: Duration = Duration::from_millis(500);

/// Reports closer together than this measure no rate (their arrival
/// jitter would dominate).
const MIN_RATE_SPAN: Duration = Duration::from_millis(100);

/// What the device knows of a presentation's position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The position extrapolation starts from, and when it was true: the
    /// client's latest report, or where a flush, pause, play or rate
    /// change left the position.
    base: Option<(u64, Instant)>,
    /// The client's latest report since the last change of state, rate or
    /// segment: what the next report measures the rate against.
    reported: Option<(u64, Instant)>,
    /// The rate the client's last two reports showed (1/65536 units).
    rate_q16: Option<u32>,
    /// The position the client really reached: its latest report, or the
    /// start of the segment after a flush.
    reached: Option<u64>,
    /// When the client's reported position last advanced (`None`: not
    /// since the last flush or connection).
    advanced_at: Option<Instant>,
    /// The stall since `advanced_at` was reported (once is enough).
    stall_reported: bool,
}

impl Progress {
    /// A report from the client: position `position_ns`, arrived at `now`;
    /// the presentation's rate is `max_rate_q16`.
    pub fn report(&mut self, position_ns: u64, now: Instant, max_rate_q16: u32) {
        if let Some((before, at)) = self.reported {
            let span = now.saturating_duration_since(at);
            if position_ns > before {
                self.advanced_at = Some(now);
                self.stall_reported = false;
            }
            if span >= MIN_RATE_SPAN {
                let moved = u128::from(position_ns.saturating_sub(before));
                let rate = moved * u128::from(UNITY_Q16) / span.as_nanos().max(1);
                self.rate_q16 = Some(u32::try_from(rate).unwrap_or(u32::MAX).min(max_rate_q16));
            }
        }
        self.reported = Some((position_ns, now));
        self.base = Some((position_ns, now));
        self.reached = Some(position_ns);
    }

    /// `PRES_FLUSH`: a new segment starts at `position_ns`.
    pub fn flush(&mut self, position_ns: u64, now: Instant) {
        *self = Progress {
            base: Some((position_ns, now)),
            reached: Some(position_ns),
            ..Progress::default()
        };
    }

    /// The presentation's state or rate changes at `now`, when the
    /// position is `position_ns` (as [`Progress::position`] had it): the
    /// position holds there until the client's reports show progress
    /// again. A stall is timed from here.
    pub fn rebase(&mut self, position_ns: u64, now: Instant) {
        if self.base.is_some() {
            self.base = Some((position_ns, now));
        }
        self.reported = None;
        self.rate_q16 = None;
        if self.advanced_at.is_some() {
            self.advanced_at = Some(now);
        }
        self.stall_reported = false;
    }

    /// The client went away or a new one came: nothing is known.
    pub fn forget(&mut self) {
        *self = Progress::default();
    }

    /// The position now (`TIME_NONE` when unknown): the base, advanced
    /// while `PLAYING` at the measured rate for at most
    /// [`EXTRAPOLATION_WINDOW`], and not past `media_end` (the end of the
    /// media forwarded; `None`: nothing to play, no advance).
    pub fn position(&self, now: Instant, state: PresentationState, media_end: Option<u64>) -> u64 {
        let Some((base, at)) = self.base else {
            return TIME_NONE;
        };
        let (PresentationState::Playing, Some(rate), Some(end)) = (state, self.rate_q16, media_end)
        else {
            return base;
        };
        let elapsed = now.saturating_duration_since(at).min(EXTRAPOLATION_WINDOW);
        let advance = elapsed.as_nanos() * u128::from(rate) / u128::from(UNITY_Q16);
        let advanced = base.saturating_add(u64::try_from(advance).unwrap_or(u64::MAX));
        advanced.min(end.max(base))
    }

    /// The position the client really reached (its latest report, or the
    /// segment start after a flush).
    pub fn reached(&self) -> Option<u64> {
        self.reached
    }

    /// How long the client has made no progress while the presentation is
    /// `PLAYING`, once it has shown progress in this segment.
    pub fn stalled_for(&self, now: Instant, state: PresentationState) -> Option<Duration> {
        if state != PresentationState::Playing || self.stall_reported {
            return None;
        }
        Some(now.saturating_duration_since(self.advanced_at?))
    }
}

/// A presentation whose client made no progress for [`STALL_TIMEOUT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    /// Presentation id.
    pub presentation: u32,
    /// The position the client reached.
    pub position_ns: u64,
    /// The media forwarded ahead of it.
    pub buffered_ns: u64,
    /// How long it has made no progress.
    pub stalled: Duration,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the client made no progress for {:.1} s while playing presentation {} \
             (stuck at {:.3} s with {:.3} s of media forwarded ahead)",
            self.stalled.as_secs_f64(),
            self.presentation,
            self.position_ns as f64 / 1e9,
            self.buffered_ns as f64 / 1e9
        )
    }
}

impl DeviceModel {
    /// The end of the media forwarded to the client for presentation
    /// `id`: the smallest, over its playback streams that still play
    /// (`OPEN` or `DRAINING`) and were sent anything since the last flush
    /// or connection, of the latest sample's end. `None`: nothing sent.
    pub(super) fn media_end(&self, id: u32) -> Option<u64> {
        let pres = self.presentations.get(&id)?;
        pres.streams
            .iter()
            .filter_map(|s| self.streams.get(s))
            .filter(|s| {
                s.is_playback() && matches!(s.state, StreamState::Open | StreamState::Draining)
            })
            .filter_map(|s| s.sent_end_ns)
            .min()
    }

    /// The media forwarded ahead of `position_ns` (0 when unknown).
    pub(super) fn buffered(&self, id: u32, position_ns: u64) -> u64 {
        if position_ns == TIME_NONE {
            return 0;
        }
        self.media_end(id)
            .map_or(0, |end| end.saturating_sub(position_ns))
    }

    /// The position of presentation `id` now and the media ahead of it.
    pub(super) fn position_now(&self, id: u32, now: Instant) -> Option<(u64, u64)> {
        let pres = self.presentations.get(&id)?;
        let position = pres.progress.position(now, pres.state, self.media_end(id));
        Some((position, self.buffered(id, position)))
    }

    /// The first presentation whose client has made no progress for
    /// [`STALL_TIMEOUT`] while `PLAYING` with at least [`STALL_MIN_AHEAD`]
    /// of media forwarded ahead of the position it reached (DEV-TIME-3);
    /// the caller drops the client. Each
    /// stall is returned once (until the client advances again, or the
    /// presentation is played, paused or flushed).
    pub fn stalled(&mut self, now: Instant) -> Option<Stall> {
        self.client.as_ref()?;
        let stall = self.presentations.values().find_map(|pres| {
            let stalled = pres.progress.stalled_for(now, pres.state)?;
            let position_ns = pres.progress.reached()?;
            let buffered_ns = self.buffered(pres.id, position_ns);
            let ahead = u128::from(buffered_ns) >= STALL_MIN_AHEAD.as_nanos();
            (stalled >= STALL_TIMEOUT && ahead).then_some(Stall {
                presentation: pres.id,
                position_ns,
                buffered_ns,
                stalled,
            })
        })?;
        if let Some(pres) = self.presentations.get_mut(&stall.presentation) {
            pres.progress.stall_reported = true;
        }
        Some(stall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn unknown_until_a_report_or_flush() {
        let p = Progress::default();
        let now = Instant::now();
        assert_eq!(
            p.position(now, PresentationState::Playing, Some(S)),
            TIME_NONE
        );
        assert_eq!(p.reached(), None);
    }

    #[test]
    fn one_report_measures_no_rate_two_do() {
        let t0 = Instant::now();
        let mut p = Progress::default();
        p.report(S, t0, UNITY_Q16);
        let playing = PresentationState::Playing;
        assert_eq!(p.position(at(t0, 400), playing, Some(10 * S)), S);
        p.report(S + 500 * MS, at(t0, 500), UNITY_Q16);
        assert_eq!(p.position(at(t0, 800), playing, Some(10 * S)), S + 800 * MS);
    }

    #[test]
    fn a_report_then_silence_the_position_stops() {
        let t0 = Instant::now();
        let mut p = Progress::default();
        let playing = PresentationState::Playing;
        p.report(2 * S, t0, UNITY_Q16);
        p.report(2 * S + 500 * MS, at(t0, 500), UNITY_Q16);
        // 14 s of silence: the position went on for the window, no more.
        let stopped = p.position(at(t0, 14_500), playing, Some(30 * S));
        assert_eq!(
            stopped,
            2 * S + 500 * MS + u64::try_from(EXTRAPOLATION_WINDOW.as_nanos()).unwrap()
        );
        assert_eq!(p.position(at(t0, 60_000), playing, Some(30 * S)), stopped);
        assert_eq!(p.reached(), Some(2 * S + 500 * MS));
    }

    #[test]
    fn never_past_the_media_forwarded_nor_with_none() {
        let t0 = Instant::now();
        let mut p = Progress::default();
        let playing = PresentationState::Playing;
        p.report(S, t0, UNITY_Q16);
        p.report(S + 500 * MS, at(t0, 500), UNITY_Q16);
        assert_eq!(
            p.position(at(t0, 1_000), playing, Some(S + 600 * MS)),
            S + 600 * MS
        );
        assert_eq!(p.position(at(t0, 1_000), playing, None), S + 500 * MS);
    }

    #[test]
    fn the_measured_rate_is_the_clients_and_at_most_the_set_rate() {
        let t0 = Instant::now();
        let playing = PresentationState::Playing;
        // A client that stalls but keeps reporting the same position.
        let mut p = Progress::default();
        p.report(S, t0, UNITY_Q16);
        p.report(S, at(t0, 500), UNITY_Q16);
        assert_eq!(p.position(at(t0, 900), playing, Some(10 * S)), S);
        // A client that jumps ahead (catching up) runs at the set rate.
        let mut p = Progress::default();
        p.report(S, t0, UNITY_Q16);
        p.report(3 * S, at(t0, 500), UNITY_Q16);
        assert_eq!(
            p.position(at(t0, 1_000), playing, Some(10 * S)),
            3 * S + 500 * MS
        );
    }

    #[test]
    fn paused_holds_and_a_stall_needs_progress_first() {
        let t0 = Instant::now();
        let playing = PresentationState::Playing;
        let mut p = Progress::default();
        p.flush(0, t0);
        p.report(0, at(t0, 10), UNITY_Q16);
        // No progress yet in this segment (prerolling): no stall.
        assert_eq!(p.stalled_for(at(t0, 10_000), playing), None);
        p.report(500 * MS, at(t0, 510), UNITY_Q16);
        assert_eq!(
            p.stalled_for(at(t0, 3_510), playing),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            p.stalled_for(at(t0, 3_510), PresentationState::Paused),
            None
        );
        // A pause and a play restart the stall clock, and hold the position.
        p.rebase(600 * MS, at(t0, 600));
        assert_eq!(
            p.position(at(t0, 5_000), PresentationState::Paused, Some(10 * S)),
            600 * MS
        );
        assert_eq!(
            p.stalled_for(at(t0, 1_600), playing),
            Some(Duration::from_secs(1))
        );
        assert_eq!(p.position(at(t0, 900), playing, Some(10 * S)), 600 * MS);
    }
}

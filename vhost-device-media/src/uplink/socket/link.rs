//! The link to the client, measured in band (spec 7.11, "Link quality";
//! DEV-LINK-1): a `Ping` every [`LINK_PING_INTERVAL`] whose `Pong` gives the
//! round-trip time, and the payload bytes the client acknowledged between
//! two measurements, the goodput. Both travel the connection the media
//! takes, behind the frames queued before them, so they are what a sample
//! sees, not what an idle line would show. Every client answers `Ping` at
//! once (WIRE-8), so this needs nothing new of it.
//!
//! Pure bookkeeping: the writer asks when to ping, the reader hands it the
//! pongs and acknowledgements, and each measurement comes back as the
//! `LINK_QUALITY` event for the guest.

use std::time::{Duration, Instant};

use mediaredir_proto::event::{Event, LINK_RTT_PENDING};

/// How often the daemon pings its client (and so measures the link).
pub(crate) const LINK_PING_INTERVAL: Duration = Duration::from_secs(2);

/// A client that answers no `Ping` for this long is gone (WIRE-8).
pub(crate) const PONG_TIMEOUT: Duration = Duration::from_secs(10);

/// The measurement of one connection.
#[derive(Debug)]
pub(super) struct LinkMeter {
    /// The nonce of the next ping (from 1; the pings of older daemons
    /// carried 0).
    next_nonce: u64,
    /// The ping waiting for its pong: nonce and when it was sent.
    pending: Option<(u64, Instant)>,
    /// Payload bytes the client acknowledged `OK` on this connection.
    acked_bytes: u64,
    /// The end of the last measurement, and `acked_bytes` then.
    last: (Instant, u64),
}

impl LinkMeter {
    /// A meter for a connection that starts at `now`.
    pub(super) fn new(now: Instant) -> LinkMeter {
        LinkMeter {
            next_nonce: 1,
            pending: None,
            acked_bytes: 0,
            last: (now, 0),
        }
    }

    /// A ping is due at `now` (`inflight`: payload bytes not yet
    /// acknowledged). Returns the nonce of the ping to send (`None` while
    /// the last one is unanswered: it goes on measuring), and, when it is
    /// unanswered, a measurement whose round trip is the time it has waited
    /// so far (a lower bound, `LINK_RTT_PENDING`).
    pub(super) fn ping(&mut self, now: Instant, inflight: u64) -> (Option<u64>, Option<Event>) {
        if let Some((_, sent)) = self.pending {
            let waited = now.saturating_duration_since(sent);
            return (
                None,
                Some(self.measure(waited, LINK_RTT_PENDING, now, inflight)),
            );
        }
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        self.pending = Some((nonce, now));
        (Some(nonce), None)
    }

    /// A pong with `nonce` arrived at `now`: the measurement, if it answers
    /// the pending ping.
    pub(super) fn pong(&mut self, nonce: u64, now: Instant, inflight: u64) -> Option<Event> {
        let (expected, sent) = self.pending?;
        if nonce != expected {
            return None;
        }
        self.pending = None;
        let rtt = now.saturating_duration_since(sent);
        Some(self.measure(rtt, 0, now, inflight))
    }

    /// The client acknowledged `bytes` of payload `OK`.
    pub(super) fn acked(&mut self, bytes: u64) {
        self.acked_bytes = self.acked_bytes.saturating_add(bytes);
    }

    fn measure(&mut self, rtt: Duration, flags: u64, now: Instant, inflight: u64) -> Event {
        let (since, acked_then) = self.last;
        let interval = now.saturating_duration_since(since);
        let bytes = u128::from(self.acked_bytes - acked_then);
        let goodput = bytes * 1_000_000_000 / interval.as_nanos().max(1);
        self.last = (now, self.acked_bytes);
        Event::LinkQuality {
            rtt_ns: u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX),
            goodput_bps: u64::try_from(goodput).unwrap_or(u64::MAX),
            flags,
            inflight_bytes: inflight,
            interval_ns: u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_pong_gives_the_round_trip_and_the_acks_the_goodput() {
        let t0 = Instant::now();
        let mut link = LinkMeter::new(t0);
        let (nonce, none) = link.ping(at(t0, 2_000), 10);
        assert_eq!((nonce, none), (Some(1), None));
        link.acked(1_000_000);
        // A stale or foreign pong measures nothing.
        assert_eq!(link.pong(0, at(t0, 2_010), 10), None);
        let got = link.pong(1, at(t0, 2_030), 7);
        assert_eq!(
            got,
            Some(Event::LinkQuality {
                rtt_ns: 30_000_000,
                goodput_bps: 1_000_000 * 1_000 / 2_030,
                flags: 0,
                inflight_bytes: 7,
                interval_ns: 2_030_000_000,
            })
        );
        // Answered once only; the next ping has the next nonce.
        assert_eq!(link.pong(1, at(t0, 2_040), 7), None);
        assert_eq!(link.ping(at(t0, 4_000), 0).0, Some(2));
    }

    #[test]
    fn an_unanswered_ping_reports_a_growing_lower_bound() {
        let t0 = Instant::now();
        let mut link = LinkMeter::new(t0);
        assert_eq!(link.ping(t0, 0).0, Some(1));
        let (nonce, report) = link.ping(at(t0, 2_000), 500);
        assert_eq!(nonce, None, "no second ping while one waits");
        assert_eq!(
            report,
            Some(Event::LinkQuality {
                rtt_ns: 2_000_000_000,
                goodput_bps: 0,
                flags: LINK_RTT_PENDING,
                inflight_bytes: 500,
                interval_ns: 2_000_000_000,
            })
        );
        let Some(Event::LinkQuality { rtt_ns, flags, .. }) = link.pong(1, at(t0, 5_000), 0) else {
            panic!("the late pong measures");
        };
        assert_eq!((rtt_ns, flags), (5_000_000_000, 0));
    }
}

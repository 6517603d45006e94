//! The session's monitor thread (what it watches is described in
//! [`super`]) and the `CallStats` it sends: packets received and lost,
//! jitter and round trip read from `rtpbin`'s session statistics, and the
//! MOS estimate of [`crate::call::stats`].

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Instant;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{CallStats, Message};

use super::{Session, State, lock};
use crate::call::stats::{self, Counts};

impl Session {
    /// Counters of the received audio, jitter (us), RTT (us).
    fn read_stats(&self) -> Option<(Counts, u32, u32)> {
        let rtpbin = lock(&self.media).as_ref()?.rtpbin.clone();
        let session =
            rtpbin.emit_by_name::<Option<glib::Object>>("get-internal-session", &[&0u32])?;
        let st = session.property::<gst::Structure>("stats");
        let list = st.get::<glib::ValueArray>("source-stats").ok()?;
        let (mut counts, mut jitter, mut rtt) = (Counts::default(), 0u32, 0u32);
        let mut best = 0u64;
        for v in list.iter() {
            let Ok(s) = v.get::<gst::Structure>() else {
                continue;
            };
            // A receiver report block about our stream is kept with the
            // remote source that sent it.
            if s.get::<bool>("have-rb").unwrap_or(false) {
                let r = s.get::<u32>("rb-round-trip").unwrap_or(0);
                if r != 0 {
                    rtt = stats::ntp_short_to_us(r);
                }
            }
            if s.get::<bool>("internal").unwrap_or(false) {
                continue;
            }
            let received = s.get::<u64>("packets-received").unwrap_or(0);
            let lost = s.get::<i32>("packets-lost").unwrap_or(0);
            counts.received += received;
            counts.lost += u64::try_from(lost.max(0)).unwrap_or(0);
            if received >= best {
                best = received;
                let clock = s.get::<i32>("clock-rate").unwrap_or(48000);
                let j = s.get::<u32>("jitter").unwrap_or(0);
                jitter = stats::clock_to_us(u64::from(j), u32::try_from(clock).unwrap_or(0));
            }
        }
        Some((counts, jitter, rtt))
    }

    /// Sends `CallStats` with the current values.
    pub(crate) fn send_stats(&self) {
        let Some((counts, jitter_us, rtt_us)) = self.read_stats() else {
            return;
        };
        let report = {
            let mut last = lock(&self.stats);
            let mos_x100 = if counts.received == 0 {
                0
            } else {
                stats::mos_x100(stats::loss_pct(last.0, counts), jitter_us, rtt_us)
            };
            let report = CallStats {
                session: self.id,
                jitter_us,
                packets_lost: counts.lost,
                packets_received: counts.received,
                rtt_us,
                mos_x100,
            };
            *last = (counts, Some(report.clone()));
            report
        };
        self.events.report(Message::CallStats(report));
    }

    /// The last statistics reported (all zero before the first report).
    pub(crate) fn last_stats(&self) -> CallStats {
        lock(&self.stats).1.clone().unwrap_or(CallStats {
            session: self.id,
            jitter_us: 0,
            packets_lost: 0,
            packets_received: 0,
            rtt_us: 0,
            mos_x100: 0,
        })
    }

    fn on_message(&self, msg: &gst::Message) {
        use gst::MessageView as V;
        match msg.view() {
            V::Error(e) => {
                self.end(Status::Io, &format!("call media failed: {}", e.error()));
            }
            V::Warning(w) => log::warn!("call {}: {}", self.id, w.error()),
            V::Element(el) => {
                let Some(s) = el.structure() else { return };
                if s.name() == "dtmf-event"
                    && let Ok(n) = s.get::<i32>("number")
                    && let Ok(event) = u32::try_from(n)
                    && event <= mediaredir_proto::wire::MAX_DTMF_EVENT
                {
                    self.events.report(Message::CallDtmfReceived {
                        session: self.id,
                        event,
                    });
                }
            }
            _ => {}
        }
    }
}

/// Watches the bus, sends statistics, detects a vanished peer.
pub(super) fn monitor(bus: gst::Bus, weak: Weak<Session>) {
    let mut last_stats = Instant::now();
    loop {
        let msg = bus.timed_pop(gst::ClockTime::from_mseconds(100));
        let Some(s) = weak.upgrade() else { return };
        if s.closed.load(Ordering::Acquire) {
            return;
        }
        if let Some(msg) = msg {
            s.on_message(&msg);
        }
        let state = s.state();
        if state == State::Ended {
            return;
        }
        if last_stats.elapsed() >= s.config.call.stats_interval {
            last_stats = Instant::now();
            if matches!(state, State::Active | State::Held) {
                s.send_stats();
            }
        }
        if state == State::Active {
            let idle = s.now_ms().saturating_sub(s.last_rx.load(Ordering::Acquire));
            let timeout = u64::try_from(s.config.call.peer_timeout.as_millis()).unwrap_or(u64::MAX);
            if idle > timeout {
                s.end(
                    Status::Io,
                    &format!("no RTP or RTCP from the peer for {} ms", idle),
                );
                return;
            }
        }
    }
}

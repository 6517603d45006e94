//! Call statistics (spec 7.12): what `CallStats` carries and the MOS
//! estimate.
//!
//! Counted streams: the call's audio RTP session only (the Opus stream and
//! the telephone events, which share its SSRC); video is not counted.
//! `packets_received` and `packets_lost` are cumulative over the call
//! (RFC 3550 "cumulative number of packets lost", never negative),
//! `jitter_us` is the RFC 3550 interarrival jitter of the received audio
//! converted from RTP clock units to microseconds, `rtt_us` the round-trip
//! time from the peer's last RTCP receiver report about our audio (LSR/DLSR,
//! 0 until one arrived).
//!
//! MOS: the ITU-T G.107 E-model with its default values (R0 - Is = 93.2),
//! simplified as in Cole and Rosenbluth (2001):
//!
//! - one-way delay `d` (ms) = `rtt_ms / 2` + jitter-buffer latency (60 ms)
//!   + 2 x `jitter_ms` + packetisation (20 ms);
//! - delay impairment `Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)`
//!   (`H` the step function);
//! - equipment impairment `Ie_eff = Ie + (95 - Ie) Ppl / (Ppl + Bpl)` with
//!   `Ie` = 0, `Bpl` = 25.1 (G.113's values for a codec with packet-loss
//!   concealment; Opus is not listed), `Ppl` the loss in percent over the
//!   last report interval (cumulative when the interval received nothing);
//! - `R = 93.2 - Id - Ie_eff`;
//! - `MOS = 1` for `R < 0`, `4.5` for `R > 100`, else
//!   `1 + 0.035 R + 7e-6 R (R - 60) (100 - R)`;
//! - `mos_x100` = round(100 x MOS), 0 while nothing has been received.

/// Jitter-buffer latency of calls, ms (the `rtpbin` latency).
pub const JITTER_BUFFER_MS: u32 = 60;
/// Audio packetisation, ms.
const PACKET_MS: f64 = 20.0;

/// Cumulative counts of the received audio at one time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets received.
    pub received: u64,
    /// Packets lost.
    pub lost: u64,
}

/// The E-model estimate, MOS x 100 (100..=450), from the loss in percent,
/// the jitter and the round-trip time.
pub fn mos_x100(loss_pct: f64, jitter_us: u32, rtt_us: u32) -> u32 {
    let d = f64::from(rtt_us) / 2000.0
        + f64::from(JITTER_BUFFER_MS)
        + 2.0 * f64::from(jitter_us) / 1000.0
        + PACKET_MS;
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let (ie, bpl) = (0.0, 25.1);
    let ppl = loss_pct.clamp(0.0, 100.0);
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl);
    let r = 93.2 - id - ie_eff;
    let mos = if r < 0.0 {
        1.0
    } else if r > 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)
    };
    // 1.0..=4.5 by construction, so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let x100 = (mos * 100.0).round().clamp(100.0, 450.0) as u32;
    x100
}

/// Loss in percent between two cumulative counts (`prev` earlier); the
/// cumulative loss when no packet was expected in between.
pub fn loss_pct(prev: Counts, now: Counts) -> f64 {
    let pct = |received: u64, lost: u64| {
        let expected = received + lost;
        if expected == 0 {
            0.0
        } else {
            // Counts far below 2^52: exact in f64.
            #[allow(clippy::cast_precision_loss)]
            let v = 100.0 * lost as f64 / expected as f64;
            v
        }
    };
    let (dr, dl) = (
        now.received.saturating_sub(prev.received),
        now.lost.saturating_sub(prev.lost),
    );
    if dr + dl == 0 {
        pct(now.received, now.lost)
    } else {
        pct(dr, dl)
    }
}

/// RTP clock units to microseconds, saturating.
pub fn clock_to_us(units: u64, clock_rate: u32) -> u32 {
    if clock_rate == 0 {
        return 0;
    }
    u32::try_from(units.saturating_mul(1_000_000) / u64::from(clock_rate)).unwrap_or(u32::MAX)
}

/// An RTCP round trip in NTP short format (1/65536 s) to microseconds.
pub fn ntp_short_to_us(v: u32) -> u32 {
    u32::try_from(u64::from(v) * 1_000_000 / 65536).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_network_is_about_4_4() {
        let m = mos_x100(0.0, 0, 0);
        assert!((430..=445).contains(&m), "{m}");
    }

    #[test]
    fn mos_falls_with_loss_jitter_and_delay() {
        let base = mos_x100(0.0, 1000, 10_000);
        assert!(mos_x100(5.0, 1000, 10_000) < base);
        assert!(mos_x100(0.0, 50_000, 10_000) < base);
        assert!(mos_x100(0.0, 1000, 600_000) < base);
        assert!(mos_x100(100.0, 0, 0) < 150);
        assert!(mos_x100(0.0, u32::MAX, u32::MAX) >= 100);
    }

    #[test]
    fn loss_over_interval() {
        let a = Counts {
            received: 100,
            lost: 0,
        };
        let b = Counts {
            received: 190,
            lost: 10,
        };
        assert!((loss_pct(a, b) - 10.0).abs() < 1e-9);
        assert!((loss_pct(b, b) - 5.0).abs() < 1e-9);
        assert_eq!(loss_pct(Counts::default(), Counts::default()), 0.0);
    }

    #[test]
    fn conversions() {
        assert_eq!(clock_to_us(48, 48000), 1000);
        assert_eq!(clock_to_us(1, 0), 0);
        assert_eq!(ntp_short_to_us(65536), 1_000_000);
    }
}

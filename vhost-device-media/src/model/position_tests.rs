//! The position, buffered media and stall rules of spec 7.13 through the
//! model's inputs: control requests, data admission, the client's reports
//! and its leaving (DEV-TIME-1, DEV-TIME-3, DEV-TIME-4).

use std::time::{Duration, Instant};

use mediaredir_proto::control::Request;
use mediaredir_proto::data::{DataHeader, FLAG_KEYFRAME};
use mediaredir_proto::event::Event;
use mediaredir_proto::response::{PositionInfo, ResponseBody};
use mediaredir_proto::wire;

use super::tests::{data, req_at, setup};
use super::{Admit, DeviceModel, EXTRAPOLATION_WINDOW, STALL_TIMEOUT};

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn query(m: &mut DeviceModel, p: u32, now: Instant) -> PositionInfo {
    match req_at(m, p, Request::PresQueryPosition, now).body {
        ResponseBody::Position(info) => info,
        other => panic!("not a position: {other:?}"),
    }
}

/// Forwards a sample of `stream` covering `pts..pts + duration`.
fn forward(m: &mut DeviceModel, stream: u32, txq: u32, pts: u64, duration: u64) {
    let header = DataHeader {
        pts: Some(pts),
        duration: Some(duration),
        ..data(stream, FLAG_KEYFRAME)
    };
    assert!(matches!(m.admit(&header, txq), Ok(Admit::Go(_))));
}

fn report(m: &mut DeviceModel, p: u32, position_ns: u64, now: Instant) {
    let msg = wire::Message::Position {
        presentation: p,
        position_ns,
    };
    assert!(m.client_message(&msg, now).is_empty());
}

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

/// A playing presentation with 4 s of video and 3 s of audio forwarded,
/// and the client's reports at 1.0 s and 1.5 s, 500 ms apart.
fn playing() -> (DeviceModel, u32, Instant) {
    let (mut m, p, v, a) = setup();
    let t0 = Instant::now();
    req_at(&mut m, p, Request::PresPlay, t0);
    forward(&mut m, v, 0, 0, 4 * S);
    forward(&mut m, a, 1, 0, 3 * S);
    report(&mut m, p, S, t0);
    report(&mut m, p, S + 500 * MS, at(t0, 500));
    while m.events.pop().is_some() {}
    (m, p, t0)
}

#[test]
fn a_report_then_silence_the_position_stops() {
    let (mut m, p, t0) = playing();
    let running = query(&mut m, p, at(t0, 900));
    assert_eq!(running.position_ns, S + 900 * MS);
    let window = u64::try_from(EXTRAPOLATION_WINDOW.as_nanos()).unwrap();
    let stopped = S + 500 * MS + window;
    assert_eq!(query(&mut m, p, at(t0, 5_000)).position_ns, stopped);
    assert_eq!(query(&mut m, p, at(t0, 14_000)).position_ns, stopped);
}

#[test]
fn buffered_is_the_media_forwarded_ahead_of_the_position() {
    let (mut m, p, t0) = playing();
    // The audio stream, forwarded to 3 s, is the one that runs out first.
    assert_eq!(
        query(&mut m, p, at(t0, 500)).buffered_ns,
        3 * S - 1_500 * MS
    );
    // The event of a report carries it too.
    report(&mut m, p, 2 * S, at(t0, 1_000));
    assert_eq!(
        m.events.pop(),
        Some(Event::Position {
            presentation: p,
            position_ns: 2 * S,
            buffered_ns: S
        })
    );
    // Nothing forwarded since a flush: nothing buffered, and no advance.
    req_at(
        &mut m,
        p,
        Request::PresFlush { position_ns: 0 },
        at(t0, 1_100),
    );
    let flushed = query(&mut m, p, at(t0, 1_500));
    assert_eq!((flushed.position_ns, flushed.buffered_ns), (0, 0));
}

#[test]
fn a_stalled_client_is_lost_after_the_stated_time_from_where_it_was() {
    let (mut m, p, t0) = playing();
    // Silence since the last advance (at 500 ms).
    let stall = u64::try_from(STALL_TIMEOUT.as_millis()).unwrap();
    assert_eq!(m.stalled(at(t0, 500 + stall - 1)), None);
    let lost = m.stalled(at(t0, 500 + stall)).expect("stalled");
    assert_eq!(lost.presentation, p);
    assert_eq!(lost.position_ns, S + 500 * MS);
    assert_eq!(lost.buffered_ns, 3 * S - 1_500 * MS);
    assert!(lost.to_string().contains("no progress for 3.0 s"), "{lost}");
    // Reported once: an uplink that cannot drop its client is not asked
    // again every check.
    assert_eq!(m.stalled(at(t0, 500 + stall + 1)), None);
    // A client that reports the same position is no better.
    let (mut m, p, t0) = playing();
    report(&mut m, p, S + 500 * MS, at(t0, 2_000));
    assert!(m.stalled(at(t0, 500 + stall)).is_some());
    // Dropped: the guest learns where the client really was, then that it
    // left.
    m.client_disconnected();
    assert_eq!(
        m.events.pop(),
        Some(Event::Position {
            presentation: p,
            position_ns: S + 500 * MS,
            buffered_ns: 0
        })
    );
    assert_eq!(m.events.pop(), Some(Event::ClientDisconnected));
    assert_eq!(m.stalled(at(t0, 60_000)), None);
}

#[test]
fn no_stall_while_paused_prerolling_or_out_of_media() {
    let (mut m, p, t0) = playing();
    req_at(&mut m, p, Request::PresPause, at(t0, 600));
    assert_eq!(m.stalled(at(t0, 60_000)), None, "paused");
    // Play restarts the clock; a flush waits for progress in the segment.
    req_at(&mut m, p, Request::PresPlay, at(t0, 10_000));
    assert_eq!(m.stalled(at(t0, 12_000)), None);
    assert!(m.stalled(at(t0, 13_000)).is_some());
    req_at(
        &mut m,
        p,
        Request::PresFlush { position_ns: 0 },
        at(t0, 13_000),
    );
    report(&mut m, p, 0, at(t0, 13_100));
    assert_eq!(m.stalled(at(t0, 60_000)), None, "prerolling");
    // Progress, then the client plays (all but the last frame of)
    // everything it was sent: starved, not stalled.
    let (mut m, p, t0) = playing();
    report(&mut m, p, 3 * S - 40 * MS, at(t0, 1_000));
    assert_eq!(m.stalled(at(t0, 60_000)), None, "nothing ahead");
}

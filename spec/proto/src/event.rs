//! The event queue: 64-byte notifications the device writes into buffers the
//! driver posted (spec, "Events").

use zerocopy::IntoBytes;
use zerocopy::little_endian::{U32, U64};

use crate::ProtoError;
use crate::control::read_prefix;
use crate::layout::virtio_struct;
use crate::response::PresentationState;
use crate::status::Status;

virtio_struct! {
    /// `struct virtio_media_redir_event` (64 bytes).
    pub struct RawEvent {
        /// Event type.
        pub kind: U32,
        /// Presentation, stream or session id (0 if none).
        pub id: U32,
        /// Device generation.
        pub generation: U32,
        /// Status (errors), else 0.
        pub status: U32,
        /// Type-specific values.
        pub values: [U64; 6],
    }
}

/// Size of an event.
pub const EVENT_SIZE: usize = size_of::<RawEvent>();

/// Event type numbers.
pub mod kind {
    /// A client connected.
    pub const CLIENT_CONNECTED: u32 = 0x01;
    /// The client went away.
    pub const CLIENT_DISCONNECTED: u32 = 0x02;
    /// A stream played to its end.
    pub const EOS: u32 = 0x03;
    /// Periodic position of a presentation.
    pub const POSITION: u32 = 0x04;
    /// A stream failed at the client.
    pub const STREAM_ERROR: u32 = 0x05;
    /// Rendering statistics of a stream.
    pub const QOS: u32 = 0x06;
    /// A presentation reached a state.
    pub const STATE_CHANGED: u32 = 0x07;
    /// Non-keyframes are dropped until the stream's next keyframe.
    pub const KEYFRAME_NEEDED: u32 = 0x08;
    /// Events were lost.
    pub const EVENTS_LOST: u32 = 0x09;
    /// A device instance started: its generation is in the event header.
    pub const DEVICE_STARTED: u32 = 0x0A;
    /// The device measured the link to the client (round trip, goodput).
    pub const LINK_QUALITY: u32 = 0x0B;
    /// Call statistics.
    pub const CALL_STATS: u32 = 0x10;
    /// A call session ended.
    pub const CALL_ENDED: u32 = 0x11;
    /// A DTMF event arrived from the peer.
    pub const CALL_DTMF: u32 = 0x12;
}

/// `LINK_QUALITY` flag: the latest ping has no answer yet, so `rtt_ns` is
/// the time since it was sent (a lower bound).
pub const LINK_RTT_PENDING: u64 = 1;

/// A decoded event (the payload of one event buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A client connected; capabilities may have changed.
    ClientConnected {
        /// Client feature bits.
        features: u32,
    },
    /// The client went away.
    ClientDisconnected,
    /// Stream `stream` played to its end.
    Eos {
        /// Stream id.
        stream: u32,
    },
    /// Position of a presentation.
    Position {
        /// Presentation id.
        presentation: u32,
        /// Stream time shown.
        position_ns: u64,
        /// Media buffered at the client.
        buffered_ns: u64,
    },
    /// A stream failed at the client.
    StreamError {
        /// Stream id.
        stream: u32,
        /// Why.
        status: Status,
    },
    /// Rendering statistics.
    Qos {
        /// Stream id.
        stream: u32,
        /// Frames rendered so far.
        rendered: u64,
        /// Frames dropped so far.
        dropped: u64,
        /// Last lateness (negative: early), ns.
        jitter_ns: i64,
    },
    /// A presentation reached a state.
    StateChanged {
        /// Presentation id.
        presentation: u32,
        /// The state reached.
        state: PresentationState,
    },
    /// Non-keyframes of `stream` are dropped until its next keyframe.
    KeyframeNeeded {
        /// Stream id.
        stream: u32,
    },
    /// `count` events were lost.
    EventsLost {
        /// How many.
        count: u64,
    },
    /// A device instance started. A driver that sees a generation other
    /// than the one it read must reset the device (spec, "Restarts").
    DeviceStarted,
    /// The device's measurement of the link to the client (spec 7.11,
    /// "Link quality").
    LinkQuality {
        /// Round-trip time of the latest ping, ns; with
        /// [`LINK_RTT_PENDING`] a lower bound (no answer yet).
        rtt_ns: u64,
        /// Payload bytes the client acknowledged per second over the
        /// interval.
        goodput_bps: u64,
        /// [`LINK_RTT_PENDING`] or 0.
        flags: u64,
        /// Payload bytes sent and not yet acknowledged at the end of the
        /// interval.
        inflight_bytes: u64,
        /// Length of the interval the goodput was measured over, ns.
        interval_ns: u64,
    },
    /// Call statistics.
    CallStats {
        /// Session id.
        session: u32,
        /// Jitter, µs.
        jitter_us: u64,
        /// Packets lost.
        packets_lost: u64,
        /// Round-trip time, µs.
        rtt_us: u64,
        /// MOS × 100.
        mos_x100: u64,
        /// Packets received.
        packets_received: u64,
    },
    /// A call session ended.
    CallEnded {
        /// Session id.
        session: u32,
        /// Why.
        status: Status,
    },
    /// A DTMF event from the peer.
    CallDtmf {
        /// Session id.
        session: u32,
        /// RFC 4733 event code.
        event: u64,
    },
}

impl Event {
    /// Encodes the event with the device's generation.
    pub fn encode(&self, generation: u32) -> [u8; EVENT_SIZE] {
        let (kind, id, status, v): (u32, u32, Status, [u64; 6]) = match *self {
            Event::ClientConnected { features } => (
                kind::CLIENT_CONNECTED,
                0,
                Status::Ok,
                [u64::from(features), 0, 0, 0, 0, 0],
            ),
            Event::ClientDisconnected => (kind::CLIENT_DISCONNECTED, 0, Status::Ok, [0; 6]),
            Event::Eos { stream } => (kind::EOS, stream, Status::Ok, [0; 6]),
            Event::Position {
                presentation,
                position_ns,
                buffered_ns,
            } => (
                kind::POSITION,
                presentation,
                Status::Ok,
                [position_ns, buffered_ns, 0, 0, 0, 0],
            ),
            Event::StreamError { stream, status } => (kind::STREAM_ERROR, stream, status, [0; 6]),
            Event::Qos {
                stream,
                rendered,
                dropped,
                jitter_ns,
            } => (
                kind::QOS,
                stream,
                Status::Ok,
                [
                    rendered,
                    dropped,
                    u64::from_le_bytes(jitter_ns.to_le_bytes()),
                    0,
                    0,
                    0,
                ],
            ),
            Event::StateChanged {
                presentation,
                state,
            } => (
                kind::STATE_CHANGED,
                presentation,
                Status::Ok,
                [u64::from(state.as_u32()), 0, 0, 0, 0, 0],
            ),
            Event::KeyframeNeeded { stream } => (kind::KEYFRAME_NEEDED, stream, Status::Ok, [0; 6]),
            Event::EventsLost { count } => {
                (kind::EVENTS_LOST, 0, Status::Ok, [count, 0, 0, 0, 0, 0])
            }
            Event::DeviceStarted => (kind::DEVICE_STARTED, 0, Status::Ok, [0; 6]),
            Event::LinkQuality {
                rtt_ns,
                goodput_bps,
                flags,
                inflight_bytes,
                interval_ns,
            } => (
                kind::LINK_QUALITY,
                0,
                Status::Ok,
                [rtt_ns, goodput_bps, flags, inflight_bytes, interval_ns, 0],
            ),
            Event::CallStats {
                session,
                jitter_us,
                packets_lost,
                rtt_us,
                mos_x100,
                packets_received,
            } => (
                kind::CALL_STATS,
                session,
                Status::Ok,
                [
                    jitter_us,
                    packets_lost,
                    rtt_us,
                    mos_x100,
                    packets_received,
                    0,
                ],
            ),
            Event::CallEnded { session, status } => (kind::CALL_ENDED, session, status, [0; 6]),
            Event::CallDtmf { session, event } => {
                (kind::CALL_DTMF, session, Status::Ok, [event, 0, 0, 0, 0, 0])
            }
        };
        let raw = RawEvent {
            kind: kind.into(),
            id: id.into(),
            generation: generation.into(),
            status: status.as_u32().into(),
            values: v.map(U64::new),
        };
        let mut out = [0u8; EVENT_SIZE];
        out.copy_from_slice(raw.as_bytes());
        out
    }

    /// Decodes an event buffer (the driver's side); returns the event and the
    /// generation it carries.
    pub fn decode(bytes: &[u8]) -> Result<(Event, u32), ProtoError> {
        let (raw, _): (RawEvent, _) = read_prefix(bytes, "event")?;
        let id = raw.id.get();
        let v = raw.values.map(|x| x.get());
        let status = Status::from_u32(raw.status.get())?;
        let event = match raw.kind.get() {
            kind::CLIENT_CONNECTED => Event::ClientConnected {
                features: u32::try_from(v[0])
                    .map_err(|_| crate::control::invalid("features", v[0], "must fit 32 bits"))?,
            },
            kind::CLIENT_DISCONNECTED => Event::ClientDisconnected,
            kind::EOS => Event::Eos { stream: id },
            kind::POSITION => Event::Position {
                presentation: id,
                position_ns: v[0],
                buffered_ns: v[1],
            },
            kind::STREAM_ERROR => Event::StreamError { stream: id, status },
            kind::QOS => Event::Qos {
                stream: id,
                rendered: v[0],
                dropped: v[1],
                jitter_ns: i64::from_le_bytes(v[2].to_le_bytes()),
            },
            kind::STATE_CHANGED => Event::StateChanged {
                presentation: id,
                state: PresentationState::from_u32(
                    u32::try_from(v[0])
                        .map_err(|_| crate::control::invalid("state", v[0], "must be 0, 1 or 2"))?,
                )?,
            },
            kind::KEYFRAME_NEEDED => Event::KeyframeNeeded { stream: id },
            kind::EVENTS_LOST => Event::EventsLost { count: v[0] },
            kind::DEVICE_STARTED => Event::DeviceStarted,
            kind::LINK_QUALITY => Event::LinkQuality {
                rtt_ns: v[0],
                goodput_bps: v[1],
                flags: v[2],
                inflight_bytes: v[3],
                interval_ns: v[4],
            },
            kind::CALL_STATS => Event::CallStats {
                session: id,
                jitter_us: v[0],
                packets_lost: v[1],
                rtt_us: v[2],
                mos_x100: v[3],
                packets_received: v[4],
            },
            kind::CALL_ENDED => Event::CallEnded {
                session: id,
                status,
            },
            kind::CALL_DTMF => Event::CallDtmf {
                session: id,
                event: v[0],
            },
            other => return Err(ProtoError::UnknownEvent(other)),
        };
        Ok((event, raw.generation.get()))
    }

    /// Whether a newer event of the same kind and id may replace this one in
    /// the device's pending queue (spec: POSITION, QOS and LINK_QUALITY
    /// coalesce).
    pub fn coalesces_with(&self, newer: &Event) -> bool {
        match (self, newer) {
            (
                Event::Position {
                    presentation: a, ..
                },
                Event::Position {
                    presentation: b, ..
                },
            ) => a == b,
            (Event::Qos { stream: a, .. }, Event::Qos { stream: b, .. }) => a == b,
            (Event::LinkQuality { .. }, Event::LinkQuality { .. }) => true,
            (Event::CallStats { session: a, .. }, Event::CallStats { session: b, .. }) => a == b,
            _ => false,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn every_event() -> Vec<Event> {
        vec![
            Event::ClientConnected { features: 7 },
            Event::ClientDisconnected,
            Event::Eos { stream: 3 },
            Event::Position {
                presentation: 1,
                position_ns: 10,
                buffered_ns: 20,
            },
            Event::StreamError {
                stream: 4,
                status: Status::Unsupported,
            },
            Event::Qos {
                stream: 4,
                rendered: 100,
                dropped: 2,
                jitter_ns: -5_000,
            },
            Event::StateChanged {
                presentation: 1,
                state: PresentationState::Paused,
            },
            Event::KeyframeNeeded { stream: 2 },
            Event::EventsLost { count: 9 },
            Event::DeviceStarted,
            Event::LinkQuality {
                rtt_ns: 1,
                goodput_bps: 2,
                flags: LINK_RTT_PENDING,
                inflight_bytes: 4,
                interval_ns: 5,
            },
            Event::CallStats {
                session: 1,
                jitter_us: 1,
                packets_lost: 2,
                rtt_us: 3,
                mos_x100: 420,
                packets_received: 5,
            },
            Event::CallEnded {
                session: 1,
                status: Status::Io,
            },
            Event::CallDtmf {
                session: 1,
                event: 5,
            },
        ]
    }

    #[test]
    fn every_event_round_trips() {
        for event in every_event() {
            let bytes = event.encode(77);
            assert_eq!(Event::decode(&bytes), Ok((event, 77)));
        }
    }

    #[test]
    fn layout() {
        assert_eq!(EVENT_SIZE, 64);
        let bytes = Event::Eos { stream: 3 }.encode(1);
        assert_eq!(&bytes[0..8], &[3, 0, 0, 0, 3, 0, 0, 0]);
    }

    #[test]
    fn rejects_unknown_and_short() {
        let mut bytes = Event::ClientDisconnected.encode(1);
        bytes[0] = 0x7f;
        assert_eq!(Event::decode(&bytes), Err(ProtoError::UnknownEvent(0x7f)));
        assert!(Event::decode(&bytes[..63]).is_err());
    }

    #[test]
    fn coalescing() {
        let a = Event::Position {
            presentation: 1,
            position_ns: 1,
            buffered_ns: 0,
        };
        let b = Event::Position {
            presentation: 1,
            position_ns: 2,
            buffered_ns: 0,
        };
        let c = Event::Position {
            presentation: 2,
            position_ns: 2,
            buffered_ns: 0,
        };
        assert!(a.coalesces_with(&b));
        assert!(!a.coalesces_with(&c));
        assert!(!Event::Eos { stream: 1 }.coalesces_with(&Event::Eos { stream: 1 }));
    }
}

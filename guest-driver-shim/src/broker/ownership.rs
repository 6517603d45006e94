//! Which objects a broker client owns, which requests it may send, and
//! which events are its own (spec 9.2, BRK-3 and BRK-4).
//!
//! Kept apart from the socket and device code so the rules are tested as
//! plain functions.

use std::collections::{HashMap, HashSet};

use mediaredir_proto::control::{Direction, Request, RequestCode};
use mediaredir_proto::event::Event;

/// A stream a client created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OwnedStream {
    /// Its presentation.
    pub(crate) presentation: u32,
    /// Its playback queue (`format.txq`).
    pub(crate) txq: u16,
    /// Whether it is a playback stream (capture streams take no `QUEUE`).
    pub(crate) playback: bool,
}

/// The objects one client created.
#[derive(Debug, Default)]
pub(crate) struct Owned {
    pub(crate) presentations: HashSet<u32>,
    pub(crate) streams: HashMap<u32, OwnedStream>,
    pub(crate) sessions: HashSet<u32>,
}

/// What a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addressed {
    /// Nothing (`target` is ignored).
    Device,
    /// A presentation.
    Presentation,
    /// A stream.
    Stream,
    /// A call session.
    Session,
}

fn addressed(code: RequestCode) -> Addressed {
    use RequestCode as C;
    match code {
        C::GetCaps | C::CheckFormat | C::EnumSources | C::PresCreate | C::CallCreate => {
            Addressed::Device
        }
        C::PresDestroy
        | C::PresPlay
        | C::PresPause
        | C::PresFlush
        | C::PresSetRate
        | C::PresSetGeometry
        | C::PresQueryPosition
        | C::StreamCreate => Addressed::Presentation,
        C::StreamDestroy
        | C::StreamSetVolume
        | C::StreamStart
        | C::StreamStop
        | C::StreamRequestKeyframe => Addressed::Stream,
        C::CallSetRemote
        | C::CallStart
        | C::CallHold
        | C::CallDtmf
        | C::CallMute
        | C::CallStats
        | C::CallEnd => Addressed::Session,
    }
}

impl Owned {
    /// Whether the client may send `code` for `target`.
    pub(crate) fn may_address(&self, code: RequestCode, target: u32) -> bool {
        match addressed(code) {
            Addressed::Device => true,
            Addressed::Presentation => self.presentations.contains(&target),
            Addressed::Stream => self.streams.contains_key(&target),
            Addressed::Session => self.sessions.contains(&target),
        }
    }

    /// Records what an `OK` answer to `request` for `target` created or
    /// destroyed (`id` is the id in the response header).
    pub(crate) fn record(&mut self, request: &Request, target: u32, id: u32) {
        match request {
            Request::PresCreate { .. } => {
                self.presentations.insert(id);
            }
            Request::PresDestroy => {
                self.presentations.remove(&target);
                self.streams.retain(|_, s| s.presentation != target);
            }
            Request::StreamCreate(format) => {
                self.streams.insert(
                    id,
                    OwnedStream {
                        presentation: target,
                        txq: u16::try_from(format.txq).unwrap_or(u16::MAX),
                        playback: format.direction == Direction::Playback,
                    },
                );
            }
            Request::StreamDestroy => {
                self.streams.remove(&target);
            }
            Request::CallCreate { .. } => {
                self.sessions.insert(id);
            }
            Request::CallEnd => {
                self.sessions.remove(&target);
            }
            _ => {}
        }
    }

    /// Whether the client owns anything (a client that did is stale after
    /// a device reset).
    pub(crate) fn is_empty(&self) -> bool {
        self.presentations.is_empty() && self.streams.is_empty() && self.sessions.is_empty()
    }

    /// Forgets everything (after a device reset: the ids are gone).
    pub(crate) fn clear(&mut self) {
        self.presentations.clear();
        self.streams.clear();
        self.sessions.clear();
    }

    /// Whether `event` belongs to this client.
    pub(crate) fn owns_event(&self, event: &Event) -> bool {
        match *event {
            Event::Eos { stream }
            | Event::StreamError { stream, .. }
            | Event::Qos { stream, .. }
            | Event::KeyframeNeeded { stream } => self.streams.contains_key(&stream),
            Event::Position { presentation, .. } | Event::StateChanged { presentation, .. } => {
                self.presentations.contains(&presentation)
            }
            Event::CallStats { session, .. }
            | Event::CallEnded { session, .. }
            | Event::CallDtmf { session, .. } => self.sessions.contains(&session),
            Event::ClientConnected { .. }
            | Event::ClientDisconnected
            | Event::EventsLost { .. }
            | Event::LinkQuality { .. }
            | Event::DeviceStarted => false,
        }
    }
}

/// Whether every client receives `event`.
pub(crate) fn is_broadcast(event: &Event) -> bool {
    matches!(
        event,
        Event::ClientConnected { .. }
            | Event::ClientDisconnected
            | Event::EventsLost { .. }
            | Event::LinkQuality { .. }
            | Event::DeviceStarted
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediaredir_proto::codec::Codec;
    use mediaredir_proto::control::StreamFormat;

    fn format(txq: u32) -> StreamFormat {
        StreamFormat::video(Codec::Vp8, txq, 64, 64, 30, 1)
    }

    #[test]
    fn a_client_addresses_only_what_it_created() {
        let mut owned = Owned::default();
        assert!(owned.may_address(RequestCode::GetCaps, 99));
        assert!(owned.may_address(RequestCode::PresCreate, 0));
        assert!(!owned.may_address(RequestCode::PresPlay, 1));
        assert!(!owned.may_address(RequestCode::StreamCreate, 1));
        owned.record(&Request::PresCreate { live: false }, 0, 1);
        assert!(owned.may_address(RequestCode::PresPlay, 1));
        assert!(owned.may_address(RequestCode::StreamCreate, 1));
        assert!(!owned.may_address(RequestCode::PresPlay, 2));
        owned.record(&Request::StreamCreate(format(2)), 1, 7);
        assert!(owned.may_address(RequestCode::StreamSetVolume, 7));
        assert_eq!(owned.streams[&7].txq, 2);
        assert!(!owned.may_address(RequestCode::CallHold, 7));
    }

    #[test]
    fn destroying_a_presentation_forgets_its_streams() {
        let mut owned = Owned::default();
        owned.record(&Request::PresCreate { live: false }, 0, 1);
        owned.record(&Request::StreamCreate(format(0)), 1, 7);
        owned.record(&Request::PresDestroy, 1, 1);
        assert!(owned.is_empty());
        assert!(!owned.may_address(RequestCode::StreamStart, 7));
    }

    #[test]
    fn events_go_to_their_owner_and_broadcasts_to_all() {
        let mut owned = Owned::default();
        owned.record(&Request::PresCreate { live: false }, 0, 1);
        owned.record(&Request::StreamCreate(format(0)), 1, 7);
        assert!(owned.owns_event(&Event::Eos { stream: 7 }));
        assert!(!owned.owns_event(&Event::Eos { stream: 8 }));
        assert!(owned.owns_event(&Event::Position {
            presentation: 1,
            position_ns: 0,
            buffered_ns: 0
        }));
        assert!(!owned.owns_event(&Event::ClientDisconnected));
        assert!(is_broadcast(&Event::ClientDisconnected));
        assert!(!is_broadcast(&Event::Eos { stream: 7 }));
    }
}

//! The device model: presentations, streams, their state machines, request
//! validation against state and limits, flow-control credits and pending
//! events.
//!
//! It imports no vhost, virtqueue or guest-memory type: it takes decoded
//! requests and data headers and answers with statuses, response bodies and
//! [`Action`]s for the uplink, so tests drive it directly and the same model
//! serves every transport (spec sections cited per request).
//!
//! This file holds the model's state and what the rest of the daemon reads
//! of it; each kind of input has its own module: control requests
//! (`control` routes them to `presentation`, `stream`, `capture` and
//! `call`), data buffers (`admission`), the client's connection and reports
//! (`client`), captured samples (`capture`); what the guest sees of the
//! client's position, and a client that stalled (`position`); `to_wire`
//! turns request types
//! into the messages that tell the client.

mod admission;
mod call;
mod capture;
mod client;
mod control;
mod credit;
mod events;
mod position;
mod presentation;
mod stream;
mod to_wire;

use std::collections::BTreeMap;

use mediaredir_proto::device::DeviceConfig;
use mediaredir_proto::event::Event;
use mediaredir_proto::response::ResponseBody;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire;

pub use admission::{Admission, Admit};
pub use call::{CallSession, CallState, DeferredAnswer};
pub use capture::CaptureVerdict;
pub use credit::{Credit, Grant};
pub use events::{EventQueue, MAX_PENDING_EVENTS};
pub use position::{EXTRAPOLATION_WINDOW, STALL_MIN_AHEAD, STALL_TIMEOUT, Stall};
pub use presentation::Presentation;
pub use stream::{Stream, StreamState};

use crate::limits::Limits;

/// The device's answer to a control request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status.
    pub status: Status,
    /// Created id, or the target echoed.
    pub id: u32,
    /// Body (only with `Ok`).
    pub body: ResponseBody,
    /// The answer waits for the client (`CALL_CREATE`): the chain is kept
    /// until an [`Action::AnswerDeferred`] for id `id`.
    pub deferred: bool,
}

impl Reply {
    fn error(status: Status, id: u32) -> Reply {
        Reply {
            status,
            id,
            body: ResponseBody::None,
            deferred: false,
        }
    }

    fn ok(id: u32, body: ResponseBody) -> Reply {
        Reply {
            status: Status::Ok,
            id,
            body,
            deferred: false,
        }
    }
}

/// What the model asks of the uplink.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this message to the client.
    Send(wire::Message),
    /// Complete every buffer of `stream` waiting at the head of playback
    /// queue `txq` with `CANCELLED` (a flush drops data submitted before it,
    /// spec DEV-PRES-2).
    DrainTxq {
        /// Playback queue index.
        txq: u32,
        /// Stream id.
        stream: u32,
    },
    /// The stream was destroyed: the uplink drops what it keeps of it.
    Forget {
        /// Stream id.
        stream: u32,
    },
    /// Complete every in-flight buffer of the stream with this status, and
    /// forget them (flush, destroy, stream failure).
    Cancel {
        /// Stream id.
        stream: u32,
        /// Completion status.
        status: Status,
    },
    /// Answer the deferred control request of a session.
    AnswerDeferred(DeferredAnswer),
}

/// The device features the driver negotiated (spec 4) that change what
/// the model does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// `F_CAPTURE`: capture streams.
    pub capture: bool,
    /// `F_CALL`: call media sessions.
    pub call: bool,
    /// `F_CLIPPING`: data headers' clip fields are forwarded.
    pub clipping: bool,
    /// `F_LINK_QUALITY`: `LINK_QUALITY` events.
    pub link_quality: bool,
}

impl Features {
    /// The features of a negotiated feature word.
    pub fn from_bits(bits: u64) -> Features {
        use mediaredir_proto::device::{F_CALL, F_CAPTURE, F_CLIPPING, F_LINK_QUALITY};
        let has = |bit: u32| bits & (1 << bit) != 0;
        Features {
            capture: has(F_CAPTURE),
            call: has(F_CALL),
            clipping: has(F_CLIPPING),
            link_quality: has(F_LINK_QUALITY),
        }
    }
}

/// The device model of one device instance.
#[derive(Debug)]
pub struct DeviceModel {
    generation: u32,
    limits: Limits,
    client: Option<wire::Capabilities>,
    presentations: BTreeMap<u32, Presentation>,
    streams: BTreeMap<u32, Stream>,
    calls: BTreeMap<u32, CallSession>,
    next_id: u32,
    /// The negotiated device features.
    features: Features,
    /// Events waiting for event buffers.
    pub events: EventQueue,
}

impl DeviceModel {
    /// A device instance with `generation` (nonzero) and `limits`.
    pub fn new(generation: u32, limits: Limits) -> DeviceModel {
        let mut events = EventQueue::default();
        // The first event of every instance carries its generation, so a
        // driver that outlived a daemon restart learns it at once.
        events.push(Event::DeviceStarted);
        DeviceModel {
            generation,
            limits,
            client: None,
            presentations: BTreeMap::new(),
            streams: BTreeMap::new(),
            calls: BTreeMap::new(),
            next_id: 1,
            features: Features::default(),
            events,
        }
    }

    /// Records the negotiated device features.
    pub fn set_features(&mut self, features: Features) {
        self.features = features;
    }

    /// The device instance's generation.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The configuration space now.
    pub fn config(&self) -> DeviceConfig {
        self.limits
            .device_config(self.generation, self.client.is_some())
    }

    /// The connected client's capabilities.
    pub fn client_caps(&self) -> Option<&wire::Capabilities> {
        self.client.as_ref()
    }

    /// Whether a client is connected.
    pub fn has_client(&self) -> bool {
        self.client.is_some()
    }

    /// A stream, by id.
    pub fn stream(&self, id: u32) -> Option<&Stream> {
        self.streams.get(&id)
    }

    /// A presentation, by id.
    pub fn presentation(&self, id: u32) -> Option<&Presentation> {
        self.presentations.get(&id)
    }

    /// Number of streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    fn alloc_id(&mut self) -> u32 {
        let id = self.next_id;
        // Ids are never reused within a generation; 2^32 creations would be
        // needed to wrap, which the per-request cost makes unreachable.
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    fn push_event(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Device reset: forgets every presentation and stream. Returns what the
    /// uplink must do (cancel buffers, tell the client).
    pub fn reset(&mut self) -> Vec<Action> {
        let mut actions: Vec<Action> = self
            .streams
            .keys()
            .flat_map(|&stream| {
                [
                    Action::Cancel {
                        stream,
                        status: Status::Cancelled,
                    },
                    Action::Forget { stream },
                ]
            })
            .collect();
        if self.client.is_some() {
            actions.extend(
                self.presentations
                    .keys()
                    .map(|&id| Action::Send(wire::Message::DestroyPresentation { id })),
            );
        }
        if self.client.is_some() {
            actions.extend(self.calls.keys().map(|&session| {
                Action::Send(wire::Message::CallControl {
                    session,
                    action: wire::CallAction::End,
                })
            }));
        }
        self.presentations.clear();
        self.streams.clear();
        self.calls.clear();
        self.events.clear();
        actions
    }
}

#[cfg(test)]
mod position_tests;
#[cfg(test)]
pub(crate) mod tests;

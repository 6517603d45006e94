//! The device core: the model behind a lock, the uplink, and the glue that
//! turns the model's decisions into uplink calls and event-queue writes.
//!
//! It outlives vhost-user connections: when QEMU reconnects (or a guest
//! resets the device) the model starts a new instance with a new generation,
//! while the uplink and its client stay connected.
//!
//! It knows nothing of vhost-user, virtqueues or guest memory: the queue
//! layer above it ([`crate::queues`]) hands it decoded requests and guest
//! buffers, and reaches back down only through the [`EventSink`],
//! [`CaptureSink`] and [`DeferredChain`] traits it implements. So the same
//! core runs under the vhost-user adapter and under tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mediaredir_proto::event::EVENT_SIZE;
use mediaredir_proto::wire;
use mediaredir_timer::Timer;

use crate::capture::{CaptureBacklog, CaptureSink, Outcome, Waiting};
use crate::counters::{Counters, ErrorKind};
use crate::limits::Limits;
use crate::model::{Action, CaptureVerdict, DeferredAnswer, DeviceModel, Features};
use crate::uplink::{ClientEvents, Uplink};

/// Writes events into buffers the driver posted on the event queue.
pub trait EventSink: Send + Sync {
    /// Writes one event; `false` when no event buffer is available.
    fn try_deliver(&self, event: &[u8; EVENT_SIZE]) -> bool;
}

/// How long a `CALL_CREATE` waits for the client's SDP (DEV-CALL-2).
pub const CALL_SDP_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the core looks for a client that stalled (DEV-TIME-3).
const STALL_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// A control chain whose answer waits for the client (`CALL_CREATE`): the
/// queue layer keeps the chain, the core decides the answer.
pub trait DeferredChain: Send {
    /// The bytes the driver made writable for the response (header and
    /// body).
    fn capacity(&self) -> usize;
    /// Writes `response` (header and body) and completes the chain.
    fn answer(self: Box<Self>, response: &[u8]);
}

/// A deferred control chain, as the core keeps it.
pub type DeferredControl = Box<dyn DeferredChain>;

/// Deferred control chains, and answers that came before their chain was
/// handed over.
#[derive(Default)]
struct Deferred {
    chains: BTreeMap<u32, DeferredControl>,
    early: BTreeMap<u32, DeferredAnswer>,
}

/// The device core shared by the vhost-user backend and the uplink.
pub struct DeviceCore {
    model: Mutex<DeviceModel>,
    uplink: Arc<dyn Uplink>,
    counters: Arc<Counters>,
    events: Mutex<Option<Arc<dyn EventSink>>>,
    /// Captured samples waiting for capq buffers. Lock order: this, then
    /// the model.
    capture: Mutex<CaptureBacklog>,
    /// The negotiated features, applied to every new instance.
    features: Mutex<Features>,
    deferred: Mutex<Deferred>,
    /// The core's one timer thread (`core-timer`), for the deferred
    /// `CALL_CREATE` timeouts and the stall check.
    timer: Timer,
    /// This core, for timers.
    this: Weak<DeviceCore>,
}

impl std::fmt::Debug for DeviceCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCore").finish_non_exhaustive()
    }
}

/// A generation for a new device instance: nonzero and different from
/// `previous`, and unlikely to repeat across daemon restarts.
pub fn new_generation(previous: u32) -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let bytes = nanos.to_le_bytes();
    let lo = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
    let hi = u64::from_le_bytes(bytes[8..].try_into().unwrap_or([0; 8]));
    let mixed = (lo ^ hi ^ u64::from(std::process::id()).rotate_left(32))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut generation = u32::try_from(mixed >> 32).unwrap_or(1);
    if generation == 0 || generation == previous {
        generation = previous.wrapping_add(1).max(1);
    }
    generation
}

impl DeviceCore {
    /// A core with its first device instance.
    pub fn new(
        limits: Limits,
        uplink: Arc<dyn Uplink>,
        counters: Arc<Counters>,
    ) -> Arc<DeviceCore> {
        let core = Arc::new_cyclic(|this| DeviceCore {
            model: Mutex::new(DeviceModel::new(new_generation(0), limits)),
            uplink,
            counters,
            events: Mutex::new(None),
            capture: Mutex::new(CaptureBacklog::default()),
            features: Mutex::new(Features::default()),
            deferred: Mutex::new(Deferred::default()),
            timer: Timer::new("core-timer"),
            this: this.clone(),
        });
        core.check_stall_later();
        core
    }

    /// Looks for a stalled client every [`STALL_CHECK_INTERVAL`], on the
    /// core's timer, for as long as the core lives.
    fn check_stall_later(&self) {
        let this = self.this.clone();
        let scheduled = self.timer.after(STALL_CHECK_INTERVAL, move || {
            if let Some(core) = this.upgrade() {
                core.check_stall();
                core.check_stall_later();
            }
        });
        if let Err(e) = scheduled {
            log::error!("no timer for the stall check: {e}");
        }
    }

    /// A playing client that made no progress for the stated time while
    /// holding media is lost (DEV-TIME-3): the uplink drops it, and the
    /// guest sees it leave as on any disconnect, from where it really was.
    fn check_stall(&self) {
        let Some(stall) = self.model().stalled(Instant::now()) else {
            return;
        };
        self.uplink.drop_client(&format!("lost: {stall}"));
    }

    /// Keeps a control chain until the model answers session `session`
    /// (its [`Action::AnswerDeferred`]), or answers it `IO` after
    /// [`CALL_SDP_TIMEOUT`].
    pub fn defer_control(&self, session: u32, chain: DeferredControl) {
        let early = {
            let mut deferred = self.deferred.lock().unwrap_or_else(|p| p.into_inner());
            match deferred.early.remove(&session) {
                Some(answer) => Some((answer, chain)),
                None => {
                    deferred.chains.insert(session, chain);
                    None
                }
            }
        };
        if let Some((answer, chain)) = early {
            write_answer(chain, &answer);
            return;
        }
        let this = self.this.clone();
        // On the core's timer thread: it takes the core's locks and writes
        // events, as any queue event does, and blocks no longer.
        let scheduled = self.timer.after(CALL_SDP_TIMEOUT, move || {
            if let Some(core) = this.upgrade() {
                let (answer, actions) = core.model().call_create_timed_out(session);
                if answer.is_some() {
                    log::warn!("call {session}: no SDP from the client in time");
                }
                core.apply(actions);
                if let Some(answer) = answer {
                    core.answer_deferred(answer);
                }
                core.flush_events();
            }
        });
        if let Err(e) = scheduled {
            log::error!("no timer for call {session}: {e}");
        }
    }

    fn answer_deferred(&self, answer: DeferredAnswer) {
        let chain = {
            let mut deferred = self.deferred.lock().unwrap_or_else(|p| p.into_inner());
            match deferred.chains.remove(&answer.session) {
                Some(chain) => chain,
                None => {
                    deferred.early.insert(answer.session, answer);
                    return;
                }
            }
        };
        write_answer(chain, &answer);
    }

    /// Records the negotiated device features.
    pub fn set_features(&self, features: Features) {
        *self.features.lock().unwrap_or_else(|p| p.into_inner()) = features;
        self.model().set_features(features);
    }

    /// Locks the model.
    pub fn model(&self) -> MutexGuard<'_, DeviceModel> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The uplink.
    pub fn uplink(&self) -> &Arc<dyn Uplink> {
        &self.uplink
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Starts a new device instance (new frontend connection, or device
    /// reset): everything of the old one is destroyed and the client told.
    pub fn new_instance(&self) {
        {
            // The rings stopped: deferred chains belong to the driver again.
            let mut deferred = self.deferred.lock().unwrap_or_else(|p| p.into_inner());
            deferred.chains.clear();
            deferred.early.clear();
        }
        let dropped = {
            let mut capture = self.capture.lock().unwrap_or_else(|p| p.into_inner());
            capture.set_sink(None);
            capture.clear()
        };
        for sample in dropped {
            self.ack_capture(&sample, mediaredir_proto::status::Status::Cancelled);
        }
        let actions = {
            let mut model = self.model();
            let actions = model.reset();
            let limits = *model.limits();
            let connected_caps = model.client_caps().cloned();
            let mut fresh = DeviceModel::new(new_generation(model.generation()), limits);
            fresh.set_features(*self.features.lock().unwrap_or_else(|p| p.into_inner()));
            if let Some(caps) = connected_caps {
                // The client stays; the new instance starts with it connected.
                fresh.client_connected(caps);
            }
            log::info!("device instance generation {:#010x}", fresh.generation());
            *model = fresh;
            actions
        };
        self.apply(actions);
    }

    /// Where events go from now on (`None` while the event queue is down).
    pub fn set_event_sink(&self, sink: Option<Arc<dyn EventSink>>) {
        *self.events.lock().unwrap_or_else(|p| p.into_inner()) = sink;
        self.flush_events();
    }

    /// Carries out the model's actions on the uplink.
    pub fn apply(&self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(msg) => self.uplink.send(msg),
                Action::Cancel { stream, status } => self.uplink.cancel(stream, status),
                Action::Forget { stream } => self.uplink.forget(stream),
                // Queue-level work, done by the queue processor that asked.
                Action::DrainTxq { .. } => {}
                Action::AnswerDeferred(answer) => self.answer_deferred(answer),
            }
        }
    }

    /// Where captured samples go from now on (`None` while capq is down);
    /// writes what waits.
    pub fn set_capture_sink(&self, sink: Option<Arc<dyn CaptureSink>>) {
        let mut outcomes = Vec::new();
        {
            let mut capture = self.capture.lock().unwrap_or_else(|p| p.into_inner());
            capture.set_sink(sink);
            capture.drain(&mut outcomes);
        }
        self.settle_captures(outcomes);
    }

    /// A sample the client captured (spec 7.10): checked by the model,
    /// then written into a capq buffer, kept until one is posted, or
    /// dropped; the client gets its acknowledgement either way.
    pub fn capture_sample(&self, sample: wire::SampleHeader, payload: Vec<u8>) {
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let mut capture = self.capture.lock().unwrap_or_else(|p| p.into_inner());
        let (verdict, budget) = {
            let mut model = self.model();
            (model.capture_sample(&sample, len), model.capture_budget())
        };
        let header = match verdict {
            CaptureVerdict::Deliver(header) => header,
            CaptureVerdict::Discard(status) => {
                drop(capture);
                self.uplink.send(wire::Message::Ack {
                    stream: sample.stream,
                    seq: sample.seq,
                    status,
                });
                self.flush_events();
                return;
            }
        };
        let mut outcomes = Vec::new();
        capture.push(
            Waiting {
                header,
                seq: sample.seq,
                payload,
            },
            budget,
            &mut outcomes,
        );
        capture.drain(&mut outcomes);
        drop(capture);
        self.settle_captures(outcomes);
    }

    fn ack_capture(&self, sample: &Waiting, status: mediaredir_proto::status::Status) {
        self.uplink.send(wire::Message::Ack {
            stream: sample.header.stream_id,
            seq: sample.seq,
            status,
        });
    }

    /// Counts, acknowledges and reports what became of captured samples.
    fn settle_captures(&self, outcomes: Vec<Outcome>) {
        if outcomes.is_empty() {
            return;
        }
        let mut actions = Vec::new();
        for outcome in outcomes {
            match outcome {
                Outcome::Delivered(sample) => {
                    self.model().capture_delivered(sample.header.stream_id);
                    self.ack_capture(&sample, mediaredir_proto::status::Status::Ok);
                }
                Outcome::Dropped(sample) => {
                    log::debug!(
                        "capture: sample {} of stream {} dropped",
                        sample.seq,
                        sample.header.stream_id
                    );
                    actions.extend(self.model().capture_dropped(sample.header.stream_id));
                    self.ack_capture(&sample, mediaredir_proto::status::Status::Dropped);
                }
            }
        }
        self.apply(actions);
        self.flush_events();
    }

    /// Moves pending events into posted event buffers while both exist.
    pub fn flush_events(&self) {
        let Some(sink) = self
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return;
        };
        let mut model = self.model();
        let generation = model.generation();
        while let Some(event) = model.events.pop() {
            if sink.try_deliver(&event.encode(generation)) {
                Counters::add(&self.counters.events, 1);
            } else {
                model.events.unpop(event);
                break;
            }
        }
    }
}

impl ClientEvents for DeviceCore {
    fn client_connected(&self, caps: wire::Capabilities) {
        let actions = self.model().client_connected(caps);
        self.apply(actions);
        self.flush_events();
    }

    fn client_disconnected(&self) {
        let actions = self.model().client_disconnected();
        self.apply(actions);
        self.flush_events();
    }

    fn link_quality(&self, quality: mediaredir_proto::event::Event) {
        self.model().link_quality(quality);
        self.flush_events();
    }

    fn client_message(&self, msg: wire::Message) {
        let actions = self.model().client_message(&msg, Instant::now());
        self.apply(actions);
        self.flush_events();
    }

    fn captured(&self, sample: wire::SampleHeader, payload: Vec<u8>) {
        self.capture_sample(sample, payload);
    }
}

/// Writes a deferred answer into its chain and completes it.
fn write_answer(chain: DeferredControl, answer: &DeferredAnswer) {
    let capacity = chain
        .capacity()
        .saturating_sub(mediaredir_proto::control::ResponseHeader::SIZE);
    let reply = &answer.reply;
    let (status, body) = match reply.body.encode(capacity) {
        Some(body) => (reply.status, body),
        None => (mediaredir_proto::status::Status::Invalid, Vec::new()),
    };
    let mut out = mediaredir_proto::control::ResponseHeader {
        status,
        id: reply.id,
    }
    .to_bytes()
    .to_vec();
    out.extend_from_slice(&body);
    chain.answer(&out);
}

/// Counts a control status under its error kind.
pub fn count_status(counters: &Counters, status: mediaredir_proto::status::Status) {
    use mediaredir_proto::status::Status as S;
    let kind = match status {
        S::Ok | S::Dropped | S::Cancelled | S::NoClient => return,
        S::Invalid | S::UnknownRequest | S::NoEntity | S::Unsupported => ErrorKind::InvalidRequest,
        S::BadState => ErrorKind::BadState,
        S::Limit => ErrorKind::Limit,
        S::Stale => ErrorKind::Stale,
        S::Io | S::NeedsReset => ErrorKind::Uplink,
    };
    counters.error(kind);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_are_nonzero_and_change() {
        let a = new_generation(0);
        assert_ne!(a, 0);
        assert_ne!(new_generation(a), a);
        assert_ne!(new_generation(u32::MAX), 0);
    }
}

//! The device model: presentations, streams, their state machines, request
//! validation against state and limits, flow-control credits and pending
//! events.
//!
//! It imports no vhost, virtqueue or guest-memory type: it takes decoded
//! requests and data headers and answers with statuses, response bodies and
//! [`Action`]s for the uplink, so tests drive it directly and the same model
//! serves every transport (spec sections cited per request).

mod call;
mod capture;
mod credit;
mod events;
mod presentation;
mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use mediaredir_proto::codec::MediaKind;
use mediaredir_proto::control::{ControlRequest, Direction, Request, StreamFormat};
use mediaredir_proto::data::DataHeader;
use mediaredir_proto::device::DeviceConfig;
use mediaredir_proto::event::Event;
use mediaredir_proto::response::{
    CapsInfo, CodecCap, PresentationState, ResponseBody, Source, SourceKind,
};
use mediaredir_proto::status::Status;
use mediaredir_proto::wire;

pub use call::{CallSession, CallState, DeferredAnswer};
pub use capture::CaptureVerdict;
pub use credit::{Credit, Grant};
pub use events::{EventQueue, MAX_PENDING_EVENTS};
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

/// What to do with a data buffer.
#[derive(Debug)]
pub enum Admit {
    /// Send it.
    Go(Admission),
    /// The stream is out of credit: keep the buffer and retry after a
    /// release.
    Wait(Arc<Credit>),
}

/// A data buffer the model accepted.
#[derive(Debug)]
pub struct Admission {
    /// Sample metadata for the wire.
    pub sample: wire::SampleHeader,
    /// Credit to release when the buffer completes.
    pub credit: Arc<Credit>,
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
    capture: bool,
    call: bool,
    /// `F_CLIPPING`: data headers' clip fields are forwarded.
    clipping: bool,
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
            capture: false,
            call: false,
            clipping: false,
            events,
        }
    }

    /// Records the negotiated device features (`F_CAPTURE`, `F_CALL`,
    /// `F_CLIPPING`).
    pub fn set_features(&mut self, capture: bool, call: bool, clipping: bool) {
        self.capture = capture;
        self.call = call;
        self.clipping = clipping;
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

    /// Handles a control request (spec, "Control requests" and the state
    /// tables). Returns the reply and what the uplink must do.
    pub fn handle(&mut self, request: ControlRequest, now: Instant) -> (Reply, Vec<Action>) {
        let target = request.target;
        if request.generation != self.generation {
            return (Reply::error(Status::Stale, target), Vec::new());
        }
        let mut actions = Vec::new();
        // A failed create answers id 0 (spec 7.4); others echo the target.
        let creates = matches!(
            request.request,
            Request::StreamCreate(_) | Request::CallCreate { .. }
        );
        let result = self.dispatch(request.request, target, now, &mut actions);
        let reply = match result {
            Ok(reply) => reply,
            Err(status) => {
                actions.clear();
                Reply::error(status, if creates { 0 } else { target })
            }
        };
        if self.client.is_none() {
            actions.retain(|a| !matches!(a, Action::Send(_)));
        }
        (reply, actions)
    }

    fn dispatch(
        &mut self,
        request: Request,
        target: u32,
        now: Instant,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        match request {
            Request::GetCaps => Ok(Reply::ok(0, ResponseBody::Caps(self.caps_info()))),
            Request::CheckFormat(format) => {
                self.check_client_format(&format)?;
                Ok(Reply::ok(0, ResponseBody::None))
            }
            Request::EnumSources
            | Request::StreamStart
            | Request::StreamStop
            | Request::StreamRequestKeyframe
                if !self.capture =>
            {
                // DEV-INIT-1: a request of a feature not negotiated is unknown.
                Err(Status::UnknownRequest)
            }
            Request::EnumSources => {
                let caps = self.client.as_ref().ok_or(Status::NoClient)?;
                let sources: Vec<Source> = caps.sources.iter().map(source_of).collect();
                let total = u32::try_from(sources.len()).unwrap_or(u32::MAX);
                Ok(Reply::ok(0, ResponseBody::Sources(sources, total)))
            }
            Request::PresCreate { live } => {
                if self.presentations.len() >= self.limits.max_presentations as usize {
                    return Err(Status::Limit);
                }
                let id = self.alloc_id();
                self.presentations.insert(id, Presentation::new(id, live));
                actions.push(Action::Send(create_presentation_msg(id, live)));
                Ok(Reply::ok(id, ResponseBody::None))
            }
            Request::PresDestroy => {
                let pres = self.presentations.remove(&target).ok_or(Status::NoEntity)?;
                for stream in pres.streams {
                    self.streams.remove(&stream);
                    actions.push(Action::Cancel {
                        stream,
                        status: Status::Cancelled,
                    });
                    actions.push(Action::Forget { stream });
                }
                actions.push(Action::Send(wire::Message::DestroyPresentation {
                    id: target,
                }));
                Ok(Reply::ok(target, ResponseBody::None))
            }
            Request::PresPlay | Request::PresPause => {
                let play = matches!(request, Request::PresPlay);
                let pres = self
                    .presentations
                    .get_mut(&target)
                    .ok_or(Status::NoEntity)?;
                // Restart position extrapolation from now, from where the
                // old state had it: a pause stops the position where
                // playing moved it to, a play starts from where the pause
                // held it (computed after the change, a pause fell back to
                // the client's last report, up to a tick behind).
                if pres.position.is_some() {
                    let position = pres.position_at(now).position_ns;
                    pres.position = Some((position, now));
                }
                if play {
                    pres.state = PresentationState::Playing;
                    actions.push(Action::Send(wire::Message::Play {
                        presentation: target,
                    }));
                } else {
                    pres.state = PresentationState::Paused;
                    actions.push(Action::Send(wire::Message::Pause {
                        presentation: target,
                    }));
                }
                Ok(Reply::ok(target, ResponseBody::None))
            }
            Request::PresFlush { position_ns } => {
                let pres = self
                    .presentations
                    .get_mut(&target)
                    .ok_or(Status::NoEntity)?;
                pres.position = Some((position_ns, now));
                let streams = pres.streams.clone();
                for id in streams {
                    if let Some(stream) = self.streams.get_mut(&id) {
                        stream.reopen();
                        actions.push(Action::Cancel {
                            stream: id,
                            status: Status::Cancelled,
                        });
                    }
                }
                actions.push(Action::Send(wire::Message::Flush {
                    presentation: target,
                    position_ns,
                }));
                Ok(Reply::ok(target, ResponseBody::None))
            }
            Request::PresSetRate { rate_q16 } => {
                let pres = self
                    .presentations
                    .get_mut(&target)
                    .ok_or(Status::NoEntity)?;
                let position = pres.position_at(now).position_ns;
                pres.position = Some((position, now));
                pres.rate_q16 = rate_q16;
                actions.push(Action::Send(wire::Message::SetRate {
                    presentation: target,
                    rate_q16,
                }));
                Ok(Reply::ok(target, ResponseBody::None))
            }
            Request::PresSetGeometry(geometry) => {
                let pres = self
                    .presentations
                    .get_mut(&target)
                    .ok_or(Status::NoEntity)?;
                actions.push(Action::Send(wire::Message::SetGeometry(geometry_msg(
                    target, &geometry,
                ))));
                pres.geometry = Some(geometry);
                Ok(Reply::ok(target, ResponseBody::None))
            }
            Request::PresQueryPosition => {
                let pres = self.presentations.get(&target).ok_or(Status::NoEntity)?;
                if self.client.is_none() {
                    return Err(Status::NoClient);
                }
                Ok(Reply::ok(
                    target,
                    ResponseBody::Position(pres.position_at(now)),
                ))
            }
            Request::StreamCreate(format) => self.create_stream(target, format, actions),
            Request::StreamDestroy => {
                let stream = self.streams.remove(&target).ok_or(Status::NoEntity)?;
                if let Some(pres) = self.presentations.get_mut(&stream.presentation) {
                    pres.streams.retain(|s| *s != target);
                }
                actions.push(Action::Cancel {
                    stream: target,
                    status: Status::Cancelled,
                });
                actions.push(Action::Forget { stream: target });
                actions.push(Action::Send(wire::Message::DestroyStream { id: target }));
                Ok(Reply::ok(target, ResponseBody::None))
            }
            Request::StreamSetVolume { volume_q16, mute } => {
                let stream = self.streams.get_mut(&target).ok_or(Status::NoEntity)?;
                if stream.format.codec.kind() != MediaKind::Audio {
                    return Err(Status::Invalid);
                }
                stream.volume_q16 = volume_q16;
                stream.mute = mute;
                actions.push(Action::Send(wire::Message::SetVolume {
                    stream: target,
                    volume_q16,
                    mute,
                }));
                Ok(Reply::ok(target, ResponseBody::None))
            }
            Request::StreamStart | Request::StreamStop | Request::StreamRequestKeyframe => {
                let connected = self.client.is_some();
                let stream = self.streams.get_mut(&target).ok_or(Status::NoEntity)?;
                if stream.is_playback() {
                    return Err(Status::Invalid);
                }
                capture::control(stream, &request, connected, actions)?;
                Ok(Reply::ok(target, ResponseBody::None))
            }
            Request::CallCreate { .. }
            | Request::CallSetRemote { .. }
            | Request::CallStart
            | Request::CallHold { .. }
            | Request::CallDtmf { .. }
            | Request::CallMute { .. }
            | Request::CallStats
            | Request::CallEnd => self.call_request(request, target, actions),
        }
    }

    fn caps_info(&self) -> CapsInfo {
        match &self.client {
            None => CapsInfo {
                client_connected: false,
                client_features: 0,
                codecs: vec![],
                total_codecs: 0,
            },
            Some(caps) => {
                let codecs: Vec<CodecCap> = caps
                    .codecs
                    .iter()
                    .map(|c| CodecCap {
                        codec: c.codec,
                        flags: c.flags.bits(),
                        max_width: c.max_width,
                        max_height: c.max_height,
                    })
                    .collect();
                CapsInfo {
                    client_connected: true,
                    client_features: caps.features.bits(),
                    total_codecs: u32::try_from(codecs.len()).unwrap_or(u32::MAX),
                    codecs,
                }
            }
        }
    }

    /// Whether the connected client handles `format` (spec, CHECK_FORMAT).
    fn check_client_format(&self, format: &StreamFormat) -> Result<(), Status> {
        let caps = self.client.as_ref().ok_or(Status::NoClient)?;
        let needed = match format.direction {
            Direction::Playback => wire::CodecFlags::DECODE,
            Direction::Capture => wire::CodecFlags::ENCODE,
        };
        let fits = |limit: u32, value: u32| limit == 0 || value <= limit;
        let supported = caps.codecs.iter().any(|c| {
            c.codec == format.codec
                && c.flags.contains(needed)
                && fits(c.max_width, format.width)
                && fits(c.max_height, format.height)
        });
        if supported {
            Ok(())
        } else {
            Err(Status::Unsupported)
        }
    }

    fn create_stream(
        &mut self,
        presentation: u32,
        format: StreamFormat,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        let pres = self
            .presentations
            .get(&presentation)
            .ok_or(Status::NoEntity)?;
        let capture = format.direction == Direction::Capture;
        if capture && !self.capture {
            // DEV-INIT-1: capture without F_CAPTURE is INVALID.
            return Err(Status::Invalid);
        }
        if pres.state != PresentationState::Idle && !capture {
            return Err(Status::BadState);
        }
        if self.streams.len() >= self.limits.max_streams as usize {
            return Err(Status::Limit);
        }
        if !capture {
            if format.txq >= self.limits.num_txqs {
                return Err(Status::Invalid);
            }
            let txq_taken = pres
                .streams
                .iter()
                .filter_map(|s| self.streams.get(s))
                .any(|s| s.is_playback() && s.format.txq == format.txq);
            if txq_taken {
                return Err(Status::Invalid);
            }
        }
        self.check_client_format(&format)?;
        let id = self.alloc_id();
        let credit = Arc::new(Credit::new(
            self.limits.max_inflight_bytes,
            self.limits.max_inflight_ms,
        ));
        actions.push(Action::Send(wire::Message::CreateStream(
            create_stream_msg(id, presentation, &format),
        )));
        self.streams
            .insert(id, Stream::new(id, presentation, format, credit));
        if let Some(pres) = self.presentations.get_mut(&presentation) {
            pres.streams.push(id);
        }
        Ok(Reply::ok(id, ResponseBody::None))
    }

    /// Decides what happens to a data buffer from playback queue `txq`
    /// (spec, "Data buffers"): an error status to complete it with at once,
    /// a wait for credit, or an admission with its sequence number.
    pub fn admit(&mut self, header: &DataHeader, txq: u32) -> Result<Admit, Status> {
        if header.generation != self.generation {
            return Err(Status::Stale);
        }
        let connected = self.client.is_some();
        let stream = self
            .streams
            .get_mut(&header.stream_id)
            .ok_or(Status::NoEntity)?;
        if !stream.is_playback() || stream.format.txq != txq {
            return Err(Status::Invalid);
        }
        match stream.state {
            StreamState::Open => {}
            StreamState::Failed(status) => return Err(status),
            _ => return Err(Status::BadState),
        }
        if let Some(bytes) = stream.format.codec.pcm_sample_bytes()
            && !header
                .payload_len
                .is_multiple_of(bytes * stream.format.channels)
        {
            return Err(Status::Invalid);
        }
        if !connected {
            return Err(Status::NoClient);
        }
        if stream.keyframe_needed {
            let passes =
                header.flags & mediaredir_proto::data::FLAG_CODEC_CONFIG != 0 || header.is_eos();
            if !header.is_keyframe() && !passes {
                return Err(Status::Dropped);
            }
            if header.is_keyframe() {
                stream.keyframe_needed = false;
            }
        }
        let seq = stream.next_seq;
        let bytes = u64::from(header.payload_len);
        if stream
            .credit
            .acquire(seq, bytes, header.pts, header.duration)
            == Grant::Wait
        {
            return Ok(Admit::Wait(Arc::clone(&stream.credit)));
        }
        stream.next_seq += 1;
        if header.is_eos() {
            stream.state = StreamState::Draining;
        }
        Ok(Admit::Go(Admission {
            sample: wire::SampleHeader {
                stream: header.stream_id,
                seq,
                pts: header.pts,
                dts: header.dts,
                duration: header.duration,
                flags: wire::SampleFlags::from_bits_truncate(header.flags),
                // Forwarded unchanged; without F_CLIPPING the bytes were
                // reserved, and a device ignores reserved bytes.
                clip: if self.clipping {
                    header.clip
                } else {
                    wire::Clip::NONE
                },
            },
            credit: Arc::clone(&stream.credit),
        }))
    }

    /// A client connected (after its `Hello`): replays every presentation
    /// and stream to it and tells the guest (spec, "Client reconnect").
    pub fn client_connected(&mut self, caps: wire::Capabilities) -> Vec<Action> {
        let features = caps.features.bits();
        self.client = Some(caps);
        let mut actions = Vec::new();
        for pres in self.presentations.values() {
            actions.push(Action::Send(create_presentation_msg(pres.id, pres.live)));
            if pres.rate_q16 != mediaredir_proto::control::UNITY_Q16 {
                actions.push(Action::Send(wire::Message::SetRate {
                    presentation: pres.id,
                    rate_q16: pres.rate_q16,
                }));
            }
            if let Some(geometry) = &pres.geometry {
                actions.push(Action::Send(wire::Message::SetGeometry(geometry_msg(
                    pres.id, geometry,
                ))));
            }
            for id in &pres.streams {
                let Some(stream) = self.streams.get(id) else {
                    continue;
                };
                actions.push(Action::Send(wire::Message::CreateStream(
                    create_stream_msg(stream.id, pres.id, &stream.format),
                )));
                if stream.state == StreamState::Capturing {
                    actions.push(Action::Send(wire::Message::StartCapture {
                        stream: stream.id,
                    }));
                }
                if stream.volume_q16 != mediaredir_proto::control::UNITY_Q16 || stream.mute {
                    actions.push(Action::Send(wire::Message::SetVolume {
                        stream: stream.id,
                        volume_q16: stream.volume_q16,
                        mute: stream.mute,
                    }));
                }
            }
            match pres.state {
                PresentationState::Playing => actions.push(Action::Send(wire::Message::Play {
                    presentation: pres.id,
                })),
                PresentationState::Paused => actions.push(Action::Send(wire::Message::Pause {
                    presentation: pres.id,
                })),
                PresentationState::Idle => {}
            }
        }
        self.push_event(Event::ClientConnected { features });
        let video: Vec<u32> = self
            .streams
            .values_mut()
            .filter(|s| s.is_playback() && s.is_video() && s.next_seq > 1)
            .map(|s| {
                s.keyframe_needed = true;
                s.id
            })
            .collect();
        for stream in video {
            self.push_event(Event::KeyframeNeeded { stream });
        }
        actions
    }

    /// The client went away: every in-flight buffer completes `NO_CLIENT`
    /// and the guest is told (spec, "Client disconnect").
    pub fn client_disconnected(&mut self) -> Vec<Action> {
        if self.client.take().is_none() {
            return Vec::new();
        }
        self.push_event(Event::ClientDisconnected);
        for stream in self.streams.values_mut().filter(|s| !s.is_playback()) {
            // The next sample comes from a new capture session.
            stream.discont = true;
        }
        let mut actions: Vec<Action> = self
            .streams
            .keys()
            .map(|&stream| Action::Cancel {
                stream,
                status: Status::NoClient,
            })
            .collect();
        self.calls_client_gone(&mut actions);
        actions
    }

    /// Handles a message from the client other than acknowledgements (which
    /// the uplink settles itself).
    pub fn client_message(&mut self, msg: &wire::Message, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        match msg {
            wire::Message::EndOfStream { stream } => {
                if let Some(s) = self.streams.get_mut(stream) {
                    if s.state == StreamState::Draining || s.state == StreamState::Open {
                        s.state = StreamState::Ended;
                    }
                    self.push_event(Event::Eos { stream: *stream });
                }
            }
            wire::Message::Position {
                presentation,
                position_ns,
            } => {
                if let Some(p) = self.presentations.get_mut(presentation) {
                    p.position = Some((*position_ns, now));
                    self.push_event(Event::Position {
                        presentation: *presentation,
                        position_ns: *position_ns,
                        buffered_ns: 0,
                    });
                }
            }
            wire::Message::StateChanged {
                presentation,
                state,
            } => {
                if self.presentations.contains_key(presentation) {
                    let state = match state {
                        wire::PresentationState::Idle => PresentationState::Idle,
                        wire::PresentationState::Playing => PresentationState::Playing,
                        wire::PresentationState::Paused => PresentationState::Paused,
                    };
                    self.push_event(Event::StateChanged {
                        presentation: *presentation,
                        state,
                    });
                }
            }
            wire::Message::StreamError {
                stream,
                status,
                message,
            } => {
                if let Some(s) = self.streams.get_mut(stream) {
                    log::warn!("client reports stream {stream} failed: {status}: {message}");
                    s.state = StreamState::Failed(*status);
                    self.push_event(Event::StreamError {
                        stream: *stream,
                        status: *status,
                    });
                    actions.push(Action::Cancel {
                        stream: *stream,
                        status: *status,
                    });
                }
            }
            wire::Message::Qos {
                stream,
                rendered,
                dropped,
                jitter_ns,
            } => {
                if self.streams.contains_key(stream) {
                    self.push_event(Event::Qos {
                        stream: *stream,
                        rendered: *rendered,
                        dropped: *dropped,
                        jitter_ns: *jitter_ns,
                    });
                }
            }
            wire::Message::CapabilitiesChanged(caps) => {
                if self.client.is_some() {
                    let features = caps.features.bits();
                    self.client = Some(caps.clone());
                    self.push_event(Event::ClientConnected { features });
                }
            }
            wire::Message::CallLocalSdp { .. }
            | wire::Message::CallStats(_)
            | wire::Message::CallEnded { .. }
            | wire::Message::CallDtmfReceived { .. } => self.call_message(msg, &mut actions),
            other => log::debug!("ignoring client message {other:?}"),
        }
        actions
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

fn source_of(source: &wire::CaptureSource) -> Source {
    Source {
        id: source.id,
        kind: match source.kind {
            wire::SourceKind::Microphone => SourceKind::Microphone,
            wire::SourceKind::Camera => SourceKind::Camera,
            wire::SourceKind::Screen => SourceKind::Screen,
        },
        name: source.name.clone(),
    }
}

fn create_presentation_msg(id: u32, live: bool) -> wire::Message {
    let flags = if live {
        wire::PresentationFlags::LIVE
    } else {
        wire::PresentationFlags::empty()
    };
    wire::Message::CreatePresentation { id, flags }
}

fn rect_msg(r: &mediaredir_proto::control::Rect) -> wire::Rect {
    wire::Rect {
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
    }
}

fn geometry_msg(presentation: u32, g: &mediaredir_proto::control::Geometry) -> wire::SetGeometry {
    wire::SetGeometry {
        presentation,
        display: g.display_id,
        visible: g.visible,
        z: g.z,
        dest: rect_msg(&g.dest),
        source: rect_msg(&g.source),
        clip: g.clip.iter().map(rect_msg).collect(),
    }
}

fn create_stream_msg(id: u32, presentation: u32, f: &StreamFormat) -> wire::CreateStream {
    wire::CreateStream {
        id,
        presentation,
        direction: match f.direction {
            Direction::Playback => wire::Direction::Playback,
            Direction::Capture => wire::Direction::Capture,
        },
        codec: f.codec,
        width: f.width,
        height: f.height,
        fps_num: f.fps_num,
        fps_den: f.fps_den,
        sample_rate: f.sample_rate,
        channels: f.channels,
        bitrate: f.bitrate,
        source: f.source_id,
        codec_data: f.codec_data.clone(),
    }
}

#[cfg(test)]
mod tests;

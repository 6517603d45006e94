//! The engine handle: dispatches the daemon's messages to presentations,
//! routes samples to streams, runs the report ticker, and answers the
//! questions of its users (capabilities, statistics, verification).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use gstreamer as gst;
use gstreamer::prelude::*;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{
    Capabilities, CodecFlags, CreateStream, Direction, Message, PresentationState, SampleHeader,
    SetGeometry,
};
use mediaredir_timer::Timer;

use crate::call::Calls;
use crate::capture::{CaptureStats, Captures, sources};
use crate::config::EngineConfig;
use crate::events::{EngineEvents, EventHub};
use crate::kind::MediaKind;
use crate::presentation::Presentation;
use crate::stream::Stream;
#[cfg(feature = "verify")]
use crate::verify::{StreamReport, VerificationReport};
use crate::{EngineError, registry};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Statistics of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    /// Presentation id.
    pub presentation: u32,
    /// Stream id.
    pub stream: u32,
    /// Codec.
    pub codec: Codec,
    /// Video or audio.
    pub kind: MediaKind,
    /// Buffers out of the decoder (video: frames).
    pub decoded: u64,
    /// Buffers rendered by the sink.
    pub rendered: u64,
    /// Buffers dropped by the sink (late).
    pub dropped: u64,
    /// PTS of the latest decoded buffer, ns.
    pub last_pts: Option<u64>,
    /// Bytes received and not yet taken by the decoder.
    pub queued_bytes: u64,
    /// Failure status, if the stream failed.
    pub failed: Option<Status>,
    /// The factory of the stream's sink (`pulsesink`, `fakesink`,
    /// `appsink`…), once its decoded pad is linked.
    pub sink: Option<String>,
}

struct Inner {
    config: Arc<EngineConfig>,
    caps: Capabilities,
    events: EventHub,
    presentations: Mutex<BTreeMap<u32, Arc<Presentation>>>,
    /// Stream id -> presentation id.
    owners: Mutex<HashMap<u32, u32>>,
    /// Verification reports, kept after their stream is destroyed.
    #[cfg(feature = "verify")]
    reports: Mutex<BTreeMap<u32, Arc<Mutex<StreamReport>>>>,
    stop: AtomicBool,
    /// Capture streams (7.10).
    captures: Captures,
    /// Call media sessions (7.12).
    calls: Calls,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for p in std::mem::take(&mut *lock(&self.presentations)).into_values() {
            p.close();
        }
        self.captures.close();
        self.calls.close();
    }
}

/// The client media engine. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("output", &self.inner.config.output)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Initialises GStreamer, probes the registry for decoders and starts
    /// the report ticker.
    ///
    /// # Errors
    /// [`EngineError::Init`] when GStreamer cannot be initialised,
    /// [`EngineError::MissingElement`] when a core element is missing.
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        gst::init().map_err(|e| EngineError::Init(e.to_string()))?;
        for name in [
            "appsrc",
            "decodebin",
            "videoconvert",
            "videoconvertscale",
            "audioconvert",
            "volume",
        ] {
            if gst::ElementFactory::find(name).is_none() {
                return Err(EngineError::MissingElement(name.into()));
            }
        }
        let sources = sources::discover(config.capture_sources);
        let caps = registry::capabilities(
            &config.disabled_codecs,
            &sources,
            config.video_output.is_some(),
        );
        let events = EventHub::default();
        let config = Arc::new(config);
        let mic = sources.iter().find(|s| s.is_audio()).cloned();
        let cam = sources.iter().find(|s| !s.is_audio()).cloned();
        let calls = Calls::new(
            config.clone(),
            events.clone(),
            mic,
            cam,
            caps.features
                .contains(mediaredir_proto::wire::ClientFeatures::CALL),
            // The engine's one timer thread (`engine-timer`), started when
            // first used.
            Arc::new(Timer::new("engine-timer")),
        );
        let inner = Arc::new(Inner {
            captures: Captures::new(sources, events.clone()),
            calls,
            config,
            caps,
            events,
            presentations: Mutex::default(),
            owners: Mutex::default(),
            #[cfg(feature = "verify")]
            reports: Mutex::default(),
            stop: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&inner);
        let interval = inner
            .config
            .report_interval
            .min(std::time::Duration::from_secs(1));
        std::thread::Builder::new()
            .name("engine-ticker".into())
            .spawn(move || ticker(weak, interval))
            .map_err(|e| EngineError::Init(e.to_string()))?;
        Ok(Engine { inner })
    }

    /// What this client can decode, encode and carry in calls (from the
    /// GStreamer registry), its capture sources and features, for `Hello` /
    /// `CapabilitiesChanged`.
    pub fn capabilities(&self) -> Capabilities {
        self.inner.caps.clone()
    }

    /// Sets (or replaces) the sink of the engine's messages.
    pub fn set_events(&self, sink: Arc<dyn EngineEvents>) {
        self.inner.events.set(sink);
    }

    fn presentation(&self, id: u32) -> Option<Arc<Presentation>> {
        lock(&self.inner.presentations).get(&id).cloned()
    }

    fn owner_of(&self, stream: u32) -> Option<Arc<Presentation>> {
        let pid = *lock(&self.inner.owners).get(&stream)?;
        self.presentation(pid)
    }

    fn stream_error(&self, stream: u32, status: Status, message: String) {
        self.inner.events.report(Message::StreamError {
            stream,
            status,
            message,
        });
    }

    fn create_stream(&self, cs: &CreateStream) {
        if cs.direction == Direction::Capture {
            if self.presentation(cs.presentation).is_none() {
                log::debug!("CreateStream {} for unknown presentation", cs.id);
            } else if lock(&self.inner.owners).contains_key(&cs.id) {
                log::warn!("CreateStream {}: id in use, ignored", cs.id);
            } else {
                self.inner.captures.create(cs);
            }
            return;
        }
        if self.inner.captures.contains(cs.id) {
            log::warn!("CreateStream {}: id in use, ignored", cs.id);
            return;
        }
        let Some(p) = self.presentation(cs.presentation) else {
            log::debug!("CreateStream {} for unknown presentation", cs.id);
            return;
        };
        if lock(&self.inner.owners).contains_key(&cs.id) {
            log::warn!("CreateStream {}: id in use, ignored", cs.id);
            return;
        }
        if !self
            .inner
            .caps
            .codecs
            .iter()
            .any(|c| c.codec == cs.codec && c.flags.contains(CodecFlags::DECODE))
        {
            self.stream_error(
                cs.id,
                Status::Unsupported,
                format!("no decoder for {}", cs.codec.name()),
            );
            return;
        }
        match p.add_stream(cs) {
            Ok(stream) => {
                lock(&self.inner.owners).insert(cs.id, cs.presentation);
                self.keep_report(cs.id, &stream);
            }
            Err(e) => {
                let status = match e {
                    EngineError::InvalidFormat(_) => Status::Invalid,
                    _ => Status::Unsupported,
                };
                self.stream_error(cs.id, status, e.to_string());
            }
        }
    }

    /// Applies one control message from the daemon. Messages naming an
    /// unknown id are ignored (10.8); messages that are not for the engine
    /// (handshake, liveness, acknowledgements of capture) are ignored.
    pub fn handle(&self, msg: &Message) {
        match msg {
            Message::CreatePresentation { id, flags } => {
                if self.presentation(*id).is_some() {
                    log::warn!("CreatePresentation {id}: exists, ignored");
                    return;
                }
                match Presentation::new(
                    *id,
                    *flags,
                    self.inner.config.clone(),
                    self.inner.events.clone(),
                ) {
                    Ok(p) => {
                        lock(&self.inner.presentations).insert(*id, p);
                    }
                    Err(e) => log::error!("CreatePresentation {id}: {e}"),
                }
            }
            Message::DestroyPresentation { id } => {
                let p = lock(&self.inner.presentations).remove(id);
                if let Some(p) = p {
                    lock(&self.inner.owners).retain(|_, pid| pid != id);
                    p.close();
                }
                self.inner.captures.destroy_presentation(*id);
            }
            Message::Play { presentation } => {
                if let Some(p) = self.presentation(*presentation) {
                    p.play();
                }
            }
            Message::Pause { presentation } => {
                if let Some(p) = self.presentation(*presentation) {
                    p.pause();
                }
            }
            Message::Flush {
                presentation,
                position_ns,
            } => {
                if let Some(p) = self.presentation(*presentation) {
                    p.flush(*position_ns);
                }
            }
            Message::SetRate {
                presentation,
                rate_q16,
            } => {
                if let Some(p) = self.presentation(*presentation) {
                    p.set_rate(*rate_q16);
                }
            }
            Message::SetGeometry(g) => {
                if let Some(p) = self.presentation(g.presentation) {
                    p.set_geometry(g);
                }
            }
            Message::CreateStream(cs) => self.create_stream(cs),
            Message::DestroyStream { id } => {
                self.inner.captures.destroy(*id);
                if let Some(p) = self.owner_of(*id) {
                    p.destroy_stream(*id);
                }
                lock(&self.inner.owners).remove(id);
            }
            Message::SetVolume {
                stream,
                volume_q16,
                mute,
            } => {
                self.inner.captures.set_volume(*stream, *volume_q16, *mute);
                if let Some(s) = self.owner_of(*stream).and_then(|p| p.stream(*stream)) {
                    s.set_volume(*volume_q16, *mute);
                }
            }
            Message::StartCapture { stream } => self.inner.captures.start(*stream),
            Message::StopCapture { stream } => self.inner.captures.stop(*stream),
            Message::RequestKeyframe { stream } => self.inner.captures.request_keyframe(*stream),
            Message::Ack {
                stream,
                seq,
                status,
            } => self.inner.captures.ack(*stream, *seq, *status),
            Message::CallCreate { session, sdp } => self.inner.calls.create(*session, sdp),
            Message::CallRemoteSdp { session, sdp } => {
                self.inner.calls.remote_sdp(*session, sdp);
            }
            Message::CallControl { session, action } => {
                self.inner.calls.control(*session, *action);
            }
            other => log::trace!("engine ignores {}", other.name()),
        }
    }

    /// Queues one sample of a playback stream. `buffer` is its payload and
    /// is handed to GStreamer as it is (never copied): wrap the sender's
    /// memory, e.g. with `gst::Buffer::from_mut_slice`, and it is released
    /// when the decoder is done with it. Samples of unknown streams are
    /// dropped without acknowledgement.
    pub fn push_sample(&self, sample: &SampleHeader, buffer: gst::Buffer) {
        match self.owner_of(sample.stream) {
            Some(p) => p.push(sample, buffer),
            None => log::debug!("sample for unknown stream {}", sample.stream),
        }
    }

    /// Verify mode: keeps the stream's report past the stream's end.
    fn keep_report(&self, id: u32, stream: &Stream) {
        #[cfg(feature = "verify")]
        if let Some(r) = &stream.report {
            lock(&self.inner.reports).insert(id, r.clone());
        }
        #[cfg(not(feature = "verify"))]
        let _ = (id, stream);
    }

    /// What Verify mode decoded, per stream (also streams destroyed since);
    /// `None` in other modes.
    #[cfg(feature = "verify")]
    pub fn verification(&self) -> Option<VerificationReport> {
        if !self.inner.config.output.hashes() {
            return None;
        }
        let streams = lock(&self.inner.reports)
            .iter()
            .map(|(id, r)| (*id, lock(r).clone()))
            .collect();
        Some(VerificationReport { streams })
    }

    /// Counters of a capture stream (sent, delivered, dropped, keyframes).
    pub fn capture_stats(&self, stream: u32) -> Option<CaptureStats> {
        self.inner.captures.stats(stream)
    }

    /// The statistics a call session last reported (what `CALL_STATS`
    /// answers; all zero before the first report), `None` for an unknown
    /// session.
    pub fn call_stats(&self, session: u32) -> Option<mediaredir_proto::wire::CallStats> {
        self.inner.calls.stats(session)
    }

    /// The media pipeline of a started call session, for diagnostics and
    /// tests. Do not change its state behind the engine.
    pub fn call_pipeline(&self, session: u32) -> Option<gst::Pipeline> {
        self.inner.calls.pipeline(session)
    }

    /// Statistics of every live stream.
    pub fn stats(&self) -> Vec<StreamStats> {
        let ps: Vec<_> = lock(&self.inner.presentations).values().cloned().collect();
        let mut out = Vec::new();
        for p in ps {
            let streams: Vec<_> = lock(&p.streams).values().cloned().collect();
            for s in streams {
                let q = s.qos_now();
                let last = s.counters.last_pts.load(Ordering::Relaxed);
                out.push(StreamStats {
                    presentation: p.id,
                    stream: s.id,
                    codec: s.codec,
                    kind: s.kind,
                    decoded: s.counters.decoded.load(Ordering::Relaxed),
                    rendered: q.rendered,
                    dropped: q.dropped,
                    last_pts: (last != u64::MAX && last != 0).then_some(last),
                    queued_bytes: s.queued().0,
                    failed: s.failure(),
                    sink: s
                        .sink()
                        .and_then(|e| e.factory())
                        .map(|f| f.name().to_string()),
                });
            }
        }
        out
    }

    /// The last geometry set on a presentation. The engine only records it
    /// and hands it to [`EngineConfig::video_output`], if any (the engine
    /// shows no video itself, see the crate's `output` module).
    pub fn geometry(&self, presentation: u32) -> Option<SetGeometry> {
        self.presentation(presentation)?.geometry()
    }

    /// The state the daemon last asked of a presentation.
    pub fn target_state(&self, presentation: u32) -> Option<PresentationState> {
        Some(self.presentation(presentation)?.target())
    }

    /// The current position of a presentation, ns (stream time).
    pub fn position(&self, presentation: u32) -> Option<u64> {
        self.presentation(presentation)?.position()
    }

    /// The pipeline of a presentation, for diagnostics and tests (probing
    /// pads, dumping graphs). Do not change its state behind the engine.
    pub fn pipeline(&self, presentation: u32) -> Option<gst::Pipeline> {
        Some(self.presentation(presentation)?.pipeline.clone())
    }
}

fn ticker(weak: Weak<Inner>, interval: std::time::Duration) {
    loop {
        std::thread::sleep(interval);
        let Some(inner) = weak.upgrade() else { return };
        if inner.stop.load(Ordering::Acquire) {
            return;
        }
        let ps: Vec<_> = lock(&inner.presentations).values().cloned().collect();
        drop(inner);
        for p in ps {
            p.tick();
        }
    }
}

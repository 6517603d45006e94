//! Capture (spec 7.10): the client's microphones and cameras encoded and
//! sent to the daemon as `CaptureSample`s.
//!
//! A capture stream is created by `CreateStream` (direction capture) and
//! runs between `StartCapture` and `StopCapture`, each run in its own
//! pipeline ([`pipeline`]). The capture streams of one presentation share a
//! capture clock: their pipelines use the system clock with one base time,
//! set when the first of them starts, so their timestamps (running time)
//! are comparable and microphone and camera stay in sync.
//!
//! Flow control (10.7): the stream counts the samples the daemon has not
//! yet acknowledged; beyond 1 s of them it drops at the source (asking its
//! encoder for a keyframe) instead of sending. The daemon's
//! acknowledgements are counted as delivered (`Ok`) or dropped (any other
//! status), with the drops at the source, in [`CaptureStats`]. The client
//! sends no `Qos` for capture streams: the device reports capture QoS to the
//! guest itself (7.10, 7.11) from what it delivered and dropped, and a
//! second source of counts would make the guest's figures jump.

pub(crate) mod pipeline;
pub mod sources;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app::AppSinkCallbacks;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{CreateStream, Message, SampleFlags, SampleHeader, UNITY_Q16};

use crate::error::EngineError;
use crate::events::EventHub;
use sources::Source;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Most unacknowledged capture media per stream before the client drops
/// at the source (10.7), ns.
const MAX_UNACKED_NS: u64 = 1_000_000_000;

/// Counters of one capture stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Samples sent to the daemon.
    pub sent: u64,
    /// Samples the daemon acknowledged `Ok` (written to a guest buffer).
    pub delivered: u64,
    /// Samples the daemon dropped or cancelled, plus those dropped at the
    /// source for flow control.
    pub dropped: u64,
    /// Keyframes sent.
    pub keyframes: u64,
}

#[derive(Default)]
struct Acks {
    /// Sent, unacknowledged: (seq, duration ns).
    inflight: VecDeque<(u64, u64)>,
    inflight_ns: u64,
    stats: CaptureStats,
}

struct Running {
    built: pipeline::Built,
    stop: Arc<AtomicBool>,
}

/// One capture stream.
pub(crate) struct CaptureStream {
    pub(crate) id: u32,
    pub(crate) presentation: u32,
    format: CreateStream,
    source: Source,
    events: EventHub,
    base_time: Arc<Mutex<Option<gst::ClockTime>>>,
    running: Mutex<Option<Running>>,
    /// Set while running; cleared before a stop tears the pipeline down,
    /// so no sample is sent once `StopCapture` was handled.
    capturing: AtomicBool,
    failed: Mutex<Option<Status>>,
    seq: AtomicU64,
    discont: AtomicBool,
    /// Video: drop until a keyframe (after a drop at the source).
    need_key: AtomicBool,
    gain: Mutex<(u32, bool)>,
    acks: Mutex<Acks>,
}

impl CaptureStream {
    fn is_video(&self) -> bool {
        self.format.codec.is_video()
    }

    /// Starts capturing (idempotent).
    fn start(self: &Arc<Self>) -> Result<(), EngineError> {
        if lock(&self.failed).is_some() {
            return Ok(());
        }
        let mut running = lock(&self.running);
        if running.is_some() {
            return Ok(());
        }
        let built = pipeline::build(&self.format, &self.source)?;
        let weak = Arc::downgrade(self);
        built.appsink.set_callbacks(
            AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                    match weak.upgrade() {
                        Some(s) => {
                            s.on_sample(&sample);
                            Ok(gst::FlowSuccess::Ok)
                        }
                        None => Err(gst::FlowError::Flushing),
                    }
                })
                .build(),
        );
        if let Some(v) = &built.volume {
            let (q16, mute) = *lock(&self.gain);
            v.set_property("volume", f64::from(q16) / f64::from(UNITY_Q16));
            v.set_property("mute", mute);
        }
        let clock = gst::SystemClock::obtain();
        built.pipeline.use_clock(Some(&clock));
        built.pipeline.set_start_time(gst::ClockTime::NONE);
        let base = *lock(&self.base_time).get_or_insert_with(|| clock.time());
        built.pipeline.set_base_time(base);
        let stop = Arc::new(AtomicBool::new(false));
        let bus = built.pipeline.bus().expect("pipeline has a bus");
        let (w, st) = (Arc::downgrade(self), stop.clone());
        std::thread::Builder::new()
            .name(format!("capture-bus-{}", self.id))
            .spawn(move || bus_loop(bus, w, st))
            .map_err(|e| EngineError::Pipeline(e.to_string()))?;
        self.discont.store(true, Ordering::Release);
        self.capturing.store(true, Ordering::Release);
        if let Err(e) = built.pipeline.set_state(gst::State::Playing) {
            self.capturing.store(false, Ordering::Release);
            stop.store(true, Ordering::Release);
            let _ = built.pipeline.set_state(gst::State::Null);
            return Err(e.into());
        }
        *running = Some(Running { built, stop });
        Ok(())
    }

    /// Stops capturing (idempotent): no new sample is sent once it
    /// returns. The pipeline is torn down on a thread of its own: taking
    /// it to `NULL` waits for its streaming thread, which may be inside
    /// [`crate::EngineEvents::capture_sample`] waiting for a lock the
    /// caller of `StopCapture` holds (the daemon's in-process uplink). A
    /// sample already being handed over then still arrives; the daemon
    /// acknowledges it `Cancelled` (7.10).
    fn stop(&self) {
        self.capturing.store(false, Ordering::Release);
        let r = lock(&self.running).take();
        if let Some(r) = r {
            r.stop.store(true, Ordering::Release);
            let pipeline = r.built.pipeline.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("capture-stop-{}", self.id))
                .spawn(move || {
                    let _ = pipeline.set_state(gst::State::Null);
                });
            if spawned.is_err() {
                let _ = r.built.pipeline.set_state(gst::State::Null);
            }
        }
    }

    fn fail(&self, status: Status, message: String) {
        {
            let mut f = lock(&self.failed);
            if f.is_some() {
                return;
            }
            *f = Some(status);
        }
        self.stop();
        self.events.report(Message::StreamError {
            stream: self.id,
            status,
            message,
        });
    }

    fn set_gain(&self, volume_q16: u32, mute: bool) {
        *lock(&self.gain) = (volume_q16, mute);
        if let Some(v) = lock(&self.running)
            .as_ref()
            .and_then(|r| r.built.volume.clone())
        {
            v.set_property("volume", f64::from(volume_q16) / f64::from(UNITY_Q16));
            v.set_property("mute", mute);
        }
    }

    /// Asks the encoder for a keyframe (with parameter sets).
    fn request_keyframe(&self) {
        let sink = lock(&self.running)
            .as_ref()
            .map(|r| r.built.appsink.clone());
        if let Some(sink) = sink {
            let ev = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            if !sink.send_event(ev) {
                log::debug!("capture {}: keyframe request not handled", self.id);
            }
        }
    }

    fn on_sample(&self, sample: &gst::Sample) {
        if !self.capturing.load(Ordering::Acquire) {
            return;
        }
        let Some(buffer) = sample.buffer_owned() else {
            return;
        };
        // Opus' codec headers (OpusHead/OpusTags) are not sent (7.10).
        // (h264parse flags keyframes with inserted parameter sets HEADER
        // too: those are samples.)
        if !self.is_video() && buffer.flags().contains(gst::BufferFlags::HEADER) {
            return;
        }
        let segment = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
        let running = |t: Option<gst::ClockTime>| match &segment {
            Some(seg) => t.and_then(|t| seg.to_running_time(t)),
            None => t,
        };
        let pts = running(buffer.pts()).map(gst::ClockTime::nseconds);
        let dts = running(buffer.dts()).map(gst::ClockTime::nseconds);
        let duration = buffer.duration().map(gst::ClockTime::nseconds);
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let video = self.is_video();
        if video && self.need_key.load(Ordering::Acquire) {
            if !keyframe {
                lock(&self.acks).stats.dropped += 1;
                return;
            }
            self.need_key.store(false, Ordering::Release);
        }
        let seq = {
            let mut acks = lock(&self.acks);
            if acks.inflight_ns >= MAX_UNACKED_NS {
                acks.stats.dropped += 1;
                drop(acks);
                self.discont.store(true, Ordering::Release);
                if video {
                    self.need_key.store(true, Ordering::Release);
                    self.request_keyframe();
                }
                return;
            }
            let seq = self.seq.fetch_add(1, Ordering::AcqRel) + 1;
            let d = duration.unwrap_or(20_000_000);
            acks.inflight.push_back((seq, d));
            acks.inflight_ns += d;
            acks.stats.sent += 1;
            if keyframe {
                acks.stats.keyframes += 1;
            }
            seq
        };
        let mut flags = SampleFlags::empty();
        if keyframe {
            flags |= SampleFlags::KEYFRAME;
        }
        if self.discont.swap(false, Ordering::AcqRel) {
            flags |= SampleFlags::DISCONT;
        }
        let header = SampleHeader {
            clip: Default::default(),
            stream: self.id,
            seq,
            pts,
            dts,
            duration,
            flags,
        };
        self.events.capture_sample(header, buffer);
    }

    /// The daemon acknowledged samples up to `seq`.
    fn ack(&self, seq: u64, status: Status) {
        let mut acks = lock(&self.acks);
        while let Some(&(s, d)) = acks.inflight.front() {
            if s > seq {
                break;
            }
            acks.inflight.pop_front();
            acks.inflight_ns = acks.inflight_ns.saturating_sub(d);
            if status.is_ok() {
                acks.stats.delivered += 1;
            } else {
                acks.stats.dropped += 1;
            }
        }
    }

    fn on_message(&self, msg: &gst::Message) {
        if let gst::MessageView::Error(e) = msg.view() {
            let status = if e.error().is::<gst::CoreError>() || e.error().is::<gst::ResourceError>()
            {
                Status::Io
            } else {
                Status::Unsupported
            };
            self.fail(status, format!("capture failed: {}", e.error()));
        } else if let gst::MessageView::Warning(w) = msg.view() {
            log::warn!("capture {}: {}", self.id, w.error());
        }
    }
}

fn bus_loop(bus: gst::Bus, weak: Weak<CaptureStream>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Acquire) {
        let msg = bus.timed_pop(gst::ClockTime::from_mseconds(100));
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Some(s) = weak.upgrade() else { return };
        if let Some(msg) = msg {
            s.on_message(&msg);
        }
    }
}

/// The engine's capture streams.
pub(crate) struct Captures {
    sources: Vec<Source>,
    events: EventHub,
    streams: Mutex<BTreeMap<u32, Arc<CaptureStream>>>,
    /// Presentation id -> base time of its capture clock.
    clocks: Mutex<HashMap<u32, Arc<Mutex<Option<gst::ClockTime>>>>>,
}

impl Captures {
    pub(crate) fn new(sources: Vec<Source>, events: EventHub) -> Self {
        Captures {
            sources,
            events,
            streams: Mutex::default(),
            clocks: Mutex::default(),
        }
    }

    fn get(&self, id: u32) -> Option<Arc<CaptureStream>> {
        lock(&self.streams).get(&id).cloned()
    }

    /// Whether `id` is a capture stream.
    pub(crate) fn contains(&self, id: u32) -> bool {
        lock(&self.streams).contains_key(&id)
    }

    /// `CreateStream` with direction capture, in an existing presentation.
    pub(crate) fn create(&self, cs: &CreateStream) {
        let error = |status, message: String| {
            self.events.report(Message::StreamError {
                stream: cs.id,
                status,
                message,
            });
        };
        if self.contains(cs.id) {
            log::warn!("CreateStream {}: id in use, ignored", cs.id);
            return;
        }
        let Some(source) = self.sources.iter().find(|s| s.info.id == cs.source) else {
            return error(Status::Invalid, format!("no capture source {}", cs.source));
        };
        if source.is_audio() == cs.codec.is_video() {
            return error(
                Status::Invalid,
                format!(
                    "source {} cannot capture {}",
                    source.info.name,
                    cs.codec.name()
                ),
            );
        }
        if !crate::registry::can_encode(cs.codec) {
            return error(
                Status::Unsupported,
                format!("no encoder for {}", cs.codec.name()),
            );
        }
        if cs.codec == mediaredir_proto::codec::Codec::Opus && cs.media.channels > 2 {
            return error(
                Status::Unsupported,
                "Opus capture has at most 2 channels".into(),
            );
        }
        let base_time = lock(&self.clocks)
            .entry(cs.presentation)
            .or_default()
            .clone();
        let stream = Arc::new(CaptureStream {
            id: cs.id,
            presentation: cs.presentation,
            format: cs.clone(),
            source: source.clone(),
            events: self.events.clone(),
            base_time,
            running: Mutex::new(None),
            capturing: AtomicBool::new(false),
            failed: Mutex::new(None),
            seq: AtomicU64::new(0),
            discont: AtomicBool::new(true),
            need_key: AtomicBool::new(false),
            gain: Mutex::new((UNITY_Q16, false)),
            acks: Mutex::default(),
        });
        lock(&self.streams).insert(cs.id, stream);
    }

    /// `StartCapture`.
    pub(crate) fn start(&self, id: u32) {
        if let Some(s) = self.get(id)
            && let Err(e) = s.start()
        {
            let status = match e {
                EngineError::MissingElement(_) | EngineError::Unsupported(_) => Status::Unsupported,
                _ => Status::Io,
            };
            s.fail(status, format!("capture cannot start: {e}"));
        }
    }

    /// `StopCapture`.
    pub(crate) fn stop(&self, id: u32) {
        if let Some(s) = self.get(id) {
            s.stop();
        }
    }

    /// `RequestKeyframe` (video capture streams).
    pub(crate) fn request_keyframe(&self, id: u32) {
        if let Some(s) = self.get(id)
            && s.is_video()
        {
            s.request_keyframe();
        }
    }

    /// `SetVolume` on a capture stream: the capture gain.
    pub(crate) fn set_volume(&self, id: u32, volume_q16: u32, mute: bool) {
        if let Some(s) = self.get(id) {
            s.set_gain(volume_q16, mute);
        }
    }

    /// `Ack` from the daemon for capture samples.
    pub(crate) fn ack(&self, id: u32, seq: u64, status: Status) {
        if let Some(s) = self.get(id) {
            s.ack(seq, status);
        }
    }

    /// `DestroyStream`.
    pub(crate) fn destroy(&self, id: u32) {
        let s = lock(&self.streams).remove(&id);
        if let Some(s) = s {
            s.stop();
        }
    }

    /// `DestroyPresentation`: its capture streams and clock go.
    pub(crate) fn destroy_presentation(&self, presentation: u32) {
        let gone: Vec<_> = {
            let mut streams = lock(&self.streams);
            let ids: Vec<u32> = streams
                .values()
                .filter(|s| s.presentation == presentation)
                .map(|s| s.id)
                .collect();
            ids.iter().filter_map(|id| streams.remove(id)).collect()
        };
        for s in gone {
            s.stop();
        }
        lock(&self.clocks).remove(&presentation);
    }

    /// Counters of a capture stream.
    pub(crate) fn stats(&self, id: u32) -> Option<CaptureStats> {
        Some(lock(&self.get(id)?.acks).stats)
    }

    /// Stops everything (engine drop).
    pub(crate) fn close(&self) {
        let all = std::mem::take(&mut *lock(&self.streams));
        for s in all.into_values() {
            s.stop();
        }
    }
}

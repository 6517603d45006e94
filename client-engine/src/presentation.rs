//! One presentation: one pipeline (so one clock) holding the bins of its
//! streams, the transport controls applied to it, and the bus thread that
//! turns its messages into events. The bus thread holds only a weak
//! reference, so dropping the presentation ends it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{
    CreateStream, Message, PresentationFlags, PresentationState, SampleHeader, SetGeometry,
};

use crate::EngineError;
use crate::config::EngineConfig;
use crate::events::EventHub;
use crate::kind::MediaKind;
use crate::stream::{Stream, StreamSetup};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Slowest rate (1/8x, Q16.16), 7.13.
const MIN_RATE_Q16: u32 = 1 << 13;
/// Fastest rate (8x, Q16.16), 7.13.
const MAX_RATE_Q16: u32 = 8 << 16;

/// Transport state of a presentation.
#[derive(Debug)]
struct Control {
    target: PresentationState,
    rate: f64,
    /// Rate of the segment the streams carry (1.0 before the first flush,
    /// then the rate of the last flush seek); `SetRate` multiplies it.
    segment_rate: f64,
    /// Flushed at least once: the segment comes from the flush seek.
    flushed: bool,
    /// Before the first flush: the segment every stream's samples carry.
    segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    geometry: Option<SetGeometry>,
    reported: Option<PresentationState>,
    /// While paused: the position at the pause (or of a flush since). A
    /// position query in the middle of the PLAYING -> PAUSED transition
    /// answers with the last rendered buffer's time, behind the clock
    /// position the player saw a moment before, so the position would
    /// step back and forth; a paused presentation holds this one instead.
    paused_at: Option<u64>,
}

pub(crate) struct Presentation {
    pub(crate) id: u32,
    live: bool,
    pub(crate) pipeline: gst::Pipeline,
    pub(crate) streams: Mutex<BTreeMap<u32, Arc<Stream>>>,
    ctl: Mutex<Control>,
    events: EventHub,
    config: Arc<EngineConfig>,
    closed: AtomicBool,
}

impl Presentation {
    pub(crate) fn new(
        id: u32,
        flags: PresentationFlags,
        config: Arc<EngineConfig>,
        events: EventHub,
    ) -> Result<Arc<Presentation>, EngineError> {
        let pipeline = gst::Pipeline::with_name(&format!("presentation-{id}"));
        let p = Arc::new(Presentation {
            id,
            live: flags.contains(PresentationFlags::LIVE),
            pipeline,
            streams: Mutex::default(),
            ctl: Mutex::new(Control {
                target: PresentationState::Idle,
                rate: 1.0,
                segment_rate: 1.0,
                flushed: false,
                segment: None,
                geometry: None,
                reported: None,
                paused_at: None,
            }),
            events,
            config,
            closed: AtomicBool::new(false),
        });
        // Paused from the start: streams preroll as soon as data arrives.
        p.pipeline.set_state(gst::State::Paused)?;
        let weak = Arc::downgrade(&p);
        let bus = p.pipeline.bus().expect("pipeline has a bus");
        std::thread::Builder::new()
            .name(format!("bus-{id}"))
            .spawn(move || bus_loop(bus, weak))
            .map_err(|e| EngineError::Pipeline(e.to_string()))?;
        Ok(p)
    }

    pub(crate) fn add_stream(&self, cs: &CreateStream) -> Result<Arc<Stream>, EngineError> {
        let setup = StreamSetup {
            mode: self.config.output,
            sync: self.config.sink_sync(),
            live: self.live,
            watermarks: if self.live {
                self.config.live_watermarks
            } else {
                self.config.watermarks
            },
            events: &self.events,
            presentation: self.id,
            video_output: self.config.video_output.clone(),
        };
        let stream = Stream::new(cs, &setup)?;
        if stream.kind == MediaKind::Audio {
            stream.set_rate_mute(self.rate_mutes(lock(&self.ctl).rate));
        }
        self.pipeline.add(&stream.bin)?;
        stream.bin.sync_state_with_parent()?;
        let pos = {
            let ctl = lock(&self.ctl);
            ctl.flushed.then(|| ctl.segment.as_ref().map(|s| s.start()))
        };
        // A stream created after a flush starts at the flush position.
        if let Some(Some(Some(start))) = pos {
            stream.seek(start.nseconds(), lock(&self.ctl).rate);
        }
        lock(&self.streams).insert(cs.id, stream.clone());
        Ok(stream)
    }

    pub(crate) fn stream(&self, id: u32) -> Option<Arc<Stream>> {
        lock(&self.streams).get(&id).cloned()
    }

    fn remove_bin(&self, stream: &Stream) {
        // Locked first: a state change of the pipeline in progress on
        // another thread (Play while the stream fails during preroll) would
        // otherwise take the bin back up between these two lines.
        stream.bin.set_locked_state(true);
        let _ = stream.bin.set_state(gst::State::Null);
        let _ = self.pipeline.remove(&stream.bin);
        // Removing a bin that had not prerolled can complete the
        // pipeline's pending state change; re-assert the target.
        let target = lock(&self.ctl).target;
        if target == PresentationState::Playing {
            let _ = self.pipeline.set_state(gst::State::Playing);
        }
    }

    pub(crate) fn destroy_stream(&self, id: u32) {
        let Some(stream) = lock(&self.streams).remove(&id) else {
            return;
        };
        stream.discard(Status::Cancelled);
        stream.mark_destroyed();
        self.remove_bin(&stream);
    }

    /// Fails stream `id` alone: acknowledges what it holds with `status`,
    /// reports `StreamError`, and takes its bin out of the pipeline.
    pub(crate) fn fail_stream(&self, id: u32, status: Status, message: &str) {
        let Some(stream) = self.stream(id) else {
            return;
        };
        if !stream.mark_failed(status) {
            return;
        }
        log::warn!("presentation {}: stream {id} failed: {message}", self.id);
        let mut text = message.to_owned();
        text.truncate(1000);
        self.events.report(Message::StreamError {
            stream: id,
            status,
            message: text,
        });
        if stream.bin.parent().is_some() {
            self.remove_bin(&stream);
        }
    }

    pub(crate) fn push(&self, h: &SampleHeader, buffer: gst::Buffer) {
        let Some(stream) = self.stream(h.stream) else {
            return;
        };
        let segment = {
            let mut ctl = lock(&self.ctl);
            if self.live && ctl.target != PresentationState::Playing {
                drop(ctl);
                stream.push_dropped(h);
                return;
            }
            if ctl.flushed {
                None
            } else {
                // The first sample after creation fixes the segment start
                // for every stream of the presentation (7.13).
                let rate = ctl.rate;
                if ctl.segment.is_none() {
                    // A rate set before the first sample is the segment's.
                    ctl.segment_rate = rate;
                }
                let seg = ctl.segment.get_or_insert_with(|| {
                    let start = gst::ClockTime::from_nseconds(h.pts.unwrap_or(0));
                    let mut s = gst::FormattedSegment::<gst::ClockTime>::new();
                    s.set_rate(rate);
                    s.set_start(start);
                    s.set_time(start);
                    s.set_position(start);
                    s
                });
                Some(seg.clone().upcast())
            }
        };
        stream.push(h, buffer, segment.as_ref());
    }

    pub(crate) fn play(&self) {
        {
            let mut ctl = lock(&self.ctl);
            ctl.target = PresentationState::Playing;
            ctl.paused_at = None;
        }
        if let Err(e) = self.pipeline.set_state(gst::State::Playing) {
            log::warn!("presentation {}: play: {e}", self.id);
        }
    }

    pub(crate) fn pause(&self) {
        // Queried while still playing: the clock position, where it stops.
        let here = self.query_position();
        {
            let mut ctl = lock(&self.ctl);
            if ctl.target != PresentationState::Paused {
                ctl.paused_at = here;
            }
            ctl.target = PresentationState::Paused;
        }
        if let Err(e) = self.pipeline.set_state(gst::State::Paused) {
            log::warn!("presentation {}: pause: {e}", self.id);
        }
    }

    pub(crate) fn flush(&self, position_ns: u64) {
        let rate = {
            let mut ctl = lock(&self.ctl);
            ctl.flushed = true;
            if ctl.paused_at.is_some() {
                ctl.paused_at = Some(position_ns);
            }
            let mut s = gst::FormattedSegment::<gst::ClockTime>::new();
            s.set_start(gst::ClockTime::from_nseconds(position_ns));
            ctl.segment = Some(s);
            ctl.segment_rate = ctl.rate;
            ctl.rate
        };
        let streams: Vec<_> = lock(&self.streams).values().cloned().collect();
        for s in streams.iter().filter(|s| s.failure().is_none()) {
            s.discard(Status::Cancelled);
            if !s.seek(position_ns, rate) {
                log::warn!("presentation {}: flush of stream {} refused", self.id, s.id);
            }
        }
        self.events.report(Message::Position {
            presentation: self.id,
            position_ns,
        });
    }

    /// Changes the playback rate at once, without a flush (7.13).
    ///
    /// A seek with `GST_SEEK_FLAG_INSTANT_RATE_CHANGE` is not usable here:
    /// `appsrc` (basesrc, GStreamer 1.22) handles it as an ordinary seek
    /// and empties its queue. Instead the engine does what a demuxer that
    /// supports instant rate changes does: it sends an `instant-rate-change`
    /// event (multiplier relative to the rate of the current segment) into
    /// every sink; the sinks ask the pipeline for an `instant-rate-sync-time`
    /// and switch together, at the same running time. Positions stay in
    /// stream time. A rate set before the first sample becomes the rate of
    /// the first segment; a flush seeks at the current rate. A stream whose
    /// decoded pad is not exposed yet when the rate changes (data queued,
    /// no sink yet) keeps its segment's rate until the next flush. The
    /// rate is clamped to 1/8x..8x. Audio is muted while the rate is not
    /// 1x (`rate_mutes`).
    pub(crate) fn set_rate(&self, rate_q16: u32) {
        let rate = f64::from(rate_q16.clamp(MIN_RATE_Q16, MAX_RATE_Q16)) / 65536.0;
        let multiplier = {
            let mut ctl = lock(&self.ctl);
            ctl.rate = rate;
            rate / ctl.segment_rate
        };
        let streams: Vec<_> = lock(&self.streams).values().cloned().collect();
        for s in streams.iter().filter(|s| s.kind == MediaKind::Audio) {
            s.set_rate_mute(self.rate_mutes(rate));
        }
        for s in streams.iter().filter(|s| s.failure().is_none()) {
            let Some(pad) = s.sink().and_then(|sink| sink.static_pad("sink")) else {
                log::debug!(
                    "presentation {}: stream {} has no sink yet; rate {rate} applies at the next flush",
                    self.id,
                    s.id
                );
                continue;
            };
            let event = gst::event::InstantRateChange::new(multiplier, gst::SegmentFlags::empty());
            if !pad.send_event(event) {
                log::warn!(
                    "presentation {}: stream {} refused rate {rate}",
                    self.id,
                    s.id
                );
            }
        }
    }

    /// Audio is muted at a rate other than 1x (the engine does not
    /// time-stretch), except in Verify mode, which hashes the decoded
    /// samples as they are.
    fn rate_mutes(&self, rate: f64) -> bool {
        rate != 1.0 && !self.config.output.hashes()
    }

    /// Records `g` and hands it to the integrator that draws the video
    /// (`EngineConfig::video_output`), if any: the engine itself shows no
    /// video (see `output`'s module docs).
    pub(crate) fn set_geometry(&self, g: &SetGeometry) {
        lock(&self.ctl).geometry = Some(g.clone());
        if let Some(output) = &self.config.video_output {
            output.0.geometry(self.id, g);
        }
    }

    pub(crate) fn geometry(&self) -> Option<SetGeometry> {
        lock(&self.ctl).geometry.clone()
    }

    pub(crate) fn target(&self) -> PresentationState {
        lock(&self.ctl).target
    }

    /// The stream-time position: held while paused (see
    /// `Control::paused_at`), else the pipeline's.
    pub(crate) fn position(&self) -> Option<u64> {
        if let Some(at) = lock(&self.ctl).paused_at {
            return Some(at);
        }
        self.query_position()
    }

    fn query_position(&self) -> Option<u64> {
        self.pipeline
            .query_position::<gst::ClockTime>()
            .map(|t| t.nseconds())
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let streams: Vec<_> = std::mem::take(&mut *lock(&self.streams))
            .into_values()
            .collect();
        for s in &streams {
            s.discard(Status::Cancelled);
            s.mark_destroyed();
        }
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(output) = &self.config.video_output {
            output.0.closed(self.id);
        }
    }

    /// Periodic reports: position while playing, QoS when it changed.
    pub(crate) fn tick(&self) {
        let (playing, reported) = {
            let ctl = lock(&self.ctl);
            (
                ctl.target == PresentationState::Playing,
                ctl.reported == Some(PresentationState::Playing),
            )
        };
        if playing
            && reported
            && let Some(position_ns) = self.position()
        {
            self.events.report(Message::Position {
                presentation: self.id,
                position_ns,
            });
        }
        let streams: Vec<_> = lock(&self.streams).values().cloned().collect();
        for s in streams.iter().filter(|s| s.failure().is_none()) {
            let q = s.refresh_qos();
            if let Some(q) = q {
                self.events.report(Message::Qos {
                    stream: s.id,
                    rendered: q.rendered,
                    dropped: q.dropped,
                    jitter_ns: q.jitter_ns,
                });
            }
        }
    }

    fn stream_of(&self, obj: &gst::Object) -> Option<u32> {
        let mut cur = Some(obj.clone());
        while let Some(o) = cur {
            if let Some(id) = o
                .name()
                .strip_prefix("stream-")
                .and_then(|n| n.parse().ok())
                && o.parent().as_ref() == Some(self.pipeline.upcast_ref())
            {
                return Some(id);
            }
            cur = o.parent();
        }
        None
    }

    fn report_state(&self, state: PresentationState) {
        {
            let mut ctl = lock(&self.ctl);
            if ctl.reported == Some(state) || ctl.target != state {
                return;
            }
            ctl.reported = Some(state);
        }
        self.events.report(Message::StateChanged {
            presentation: self.id,
            state,
        });
        if let Some(position_ns) = self.position() {
            self.events.report(Message::Position {
                presentation: self.id,
                position_ns,
            });
        }
    }

    fn on_message(&self, msg: &gst::Message) {
        use gst::MessageView as V;
        match msg.view() {
            V::Error(e) => {
                let text = match e.debug() {
                    Some(debug) => format!("{} ({debug})", e.error()),
                    None => e.error().to_string(),
                };
                let status = if e.error().is::<gst::CoreError>()
                    || e.error().matches(gst::StreamError::CodecNotFound)
                    || e.error().matches(gst::StreamError::WrongType)
                {
                    Status::Unsupported
                } else {
                    Status::Invalid
                };
                match msg.src().and_then(|s| self.stream_of(s)) {
                    Some(id) => self.fail_stream(id, status, &text),
                    None => log::error!("presentation {}: {text}", self.id),
                }
            }
            V::Warning(w) => {
                log::warn!("presentation {}: {} ({:?})", self.id, w.error(), w.debug())
            }
            V::Element(el) => {
                let Some(s) = el.structure() else { return };
                if s.name() != "GstBinForwarded" {
                    return;
                }
                if let Ok(inner) = s.get::<gst::Message>("message")
                    && inner.type_() == gst::MessageType::Eos
                    && let Some(id) = inner.src().and_then(|o| self.stream_of(o))
                    && let Some(stream) = self.stream(id)
                {
                    stream.reached_eos();
                }
            }
            V::StateChanged(sc) => {
                if msg.src() != Some(self.pipeline.upcast_ref()) {
                    return;
                }
                match sc.current() {
                    gst::State::Playing => self.report_state(PresentationState::Playing),
                    gst::State::Paused if sc.pending() == gst::State::VoidPending => {
                        self.report_state(PresentationState::Paused)
                    }
                    _ => {}
                }
            }
            V::Qos(q) => {
                if let Some(id) = msg.src().and_then(|o| self.stream_of(o))
                    && let Some(stream) = self.stream(id)
                {
                    let (jitter, _, _) = q.values();
                    let (processed, dropped) = q.stats();
                    stream.note_qos(processed.value(), dropped.value(), jitter);
                }
            }
            _ => {}
        }
    }
}

fn bus_loop(bus: gst::Bus, weak: Weak<Presentation>) {
    loop {
        let msg = bus.timed_pop(gst::ClockTime::from_mseconds(100));
        let Some(p) = weak.upgrade() else { return };
        if p.closed.load(Ordering::Acquire) {
            return;
        }
        if let Some(msg) = msg {
            p.on_message(&msg);
        } else {
            std::thread::sleep(Duration::ZERO);
        }
    }
}

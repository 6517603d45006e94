//! One stream: `appsrc ! decodebin ! <output chain>` inside a bin named
//! `stream-<id>`, so an error from any of its elements names the stream and
//! the stream can fail (and be removed) alone. It also keeps the stream's
//! acknowledgement book: a buffer-and-event probe on the `appsrc` source pad
//! sees each sample leave the queue towards the decoder.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{CreateStream, Message, SampleFlags, SampleHeader};

use crate::EngineError;
use crate::caps::stream_caps;
use crate::config::{OutputMode, Watermarks};
use crate::decode_only::DecodeOnly;
use crate::events::EventHub;
use crate::flow::FlowBook;
use crate::frames::VideoOutputHandle;
use crate::kind::MediaKind;
use crate::output::{Counters, OutputChain, Tail, attach_output};
use crate::trim::{self, OutputTrim};
#[cfg(feature = "verify")]
use crate::verify::StreamReport;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// QoS figures of the stream's sink.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct QosState {
    pub(crate) rendered: u64,
    pub(crate) dropped: u64,
    pub(crate) jitter_ns: i64,
    pub(crate) reported: Option<(u64, u64)>,
}

/// What a stream needs to know about its presentation at creation.
pub(crate) struct StreamSetup<'a> {
    pub(crate) mode: OutputMode,
    pub(crate) sync: bool,
    pub(crate) live: bool,
    pub(crate) watermarks: Watermarks,
    pub(crate) events: &'a EventHub,
    /// The presentation.
    pub(crate) presentation: u32,
    /// Where Auto-mode pictures go when the integrator draws them.
    pub(crate) video_output: Option<VideoOutputHandle>,
}

pub(crate) struct Stream {
    pub(crate) id: u32,
    pub(crate) codec: Codec,
    pub(crate) kind: MediaKind,
    pub(crate) bin: gst::Bin,
    appsrc: gst_app::AppSrc,
    prefix: Mutex<Option<gst::Buffer>>,
    flow: Mutex<FlowBook>,
    watermarks: Watermarks,
    events: EventHub,
    pub(crate) counters: Arc<Counters>,
    output: Mutex<Option<OutputChain>>,
    volume: Mutex<(f64, bool)>,
    /// Muted for a rate other than 1x (no time-stretching, 7.13).
    rate_mute: AtomicBool,
    presentation: u32,
    /// Video in Auto mode goes to the integrator (see `frames`).
    video_output: Option<VideoOutputHandle>,
    failed: Mutex<Option<Status>>,
    destroyed: AtomicBool,
    /// What Verify mode hashed.
    #[cfg(feature = "verify")]
    pub(crate) report: Option<Arc<Mutex<StreamReport>>>,
    pub(crate) qos: Mutex<QosState>,
    eos_reported: AtomicBool,
    /// Clipping the engine applies to decoded audio itself (decoders that
    /// ignore GstAudioClippingMeta).
    trim: Arc<Mutex<OutputTrim>>,
    /// Video frames to decode but not show.
    decode_only: Arc<DecodeOnly>,
}

impl Stream {
    pub(crate) fn new(
        cs: &CreateStream,
        setup: &StreamSetup<'_>,
    ) -> Result<Arc<Stream>, EngineError> {
        let caps = stream_caps(cs)?;
        let kind = if cs.codec.is_video() {
            MediaKind::Video
        } else {
            MediaKind::Audio
        };
        let bin = gst::Bin::with_name(&format!("stream-{}", cs.id));
        bin.set_property("message-forward", true);
        let appsrc = gst_app::AppSrc::builder()
            .name(format!("src-{}", cs.id))
            .caps(&caps.caps)
            .format(gst::Format::Time)
            .stream_type(gst_app::AppStreamType::Seekable)
            .is_live(setup.live)
            .block(false)
            .max_bytes(0)
            .handle_segment_change(true)
            .build();
        appsrc.set_property("max-buffers", 0u64);
        appsrc.set_property("max-time", 0u64);
        appsrc.set_callbacks(
            gst_app::AppSrcCallbacks::builder()
                .seek_data(|_, _| true)
                .build(),
        );
        let decodebin = gst::ElementFactory::make("decodebin")
            .build()
            .map_err(|_| EngineError::MissingElement("decodebin".into()))?;
        bin.add_many([appsrc.upcast_ref(), &decodebin])?;
        appsrc.link(&decodebin)?;
        let stream = Arc::new(Stream {
            id: cs.id,
            codec: cs.codec,
            kind,
            bin: bin.clone(),
            appsrc: appsrc.clone(),
            prefix: Mutex::new(caps.prefix),
            flow: Mutex::new(FlowBook::new()),
            watermarks: setup.watermarks,
            events: setup.events.clone(),
            counters: Arc::default(),
            output: Mutex::new(None),
            volume: Mutex::new((1.0, false)),
            rate_mute: AtomicBool::new(false),
            presentation: setup.presentation,
            video_output: setup
                .video_output
                .clone()
                .filter(|_| kind == MediaKind::Video),
            failed: Mutex::new(None),
            destroyed: AtomicBool::new(false),
            #[cfg(feature = "verify")]
            report: setup
                .mode
                .hashes()
                .then(|| Arc::new(Mutex::new(StreamReport::new(kind)))),
            qos: Mutex::default(),
            eos_reported: AtomicBool::new(false),
            trim: Arc::default(),
            decode_only: Arc::default(),
        });
        stream.install_probe();
        let weak = Arc::downgrade(&stream);
        let (mode, sync) = (setup.mode, setup.sync);
        decodebin.connect_pad_added(move |_, pad| {
            if let Some(s) = weak.upgrade() {
                s.on_decoded_pad(pad, mode, sync);
            }
        });
        Ok(stream)
    }

    fn install_probe(self: &Arc<Self>) {
        let weak: Weak<Stream> = Arc::downgrade(self);
        let pad = self.appsrc.static_pad("src").expect("appsrc has a src pad");
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                let Some(s) = weak.upgrade() else {
                    return gst::PadProbeReturn::Remove;
                };
                match info.data {
                    Some(gst::PadProbeData::Buffer(ref b)) => {
                        let seq = b.offset();
                        if seq != 0 && seq != u64::MAX {
                            s.taken(seq);
                        }
                    }
                    Some(gst::PadProbeData::Event(ref e)) if e.type_() == gst::EventType::Eos => {
                        s.taken(u64::MAX);
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    }

    /// What ends the output chain in `mode`: in Auto mode audio goes to a
    /// real sink and video to the integrator, if any; everything else is
    /// discarded on the clock (the engine opens no window).
    fn tail(&self, mode: OutputMode, sync: bool) -> Result<Tail, EngineError> {
        #[cfg(feature = "verify")]
        if let Some(report) = &self.report {
            return crate::verify::sink::tail(self.kind, sync, report.clone()).map(Tail::Elements);
        }
        Ok(match (mode, self.kind, &self.video_output) {
            (OutputMode::Auto, MediaKind::Video, Some(output)) => Tail::Converting(
                crate::frames::tail(output.clone(), self.presentation, self.id)?,
            ),
            (OutputMode::Auto, MediaKind::Audio, _) => Tail::AudioDevice,
            _ => Tail::Discard { sync },
        })
    }

    fn on_decoded_pad(&self, pad: &gst::Pad, mode: OutputMode, sync: bool) {
        let mut out = lock(&self.output);
        if out.is_some() {
            log::warn!("stream {}: extra decoded pad ignored", self.id);
            return;
        }
        if self.kind == MediaKind::Audio && !trim::decoder_clips(self.codec) {
            trim::install(pad, self.trim.clone());
        }
        if self.kind == MediaKind::Video {
            self.decode_only.install(pad);
        }
        let attached = self
            .tail(mode, sync)
            .and_then(|tail| attach_output(&self.bin, pad, self.kind, tail, self.counters.clone()));
        match attached {
            Ok(chain) => {
                let (v, m) = *lock(&self.volume);
                if let Some(vol) = &chain.volume {
                    vol.set_property("volume", v);
                    vol.set_property("mute", m || self.rate_mute.load(Ordering::Acquire));
                }
                *out = Some(chain);
            }
            Err(e) => {
                // On the bus, so that the stream fails with this message
                // (`StreamError`) rather than decodebin's "not-linked".
                log::error!("stream {}: output chain: {e}", self.id);
                let src = pad
                    .parent_element()
                    .unwrap_or_else(|| self.bin.clone().upcast());
                let msg =
                    gst::message::Error::builder(gst::CoreError::MissingPlugin, &e.to_string())
                        .src(&src)
                        .build();
                let _ = src.post_message(msg);
            }
        }
    }

    fn send_ack(&self, seq: u64, status: Status) {
        if !self.destroyed.load(Ordering::Acquire) {
            self.events.report(Message::Ack {
                stream: self.id,
                seq,
                status,
            });
        }
    }

    fn taken(&self, seq: u64) {
        let mut flow = lock(&self.flow);
        if let Some(ack) = flow.on_taken(seq, &self.watermarks) {
            self.send_ack(ack, Status::Ok);
        }
    }

    /// Bytes and ns received and not yet taken by the decoder.
    pub(crate) fn queued(&self) -> (u64, u64) {
        let f = lock(&self.flow);
        (f.level_bytes(), f.level_ns())
    }

    pub(crate) fn failure(&self) -> Option<Status> {
        *lock(&self.failed)
    }

    /// Drops what is queued and acknowledges it with `status`.
    pub(crate) fn discard(&self, status: Status) {
        let mut flow = lock(&self.flow);
        if let Some(ack) = flow.on_discard() {
            self.send_ack(ack, status);
        }
        self.eos_reported.store(false, Ordering::Release);
    }

    /// Marks the stream failed; returns false when it already was.
    pub(crate) fn mark_failed(&self, status: Status) -> bool {
        let mut f = lock(&self.failed);
        if f.is_some() {
            return false;
        }
        *f = Some(status);
        drop(f);
        self.discard(status);
        true
    }

    /// No acknowledgement for this stream may go out any more.
    pub(crate) fn mark_destroyed(&self) {
        self.destroyed.store(true, Ordering::Release);
    }

    /// Reports `EndOfStream` once per segment.
    pub(crate) fn reached_eos(&self) {
        if !self.eos_reported.swap(true, Ordering::AcqRel) && self.failure().is_none() {
            self.events.report(Message::EndOfStream { stream: self.id });
        }
    }

    pub(crate) fn set_volume(&self, volume_q16: u32, mute: bool) {
        let v = f64::from(volume_q16) / 65536.0;
        *lock(&self.volume) = (v, mute);
        if let Some(vol) = lock(&self.output).as_ref().and_then(|o| o.volume.clone()) {
            vol.set_property("volume", v);
            vol.set_property("mute", mute || self.rate_mute.load(Ordering::Acquire));
        }
    }

    /// Mutes the audio while the rate is not 1x: the engine does not
    /// time-stretch, and 7.13 asks for silence rather than shifted pitch.
    /// The daemon's own mute (`SetVolume`) is kept underneath.
    pub(crate) fn set_rate_mute(&self, on: bool) {
        self.rate_mute.store(on, Ordering::Release);
        let mute = lock(&self.volume).1 || on;
        if let Some(vol) = lock(&self.output).as_ref().and_then(|o| o.volume.clone()) {
            vol.set_property("mute", mute);
        }
    }

    pub(crate) fn sink(&self) -> Option<gst::Element> {
        lock(&self.output).as_ref().map(|o| o.sink.clone())
    }

    /// Flushing seek of this stream's source to `position` ns at `rate`:
    /// drops queued data, sends flush events and a new segment downstream.
    ///
    /// Until decodebin has exposed its decoded pad, it plugs parser and
    /// decoder from the `appsrc` streaming thread, inside a push. A
    /// flush-start that enters decodebin then (from the thread sending the
    /// seek) makes the element being plugged fail its state change;
    /// decodebin falls back to the next factory, finds "a new pad in a
    /// chain that is already complete", never exposes the stream, and the
    /// next push fails not-linked. So before such a flush the `appsrc` pad
    /// is quiesced: a blocking probe holds the next push back and the seek
    /// waits until the push in progress (and any plugging inside it) has
    /// returned. Once the decoded pad is exposed nothing is plugged any
    /// more; then the streaming thread may rightly sit in a sink's preroll,
    /// which only the flush itself can release, so no wait is done.
    pub(crate) fn seek(&self, position: u64, rate: f64) -> bool {
        let seek = gst::event::Seek::new(
            rate,
            gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
            gst::SeekType::Set,
            gst::ClockTime::from_nseconds(position),
            gst::SeekType::None,
            gst::ClockTime::NONE,
        );
        if lock(&self.output).is_some() {
            return self.appsrc.send_event(seek);
        }
        let pad = self.appsrc.static_pad("src").expect("appsrc has a src pad");
        let block = pad.add_probe(gst::PadProbeType::BLOCK_DOWNSTREAM, |_, _| {
            gst::PadProbeReturn::Ok
        });
        let (idle_tx, idle_rx) = std::sync::mpsc::channel();
        pad.add_probe(gst::PadProbeType::IDLE, move |_, _| {
            let _ = idle_tx.send(());
            gst::PadProbeReturn::Remove
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match idle_rx.recv_timeout(std::time::Duration::from_millis(10)) {
                Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    // Exposed meanwhile: the push may now wait in a preroll.
                    if lock(&self.output).is_some() || std::time::Instant::now() >= deadline {
                        break;
                    }
                }
            }
        }
        let ok = self.appsrc.send_event(seek);
        if let Some(block) = block {
            pad.remove_probe(block);
        }
        ok
    }

    /// A sample of a paused live presentation: consumed and discarded
    /// (7.13), acknowledged `Dropped`.
    pub(crate) fn push_dropped(&self, h: &SampleHeader) {
        let mut flow = lock(&self.flow);
        flow.on_received(h.seq, 0, 0, &self.watermarks);
        if let Some(ack) = flow.on_discard() {
            self.send_ack(ack, Status::Dropped);
        }
    }

    /// A QoS message of the stream's sink.
    pub(crate) fn note_qos(&self, processed: i64, dropped: i64, jitter_ns: i64) {
        let mut q = lock(&self.qos);
        if let Ok(p) = u64::try_from(processed) {
            q.rendered = q.rendered.max(p);
        }
        if let Ok(d) = u64::try_from(dropped) {
            q.dropped = q.dropped.max(d);
        }
        q.jitter_ns = jitter_ns;
    }

    fn read_sink_stats(&self) {
        if let Some(sink) = self.sink()
            && sink.has_property("stats")
        {
            let stats = sink.property::<gst::Structure>("stats");
            let mut q = lock(&self.qos);
            if let Ok(r) = stats.get::<u64>("rendered") {
                q.rendered = q.rendered.max(r);
            }
            if let Ok(d) = stats.get::<u64>("dropped") {
                q.dropped = q.dropped.max(d);
            }
        }
    }

    /// Reads the sink's statistics; returns the QoS figures when they
    /// changed since the last call that returned them.
    pub(crate) fn refresh_qos(&self) -> Option<QosState> {
        self.read_sink_stats();
        let mut q = lock(&self.qos);
        let now = (q.rendered, q.dropped);
        if q.reported == Some(now) || now == (0, 0) {
            return None;
        }
        q.reported = Some(now);
        Some(*q)
    }

    /// Current QoS figures.
    pub(crate) fn qos_now(&self) -> QosState {
        self.read_sink_stats();
        *lock(&self.qos)
    }

    /// Queues one sample (its payload is `buffer`, not copied).
    pub(crate) fn push(
        &self,
        h: &SampleHeader,
        mut buffer: gst::Buffer,
        segment: Option<&gst::Segment>,
    ) {
        if let Some(status) = self.failure() {
            let mut flow = lock(&self.flow);
            flow.on_received(h.seq, 0, 0, &self.watermarks);
            if let Some(ack) = flow.on_discard() {
                self.send_ack(ack, status);
            }
            return;
        }
        let eos = h.flags.contains(SampleFlags::EOS);
        let bytes = buffer.size() as u64;
        if self.codec.pcm_sample_bytes().is_some()
            && let Ok(copy) = buffer.copy_deep()
        {
            // A decoder's output frees its input at once. Raw PCM has no
            // decoder, and where no conversion is needed either (32-bit
            // float) it reaches the sink in the device's memory, which a
            // sink keeps (its preroll or last buffer) until the stream
            // ends: the device would wait for that buffer forever. A copy
            // gives the memory back as soon as the buffer is taken.
            buffer = copy;
        }
        {
            let b = buffer.make_mut();
            b.set_pts(h.pts.map(gst::ClockTime::from_nseconds));
            b.set_dts(h.dts.map(gst::ClockTime::from_nseconds));
            b.set_duration(h.duration.map(gst::ClockTime::from_nseconds));
            b.set_offset(h.seq);
            let mut flags = gst::BufferFlags::empty();
            if self.kind == MediaKind::Video && !h.flags.contains(SampleFlags::KEYFRAME) {
                flags |= gst::BufferFlags::DELTA_UNIT;
            }
            if h.flags.contains(SampleFlags::DISCONT) {
                flags |= gst::BufferFlags::DISCONT;
            }
            if h.flags.contains(SampleFlags::CODEC_CONFIG) {
                flags |= gst::BufferFlags::HEADER;
            }
            if h.flags.contains(SampleFlags::DECODE_ONLY) {
                flags |= gst::BufferFlags::DECODE_ONLY;
                if let (MediaKind::Video, Some(pts)) = (self.kind, h.pts) {
                    self.decode_only.mark(pts);
                }
            }
            b.set_flags(flags);
            if self.kind == MediaKind::Audio && !trim::decoder_clips(self.codec) {
                lock(&self.trim).add(h.clip);
            } else if self.kind == MediaKind::Audio && !h.clip.is_none() {
                // The guest's demuxer marks encoder delay and padding as a
                // local demuxer would; the decoder drops exactly these
                // samples from this buffer's output.
                gstreamer_audio::AudioClippingMeta::add(
                    b,
                    gst::format::Default::from_u64(u64::from(h.clip.start)),
                    gst::format::Default::from_u64(u64::from(h.clip.end)),
                );
            }
        }
        {
            let mut flow = lock(&self.flow);
            if let Some(ack) =
                flow.on_received(h.seq, bytes, h.duration.unwrap_or(0), &self.watermarks)
            {
                self.send_ack(ack, Status::Ok);
            }
        }
        if let Some(prefix) = lock(&self.prefix).take() {
            let _ = self.appsrc.push_buffer(prefix);
        }
        if bytes > 0 || !eos {
            let res = match segment {
                Some(seg) => {
                    let sample = gst::Sample::builder().buffer(&buffer).segment(seg).build();
                    drop(buffer);
                    self.appsrc.push_sample(&sample)
                }
                None => self.appsrc.push_buffer(buffer),
            };
            if let Err(e) = res {
                log::debug!("stream {}: push: {e:?}", self.id);
            }
        }
        if eos {
            let _ = self.appsrc.end_of_stream();
        }
    }
}

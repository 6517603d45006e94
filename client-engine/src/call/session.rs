//! One call media session: its UDP sockets (bound when the session is
//! created, so the ports the SDP announces stay ours), and once started its
//! `rtpbin` pipeline:
//!
//! ```text
//! microphone ! audioconvert ! audioresample ! volume (mute) ! opusenc
//!   ! rtpopuspay ! rtpdtmfmux (+ rtpdtmfsrc) ! valve (hold) ! rtpbin session 0
//! camera ! videoconvert ! videoscale ! vp8enc ! rtpvp8pay ! valve (hold, mute)
//!   ! rtpbin session 1                                       (video sessions)
//! rtpbin send_rtp_src_N ! udpsink (peer RTP)   send_rtcp_src_N ! udpsink (peer RTCP)
//! udpsrc (our RTP) ! rtpbin recv_rtp_sink_N    udpsrc (our RTCP) ! rtpbin recv_rtcp_sink_N
//! rtpbin recv_rtp_src_N_<ssrc>_<pt> ! rtpopusdepay ! opusdec ! audio sink
//!                                   | rtpdtmfdepay ! audio sink (tones; events on the bus)
//!                                   | rtpvp8depay ! vp8dec ! video sink
//! ```
//!
//! The audio and video sinks are `fakesink`s in the headless modes, else
//! the first usable sink of the lists in `crate::sinks` (never ranked).
//!
//! A monitor thread (holding only a weak reference) watches the bus
//! (errors end the call with `IO`; received DTMF becomes
//! `CallDtmfReceived`; an RTCP BYE from the peer ends the call with `OK`),
//! sends `CallStats` every [`crate::CallConfig::stats_interval`], and ends
//! the call with `IO` when nothing (RTP or RTCP) arrived from the peer for
//! [`crate::CallConfig::peer_timeout`] while the call is active.

use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{CallStats, MediaMask, Message};

use super::sdp::{self, Kind, LocalPorts, Remote};
use super::stats::{self, Counts};
use crate::capture::sources::Source;
use crate::config::{EngineConfig, OutputMode};
use crate::error::EngineError;
use crate::events::EventHub;
use crate::verify::MediaKind;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn make(name: &str) -> Result<gst::Element, EngineError> {
    gst::ElementFactory::make(name)
        .build()
        .map_err(|_| EngineError::MissingElement(name.into()))
}

/// Minimum RTCP interval of call sessions, ns.
const RTCP_MIN_INTERVAL_NS: u64 = 1_000_000_000;

/// Session states (7.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Offer sent, waiting for the remote answer.
    Negotiating,
    /// Both SDPs known.
    Ready,
    /// Media flowing.
    Active,
    /// Not sending.
    Held,
    /// Ended at the client (peer gone, failure, BYE); waits for `End`.
    Ended,
}

/// The bound UDP sources of one media line.
struct Sockets {
    rtp: gst::Element,
    rtcp: gst::Element,
    port: u16,
}

/// Binds an RTP/RTCP `udpsrc` pair on `address`, trying even ports from
/// the shared cursor.
fn bind_pair(
    address: IpAddr,
    range: &std::ops::RangeInclusive<u16>,
) -> Result<Sockets, EngineError> {
    static CURSOR: AtomicU64 = AtomicU64::new(0);
    let start = u32::from(*range.start() & !1);
    let end = u32::from(*range.end());
    if end <= start {
        return Err(EngineError::Pipeline("empty call port range".into()));
    }
    let pairs = u64::from((end - start).div_ceil(2));
    let seed = u64::from(std::process::id()) * 7;
    for _ in 0..pairs.min(512) {
        let n = (CURSOR.fetch_add(1, Ordering::Relaxed) + seed) % pairs;
        let Ok(port) = u16::try_from(u64::from(start) + 2 * n) else {
            continue;
        };
        if u32::from(port) + 1 > end {
            continue;
        }
        // Probe without GStreamer first (cheap), then bind for real.
        let free = UdpSocket::bind((address, port)).is_ok()
            && UdpSocket::bind((address, port + 1)).is_ok();
        if !free {
            continue;
        }
        let mk = |p: u16| -> Result<gst::Element, EngineError> {
            let e = gst::ElementFactory::make("udpsrc")
                .property("address", address.to_string())
                .property("port", i32::from(p))
                .property("reuse", false)
                .build()
                .map_err(|_| EngineError::MissingElement("udpsrc".into()))?;
            e.set_state(gst::State::Ready)
                .map_err(|_| EngineError::Pipeline(format!("cannot bind {address}:{p}")))?;
            Ok(e)
        };
        let Ok(rtp) = mk(port) else { continue };
        match mk(port + 1) {
            Ok(rtcp) => return Ok(Sockets { rtp, rtcp, port }),
            Err(_) => {
                let _ = rtp.set_state(gst::State::Null);
            }
        }
    }
    Err(EngineError::Pipeline(
        "no free UDP port pair for the call".into(),
    ))
}

/// The running media of a started session.
struct Media {
    pipeline: gst::Pipeline,
    mic_volume: gst::Element,
    valves: Vec<gst::Element>,
    video_valve: Option<gst::Element>,
    dtmf: Option<gst::Element>,
    rtpbin: gst::Element,
}

/// One call media session.
pub(crate) struct Session {
    pub(crate) id: u32,
    config: Arc<EngineConfig>,
    events: EventHub,
    mic: Source,
    cam: Option<Source>,
    state: Mutex<State>,
    audio: Mutex<Option<Sockets>>,
    video: Mutex<Option<Sockets>>,
    remote: Mutex<Option<Remote>>,
    media: Mutex<Option<Media>>,
    muted: Mutex<MediaMask>,
    /// Time of the last packet from the peer, ms since `epoch`.
    last_rx: Arc<AtomicU64>,
    epoch: Instant,
    closed: AtomicBool,
    /// Counts at the last report, and the last report.
    stats: Mutex<(Counts, Option<CallStats>)>,
}

impl Session {
    /// A session for the guest's offer (`remote` given) or for a local
    /// offer; binds the ports and returns the local SDP.
    pub(crate) fn new(
        id: u32,
        config: Arc<EngineConfig>,
        events: EventHub,
        mic: Source,
        cam: Option<Source>,
        remote: Option<Remote>,
    ) -> Result<(Arc<Session>, String), EngineError> {
        let address = config.call.address;
        let want_video = match &remote {
            Some(r) => r.media(Kind::Video).is_some() && cam.is_some(),
            None => config.call.offer_video && cam.is_some(),
        };
        let audio = bind_pair(address, &config.call.ports)?;
        let video = if want_video {
            Some(bind_pair(address, &config.call.ports)?)
        } else {
            None
        };
        let ports = LocalPorts {
            audio: audio.port,
            video: video.as_ref().map(|v| v.port),
        };
        let sid = u64::from(id) << 32 | u64::from(std::process::id());
        let (state, local) = match &remote {
            Some(r) => (State::Ready, sdp::answer(address, sid, r, ports)),
            None => (State::Negotiating, sdp::offer(address, sid, ports)),
        };
        let s = Arc::new(Session {
            id,
            config,
            events,
            mic,
            cam,
            state: Mutex::new(state),
            audio: Mutex::new(Some(audio)),
            video: Mutex::new(video),
            remote: Mutex::new(remote),
            media: Mutex::new(None),
            muted: Mutex::new(MediaMask::empty()),
            last_rx: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
            closed: AtomicBool::new(false),
            stats: Mutex::default(),
        });
        Ok((s, local))
    }

    pub(crate) fn state(&self) -> State {
        *lock(&self.state)
    }

    /// Ends the call at the client: `CallEnded` once, media stopped; the
    /// session stays until the daemon's `End`.
    pub(crate) fn end(&self, status: Status, reason: &str) {
        {
            let mut st = lock(&self.state);
            if *st == State::Ended {
                return;
            }
            *st = State::Ended;
        }
        log::info!("call {} ended: {status:?} {reason}", self.id);
        self.send_stats();
        self.stop_media();
        self.events.report(Message::CallEnded {
            session: self.id,
            status,
            reason: reason.into(),
        });
    }

    /// The remote answer to our offer.
    pub(crate) fn set_remote(&self, remote: Remote) {
        let mut st = lock(&self.state);
        if *st != State::Negotiating {
            log::warn!("call {}: remote SDP in state {:?}, ignored", self.id, *st);
            return;
        }
        if remote.media(Kind::Video).is_none() {
            // The peer declined video: release its ports.
            if let Some(v) = lock(&self.video).take() {
                let _ = v.rtp.set_state(gst::State::Null);
                let _ = v.rtcp.set_state(gst::State::Null);
            }
        }
        *lock(&self.remote) = Some(remote);
        *st = State::Ready;
    }

    /// `Start`: builds and plays the pipeline.
    pub(crate) fn start(self: &Arc<Self>) {
        {
            let st = lock(&self.state);
            if *st != State::Ready {
                log::debug!("call {}: Start in state {:?}", self.id, *st);
                return;
            }
        }
        match self.build() {
            Ok(media) => {
                self.last_rx.store(self.now_ms(), Ordering::Release);
                let bus = media.pipeline.bus().expect("pipeline has a bus");
                let playing = media.pipeline.set_state(gst::State::Playing);
                *lock(&self.media) = Some(media);
                if playing.is_err() {
                    self.end(Status::Io, "call media pipeline cannot start");
                    return;
                }
                *lock(&self.state) = State::Active;
                self.apply_mute();
                let weak = Arc::downgrade(self);
                let spawned = std::thread::Builder::new()
                    .name(format!("call-{}", self.id))
                    .spawn(move || monitor(bus, weak));
                if spawned.is_err() {
                    self.end(Status::Io, "cannot start the call monitor");
                }
            }
            Err(e) => self.end(Status::Io, &format!("call media cannot start: {e}")),
        }
    }

    pub(crate) fn hold(&self, hold: bool) {
        let mut st = lock(&self.state);
        match (*st, hold) {
            (State::Active, true) => *st = State::Held,
            (State::Held, false) => {
                *st = State::Active;
                self.last_rx.store(self.now_ms(), Ordering::Release);
            }
            _ => return,
        }
        drop(st);
        if let Some(m) = lock(&self.media).as_ref() {
            for v in &m.valves {
                v.set_property("drop", hold);
            }
        }
        self.apply_mute();
    }

    pub(crate) fn mute(&self, mask: MediaMask, mute: bool) {
        {
            let mut m = lock(&self.muted);
            *m = if mute {
                MediaMask::from_bits_truncate(m.bits() | mask.bits())
            } else {
                MediaMask::from_bits_truncate(m.bits() & !mask.bits())
            };
        }
        self.apply_mute();
    }

    fn apply_mute(&self) {
        let mask = *lock(&self.muted);
        let held = self.state() == State::Held;
        if let Some(m) = lock(&self.media).as_ref() {
            m.mic_volume
                .set_property("mute", mask.contains(MediaMask::AUDIO));
            if let Some(v) = &m.video_valve {
                v.set_property("drop", held || mask.contains(MediaMask::VIDEO));
            }
        }
    }

    /// Sends one RFC 4733 event for `duration_ms`.
    pub(crate) fn dtmf(&self, event: u32, duration_ms: u32) {
        if self.state() != State::Active {
            return;
        }
        let Some(src) = lock(&self.media).as_ref().and_then(|m| m.dtmf.clone()) else {
            log::info!("call {}: the peer does not take telephone events", self.id);
            return;
        };
        let ev = move |start: bool| {
            let mut b = gst::Structure::builder("dtmf-event")
                .field("type", 1i32)
                .field("start", start);
            if start {
                b = b
                    .field("number", i32::try_from(event).unwrap_or(0))
                    .field("volume", 10i32);
            }
            gst::event::CustomUpstream::new(b.build())
        };
        // Upstream events reach rtpdtmfsrc through its source pad.
        let Some(pad) = src.static_pad("src") else {
            return;
        };
        if !pad.send_event(ev(true)) {
            log::warn!("call {}: DTMF start refused", self.id);
            return;
        }
        let weak = pad.downgrade();
        let d = Duration::from_millis(u64::from(duration_ms));
        let _ = std::thread::Builder::new()
            .name("call-dtmf".into())
            .spawn(move || {
                std::thread::sleep(d);
                if let Some(pad) = weak.upgrade() {
                    pad.send_event(ev(false));
                }
            });
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn stop_media(&self) {
        let media = lock(&self.media).take();
        if let Some(m) = media {
            let _ = m.pipeline.set_state(gst::State::Null);
        }
        for s in [lock(&self.audio).take(), lock(&self.video).take()]
            .into_iter()
            .flatten()
        {
            let _ = s.rtp.set_state(gst::State::Null);
            let _ = s.rtcp.set_state(gst::State::Null);
        }
    }

    /// `End` from the daemon or engine shutdown: everything stops, no
    /// `CallEnded`.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        *lock(&self.state) = State::Ended;
        self.stop_media();
    }

    /// The remote party's media goes to the sinks of `sinks`' lists (the
    /// video one in a window of its own: calls have no geometry).
    fn sink(&self, video: bool) -> Result<gst::Element, EngineError> {
        match self.config.output {
            OutputMode::Auto => {
                let kind = if video {
                    MediaKind::Video
                } else {
                    MediaKind::Audio
                };
                Ok(crate::sinks::choose_sink(kind)?.element)
            }
            OutputMode::Headless | OutputMode::Verify => gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()
                .map_err(|_| EngineError::MissingElement("fakesink".into())),
        }
    }

    fn udpsink(&self, addr: IpAddr, port: u16) -> Result<gst::Element, EngineError> {
        gst::ElementFactory::make("udpsink")
            .property("host", addr.to_string())
            .property("port", i32::from(port))
            .property("sync", false)
            .property("async", false)
            .build()
            .map_err(|_| EngineError::MissingElement("udpsink".into()))
    }

    /// Links one RTP session (`n`) of `rtpbin` to the network and returns
    /// its send valve.
    fn wire_session(
        &self,
        pipeline: &gst::Pipeline,
        rtpbin: &gst::Element,
        n: u32,
        socks: &Sockets,
        remote: &sdp::RemoteMedia,
        send: &gst::Element,
    ) -> Result<gst::Element, EngineError> {
        let valve = make("valve")?;
        let rtp_out = self.udpsink(remote.address, remote.rtp_port)?;
        let rtcp_out = self.udpsink(remote.address, remote.rtcp_port)?;
        pipeline.add_many([&valve, &rtp_out, &rtcp_out, &socks.rtp, &socks.rtcp])?;
        send.link(&valve)?;
        let link = |src: &gst::Element, sp: &str, dst: &gst::Element, dp: &str| {
            src.link_pads(Some(sp), dst, Some(dp))
                .map_err(|e| EngineError::Pipeline(format!("{sp} -> {dp}: {e}")))
        };
        link(&valve, "src", rtpbin, &format!("send_rtp_sink_{n}"))?;
        link(rtpbin, &format!("send_rtp_src_{n}"), &rtp_out, "sink")?;
        link(rtpbin, &format!("send_rtcp_src_{n}"), &rtcp_out, "sink")?;
        link(&socks.rtp, "src", rtpbin, &format!("recv_rtp_sink_{n}"))?;
        link(&socks.rtcp, "src", rtpbin, &format!("recv_rtcp_sink_{n}"))?;
        // RTCP every second or so (RFC 3550's 5 s minimum is for large
        // sessions; a two-party call wants its round trip soon).
        if let Some(session) =
            rtpbin.emit_by_name::<Option<glib::Object>>("get-internal-session", &[&n])
        {
            session.set_property("rtcp-min-interval", RTCP_MIN_INTERVAL_NS);
        }
        for src in [&socks.rtp, &socks.rtcp] {
            let last = self.last_rx.clone();
            let epoch = self.epoch;
            if let Some(pad) = src.static_pad("src") {
                pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    let ms = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
                    last.store(ms, Ordering::Release);
                    gst::PadProbeReturn::Ok
                });
            }
        }
        Ok(valve)
    }

    /// Builds the pipeline; on failure everything added to it (the bound
    /// sockets included) is shut down.
    fn build(self: &Arc<Self>) -> Result<Media, EngineError> {
        let pipeline = gst::Pipeline::with_name(&format!("call-{}", self.id));
        let media = self.populate(&pipeline);
        if media.is_err() {
            let _ = pipeline.set_state(gst::State::Null);
        }
        media
    }

    fn populate(self: &Arc<Self>, pipeline: &gst::Pipeline) -> Result<Media, EngineError> {
        let remote = lock(&self.remote)
            .clone()
            .ok_or_else(|| EngineError::Pipeline("no remote SDP".into()))?;
        let ra = remote
            .media(Kind::Audio)
            .cloned()
            .ok_or_else(|| EngineError::Pipeline("no remote audio".into()))?;
        let rtpbin = gst::ElementFactory::make("rtpbin")
            .property("latency", stats::JITTER_BUFFER_MS)
            .build()
            .map_err(|_| EngineError::MissingElement("rtpbin".into()))?;
        pipeline.add(&rtpbin)?;

        // Payload type -> caps, for the receive side.
        let rv = remote.media(Kind::Video).cloned();
        let (apt, dtmf, vpt) = (ra.pt, ra.dtmf, rv.as_ref().map(|v| v.pt));
        rtpbin.connect("request-pt-map", false, move |args| {
            let pt = args.get(2).and_then(|v| v.get::<u32>().ok())?;
            let caps = |media: &str, clock: u32, name: &str| {
                gst::Caps::builder("application/x-rtp")
                    .field("media", media)
                    .field("clock-rate", i32::try_from(clock).unwrap_or(0))
                    .field("encoding-name", name)
                    .field("payload", i32::try_from(pt).unwrap_or(0))
                    .build()
            };
            let c = if pt == u32::from(apt) {
                caps("audio", 48000, "OPUS")
            } else if let Some((_, clock)) = dtmf.filter(|(d, _)| pt == u32::from(*d)) {
                caps("audio", clock, "TELEPHONE-EVENT")
            } else if vpt.is_some_and(|v| pt == u32::from(v)) {
                caps("video", 90000, "VP8")
            } else {
                return None;
            };
            Some(c.to_value())
        });

        // Audio send path.
        let mic = self.mic.make_element()?;
        let conv = make("audioconvert")?;
        let resample = make("audioresample")?;
        let volume = make("volume")?;
        let enc = gst::ElementFactory::make("opusenc")
            .property("bitrate", 32000i32)
            .property_from_str("frame-size", "20")
            .build()
            .map_err(|_| EngineError::MissingElement("opusenc".into()))?;
        let pay = gst::ElementFactory::make("rtpopuspay")
            .property("pt", u32::from(ra.pt))
            .build()
            .map_err(|_| EngineError::MissingElement("rtpopuspay".into()))?;
        let mux = make("rtpdtmfmux")?;
        pipeline.add_many([&mic, &conv, &resample, &volume, &enc, &pay, &mux])?;
        gst::Element::link_many([&mic, &conv, &resample, &volume, &enc, &pay])?;
        pay.link(&mux)?;
        let dtmf_src = match ra.dtmf {
            Some((pt, 48000)) => {
                let src = gst::ElementFactory::make("rtpdtmfsrc")
                    .property("pt", u32::from(pt))
                    .property("clock-rate", 48000u32)
                    .build()
                    .map_err(|_| EngineError::MissingElement("rtpdtmfsrc".into()))?;
                pipeline.add(&src)?;
                let sinkpad = mux
                    .request_pad_simple("priority_sink_%u")
                    .ok_or_else(|| EngineError::Pipeline("rtpdtmfmux priority pad".into()))?;
                src.static_pad("src")
                    .ok_or_else(|| EngineError::Pipeline("rtpdtmfsrc pad".into()))?
                    .link(&sinkpad)
                    .map_err(|e| EngineError::Pipeline(format!("dtmf link: {e:?}")))?;
                Some(src)
            }
            Some((_, clock)) => {
                log::info!(
                    "call {}: telephone-event/{clock} differs from Opus' 48000: no DTMF",
                    self.id
                );
                None
            }
            None => None,
        };
        let asocks = lock(&self.audio)
            .take()
            .ok_or_else(|| EngineError::Pipeline("audio sockets gone".into()))?;
        let mut valves = vec![self.wire_session(pipeline, &rtpbin, 0, &asocks, &ra, &mux)?];

        // Video send path.
        let mut video_valve = None;
        let vsocks = lock(&self.video).take();
        if let (Some(rv), Some(vsocks), Some(cam)) = (&rv, vsocks, &self.cam) {
            let src = cam.make_element()?;
            let conv = make("videoconvert")?;
            let scale = make("videoscale")?;
            let filter = gst::ElementFactory::make("capsfilter")
                .property(
                    "caps",
                    gst::Caps::builder("video/x-raw")
                        .field("width", 320i32)
                        .field("height", 240i32)
                        .build(),
                )
                .build()
                .map_err(|_| EngineError::MissingElement("capsfilter".into()))?;
            let enc = gst::ElementFactory::make("vp8enc")
                .property("deadline", 1i64)
                .property("target-bitrate", 500_000i32)
                .property("lag-in-frames", 0i32)
                .property("cpu-used", 8i32)
                .property("keyframe-max-dist", 60i32)
                .build()
                .map_err(|_| EngineError::MissingElement("vp8enc".into()))?;
            let pay = gst::ElementFactory::make("rtpvp8pay")
                .property("pt", u32::from(rv.pt))
                .build()
                .map_err(|_| EngineError::MissingElement("rtpvp8pay".into()))?;
            pipeline.add_many([&src, &conv, &scale, &filter, &enc, &pay])?;
            gst::Element::link_many([&src, &conv, &scale, &filter, &enc, &pay])?;
            let v = self.wire_session(pipeline, &rtpbin, 1, &vsocks, rv, &pay)?;
            video_valve = Some(v.clone());
            valves.push(v);
        }

        // Receive side: one decoder chain per payload type that appears.
        let weak = Arc::downgrade(self);
        let pw = pipeline.downgrade();
        rtpbin.connect_pad_added(move |_, pad| {
            let name = pad.name();
            if !name.starts_with("recv_rtp_src_") {
                return;
            }
            let (Some(s), Some(p)) = (weak.upgrade(), pw.upgrade()) else {
                return;
            };
            if let Err(e) = s.add_receiver(&p, pad, apt, dtmf.map(|d| d.0), vpt) {
                log::warn!("call {}: cannot receive {name}: {e}", s.id);
            }
        });
        let weak = Arc::downgrade(self);
        rtpbin.connect("on-bye-ssrc", false, move |_| {
            if let Some(s) = weak.upgrade() {
                // Not from a streaming thread's lock: end on another thread.
                let _ = std::thread::Builder::new()
                    .name("call-bye".into())
                    .spawn(move || s.end(Status::Ok, "the peer hung up (RTCP BYE)"));
            }
            None
        });

        Ok(Media {
            pipeline: pipeline.clone(),
            mic_volume: volume,
            valves,
            video_valve,
            dtmf: dtmf_src,
            rtpbin,
        })
    }

    fn add_receiver(
        &self,
        pipeline: &gst::Pipeline,
        pad: &gst::Pad,
        apt: u8,
        dpt: Option<u8>,
        vpt: Option<u8>,
    ) -> Result<(), EngineError> {
        let pt = pad
            .name()
            .rsplit('_')
            .next()
            .and_then(|p| p.parse::<u8>().ok());
        let chain: Vec<gst::Element> = if pt == Some(apt) {
            vec![
                make("rtpopusdepay")?,
                make("opusdec")?,
                make("audioconvert")?,
                make("audioresample")?,
                self.sink(false)?,
            ]
        } else if pt.is_some() && pt == dpt {
            vec![make("rtpdtmfdepay")?, self.sink(false)?]
        } else if pt.is_some() && pt == vpt {
            vec![
                make("rtpvp8depay")?,
                make("vp8dec")?,
                make("videoconvert")?,
                self.sink(true)?,
            ]
        } else {
            vec![make("fakesink")?]
        };
        pipeline.add_many(&chain)?;
        gst::Element::link_many(&chain)?;
        for e in &chain {
            e.sync_state_with_parent()?;
        }
        let sink = chain[0]
            .static_pad("sink")
            .ok_or_else(|| EngineError::Pipeline("no sink pad".into()))?;
        pad.link(&sink)
            .map_err(|e| EngineError::Pipeline(format!("{e:?}")))?;
        Ok(())
    }

    /// Counters of the received audio, jitter (us), RTT (us).
    fn read_stats(&self) -> Option<(Counts, u32, u32)> {
        let rtpbin = lock(&self.media).as_ref()?.rtpbin.clone();
        let session =
            rtpbin.emit_by_name::<Option<glib::Object>>("get-internal-session", &[&0u32])?;
        let st = session.property::<gst::Structure>("stats");
        let list = st.get::<glib::ValueArray>("source-stats").ok()?;
        let (mut counts, mut jitter, mut rtt) = (Counts::default(), 0u32, 0u32);
        let mut best = 0u64;
        for v in list.iter() {
            let Ok(s) = v.get::<gst::Structure>() else {
                continue;
            };
            // A receiver report block about our stream is kept with the
            // remote source that sent it.
            if s.get::<bool>("have-rb").unwrap_or(false) {
                let r = s.get::<u32>("rb-round-trip").unwrap_or(0);
                if r != 0 {
                    rtt = stats::ntp_short_to_us(r);
                }
            }
            if s.get::<bool>("internal").unwrap_or(false) {
                continue;
            }
            let received = s.get::<u64>("packets-received").unwrap_or(0);
            let lost = s.get::<i32>("packets-lost").unwrap_or(0);
            counts.received += received;
            counts.lost += u64::try_from(lost.max(0)).unwrap_or(0);
            if received >= best {
                best = received;
                let clock = s.get::<i32>("clock-rate").unwrap_or(48000);
                let j = s.get::<u32>("jitter").unwrap_or(0);
                jitter = stats::clock_to_us(u64::from(j), u32::try_from(clock).unwrap_or(0));
            }
        }
        Some((counts, jitter, rtt))
    }

    /// Sends `CallStats` with the current values.
    pub(crate) fn send_stats(&self) {
        let Some((counts, jitter_us, rtt_us)) = self.read_stats() else {
            return;
        };
        let report = {
            let mut last = lock(&self.stats);
            let mos_x100 = if counts.received == 0 {
                0
            } else {
                stats::mos_x100(stats::loss_pct(last.0, counts), jitter_us, rtt_us)
            };
            let report = CallStats {
                session: self.id,
                jitter_us,
                packets_lost: counts.lost,
                packets_received: counts.received,
                rtt_us,
                mos_x100,
            };
            *last = (counts, Some(report.clone()));
            report
        };
        self.events.report(Message::CallStats(report));
    }

    /// The running pipeline, for diagnostics and tests.
    pub(crate) fn pipeline(&self) -> Option<gst::Pipeline> {
        lock(&self.media).as_ref().map(|m| m.pipeline.clone())
    }

    /// The last statistics reported (all zero before the first report).
    pub(crate) fn last_stats(&self) -> CallStats {
        lock(&self.stats).1.clone().unwrap_or(CallStats {
            session: self.id,
            jitter_us: 0,
            packets_lost: 0,
            packets_received: 0,
            rtt_us: 0,
            mos_x100: 0,
        })
    }

    fn on_message(&self, msg: &gst::Message) {
        use gst::MessageView as V;
        match msg.view() {
            V::Error(e) => {
                self.end(Status::Io, &format!("call media failed: {}", e.error()));
            }
            V::Warning(w) => log::warn!("call {}: {}", self.id, w.error()),
            V::Element(el) => {
                let Some(s) = el.structure() else { return };
                if s.name() == "dtmf-event"
                    && let Ok(n) = s.get::<i32>("number")
                    && let Ok(event) = u32::try_from(n)
                    && event <= mediaredir_proto::wire::MAX_DTMF_EVENT
                {
                    self.events.report(Message::CallDtmfReceived {
                        session: self.id,
                        event,
                    });
                }
            }
            _ => {}
        }
    }
}

/// Watches the bus, sends statistics, detects a vanished peer.
fn monitor(bus: gst::Bus, weak: Weak<Session>) {
    let mut last_stats = Instant::now();
    loop {
        let msg = bus.timed_pop(gst::ClockTime::from_mseconds(100));
        let Some(s) = weak.upgrade() else { return };
        if s.closed.load(Ordering::Acquire) {
            return;
        }
        if let Some(msg) = msg {
            s.on_message(&msg);
        }
        let state = s.state();
        if state == State::Ended {
            return;
        }
        if last_stats.elapsed() >= s.config.call.stats_interval {
            last_stats = Instant::now();
            if matches!(state, State::Active | State::Held) {
                s.send_stats();
            }
        }
        if state == State::Active {
            let idle = s.now_ms().saturating_sub(s.last_rx.load(Ordering::Acquire));
            let timeout = u64::try_from(s.config.call.peer_timeout.as_millis()).unwrap_or(u64::MAX);
            if idle > timeout {
                s.end(
                    Status::Io,
                    &format!("no RTP or RTCP from the peer for {} ms", idle),
                );
                return;
            }
        }
    }
}

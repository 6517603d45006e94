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
//! The audio sinks are `fakesink`s in the headless modes, else the first
//! usable sink of the audio list in `crate::sinks` (never ranked). The
//! video sink is always a `fakesink`: the engine opens no window.
//!
//! A monitor thread (holding only a weak reference) watches the bus
//! (errors end the call with `IO`; received DTMF becomes
//! `CallDtmfReceived`; an RTCP BYE from the peer ends the call with `OK`),
//! sends `CallStats` every [`crate::CallConfig::stats_interval`], and ends
//! the call with `IO` when nothing (RTP or RTCP) arrived from the peer for
//! [`crate::CallConfig::peer_timeout`] while the call is active.
//!
//! Here: the session's state and what the daemon's requests do to it; the
//! ports in [`ports`], the pipeline in [`pipeline`], the monitor thread and
//! statistics in [`monitor`](mod@monitor).

mod monitor;
mod pipeline;
mod ports;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{CallStats, MediaMask, Message};
use mediaredir_timer::Timer;

use super::sdp::{self, Kind, LocalPorts, Remote};
use super::stats::Counts;
use crate::capture::sources::Source;
use crate::config::EngineConfig;
use crate::error::EngineError;
use crate::events::EventHub;
use monitor::monitor;
use pipeline::Media;
use ports::{Sockets, bind_pair};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

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
    /// The engine's timer, shared by its sessions (DTMF tone ends, ending
    /// on RTCP BYE off the streaming thread).
    timer: Arc<Timer>,
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
        timer: Arc<Timer>,
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
            timer,
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
        let scheduled = self.timer.after(d, move || {
            if let Some(pad) = weak.upgrade() {
                pad.send_event(ev(false));
            }
        });
        if let Err(e) = scheduled {
            log::warn!("call {}: DTMF tone not ended: {e}", self.id);
        }
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

    /// The running pipeline, for diagnostics and tests.
    pub(crate) fn pipeline(&self) -> Option<gst::Pipeline> {
        lock(&self.media).as_ref().map(|m| m.pipeline.clone())
    }
}

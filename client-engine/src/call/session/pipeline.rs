//! The started session's `rtpbin` pipeline (see the diagram in
//! [`super`]): the microphone's (and camera's) send paths, one RTP session
//! per media line wired to the bound sockets and the peer's addresses, and
//! a decoder chain for each payload type the peer sends. Also what ends the
//! call from inside the pipeline: the peer's RTCP BYE.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use mediaredir_proto::status::Status;

use super::ports::Sockets;
use super::{Session, lock};
use crate::call::sdp::{self, Kind};
use crate::call::stats;
use crate::config::OutputMode;
use crate::error::EngineError;

/// Minimum RTCP interval of call sessions, ns.
const RTCP_MIN_INTERVAL_NS: u64 = 1_000_000_000;

fn make(name: &str) -> Result<gst::Element, EngineError> {
    gst::ElementFactory::make(name)
        .build()
        .map_err(|_| EngineError::MissingElement(name.into()))
}

/// The running media of a started session.
pub(super) struct Media {
    pub(super) pipeline: gst::Pipeline,
    pub(super) mic_volume: gst::Element,
    pub(super) valves: Vec<gst::Element>,
    pub(super) video_valve: Option<gst::Element>,
    pub(super) dtmf: Option<gst::Element>,
    pub(super) rtpbin: gst::Element,
}

impl Session {
    /// The remote party's audio goes to a sink of `sinks`' audio list in
    /// Auto mode; its video, and everything in the headless modes, to
    /// `fakesink` (the engine opens no window; calls are not verified).
    fn sink(&self, video: bool) -> Result<gst::Element, EngineError> {
        if self.config.output == OutputMode::Auto && !video {
            return Ok(crate::sinks::choose_audio_sink()?);
        }
        gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
            .map_err(|_| EngineError::MissingElement("fakesink".into()))
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
    pub(super) fn build(self: &Arc<Self>) -> Result<Media, EngineError> {
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
                // Not from a streaming thread's lock: end on a thread of
                // its own (ending stops the pipeline, which blocks: not a
                // job for the engine's timer).
                let spawned = std::thread::Builder::new()
                    .name("call-bye".into())
                    .spawn(move || s.end(Status::Ok, "the peer hung up (RTCP BYE)"));
                if let Err(e) = spawned {
                    log::warn!("call: cannot end on RTCP BYE: {e}");
                }
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
}

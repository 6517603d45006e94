//! An independent RTP endpoint for call tests: its own `rtpbin` pipeline
//! with UDP sockets on loopback, an 880 Hz tone, RFC 4733 DTMF and
//! optionally VP8 video; it records what it receives (decoded audio, RTP
//! packets, video frames, DTMF events).

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client_engine::call::sdp::{self, Kind};
use client_engine::gst;
use client_engine::gst::glib;
use client_engine::gst::prelude::*;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The peer's tone; the engine's test microphone plays 440 Hz.
pub const PEER_HZ: f64 = 880.0;

/// Binds an RTP/RTCP udpsrc pair for the peer (ports 50000..).
fn bind_pair() -> (gst::Element, gst::Element, u16) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) + u64::from(std::process::id() % 1000) * 4;
        let port = 50000 + u16::try_from((n * 2) % 10000).unwrap();
        if UdpSocket::bind((LO, port)).is_err() || UdpSocket::bind((LO, port + 1)).is_err() {
            continue;
        }
        let mk = |p: u16| {
            let e = gst::ElementFactory::make("udpsrc")
                .property("address", "127.0.0.1")
                .property("port", i32::from(p))
                .property("reuse", false)
                .build()
                .unwrap();
            e.set_state(gst::State::Ready).map(|_| e)
        };
        if let (Ok(a), Ok(b)) = (mk(port), mk(port + 1)) {
            return (a, b, port);
        }
    }
}

/// Payload types the peer uses in its own offers (different from the
/// engine's, to check the mapping).
pub const PEER_OPUS: u8 = 111;
pub const PEER_DTMF: u8 = 126;
pub const PEER_VP8: u8 = 100;

/// An independent RTP endpoint.
pub struct Peer {
    pub pipeline: gst::Pipeline,
    pub rtpbin: gst::Element,
    pub audio: (gst::Element, gst::Element, u16),
    pub video: Option<(gst::Element, gst::Element, u16)>,
    pub pcm: Arc<Mutex<Vec<f32>>>,
    pub rtp_in: Arc<AtomicU64>,
    pub frames: Arc<AtomicU64>,
    pub dtmf_in: Arc<Mutex<Vec<i32>>>,
    pub dtmf_src: Mutex<Option<gst::Element>>,
    pub audio_src: Mutex<Option<gst::Element>>,
}

impl Peer {
    pub fn new(video: bool) -> Arc<Peer> {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let rtpbin = gst::ElementFactory::make("rtpbin")
            .property("latency", 60u32)
            .build()
            .unwrap();
        pipeline.add(&rtpbin).unwrap();
        Arc::new(Peer {
            pipeline,
            rtpbin,
            audio: bind_pair(),
            video: video.then(bind_pair),
            pcm: Arc::default(),
            rtp_in: Arc::default(),
            frames: Arc::default(),
            dtmf_in: Arc::default(),
            dtmf_src: Mutex::new(None),
            audio_src: Mutex::new(None),
        })
    }

    pub fn sdp(&self, opus: u8, dtmf: u8, vp8: u8) -> String {
        let mut s = format!(
            "v=0\r\no=- 99 1 IN IP4 127.0.0.1\r\ns=peer\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {a} RTP/AVP {opus} {dtmf}\r\na=rtpmap:{opus} opus/48000/2\r\n\
             a=rtpmap:{dtmf} telephone-event/48000\r\na=rtcp:{r}\r\n",
            a = self.audio.2,
            r = self.audio.2 + 1
        );
        if let Some(v) = &self.video {
            s += &format!(
                "m=video {p} RTP/AVP {vp8}\r\na=rtpmap:{vp8} VP8/90000\r\n",
                p = v.2
            );
        }
        s
    }

    /// Starts media with the engine's SDP; `pts` are the payload types
    /// of the negotiation (opus, dtmf, vp8).
    pub fn start(self: &Arc<Self>, engine_sdp: &str, pts: (u8, u8, u8)) {
        let remote = sdp::parse(engine_sdp, true).unwrap();
        let (opus, dtmf, vp8) = pts;
        let p = &self.pipeline;
        let rtpbin = &self.rtpbin;
        rtpbin.connect("request-pt-map", false, move |args| {
            let pt = args[2].get::<u32>().unwrap();
            let (media, clock, name) = if pt == u32::from(opus) {
                ("audio", 48000, "OPUS")
            } else if pt == u32::from(dtmf) {
                ("audio", 48000, "TELEPHONE-EVENT")
            } else if pt == u32::from(vp8) {
                ("video", 90000, "VP8")
            } else {
                return None;
            };
            Some(
                gst::Caps::builder("application/x-rtp")
                    .field("media", media)
                    .field("clock-rate", clock)
                    .field("encoding-name", name)
                    .field("payload", i32::try_from(pt).unwrap())
                    .build()
                    .to_value(),
            )
        });
        let weak = Arc::downgrade(self);
        rtpbin.connect_pad_added(move |_, pad| {
            let Some(me) = weak.upgrade() else { return };
            if !pad.name().starts_with("recv_rtp_src_") {
                return;
            }
            let pt: u8 = pad.name().rsplit('_').next().unwrap().parse().unwrap();
            let desc = if pt == opus {
                "rtpopusdepay ! opusdec ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,channels=1,rate=48000 ! appsink name=a sync=false"
            } else if pt == dtmf {
                "rtpdtmfdepay ! fakesink sync=false async=false"
            } else {
                "rtpvp8depay ! vp8dec ! appsink name=v sync=false"
            };
            let bin = gst::parse::bin_from_description(desc, true).unwrap();
            if let Some(a) = bin.by_name("a") {
                let pcm = me.pcm.clone();
                a.dynamic_cast::<gstreamer_app::AppSink>().unwrap().set_callbacks(
                    gstreamer_app::AppSinkCallbacks::builder()
                        .new_sample(move |s| {
                            let smp = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                            let b = smp.buffer().unwrap().map_readable().unwrap();
                            pcm.lock().unwrap().extend(
                                b.chunks_exact(4)
                                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                            );
                            Ok(gst::FlowSuccess::Ok)
                        })
                        .build(),
                );
            }
            if let Some(v) = bin.by_name("v") {
                let frames = me.frames.clone();
                v.dynamic_cast::<gstreamer_app::AppSink>().unwrap().set_callbacks(
                    gstreamer_app::AppSinkCallbacks::builder()
                        .new_sample(move |s| {
                            let _ = s.pull_sample();
                            frames.fetch_add(1, Ordering::Relaxed);
                            Ok(gst::FlowSuccess::Ok)
                        })
                        .build(),
                );
            }
            me.pipeline.add(&bin).unwrap();
            bin.sync_state_with_parent().unwrap();
            pad.link(&bin.static_pad("sink").unwrap()).unwrap();
        });

        // Audio: tone + DTMF -> rtpbin session 0 -> the engine.
        let ra = remote.media(Kind::Audio).unwrap();
        let send = gst::parse::bin_from_description(
            &format!(
                "audiotestsrc name=tone is-live=true freq={PEER_HZ} volume=0.5 ! audioconvert ! audioresample \
                 ! opusenc frame-size=20 ! rtpopuspay pt={opus} ! rtpdtmfmux name=mux \
                 rtpdtmfsrc name=dtmf pt={dtmf} clock-rate=48000 ! mux.priority_sink_0"
            ),
            true,
        )
        .unwrap();
        *self.dtmf_src.lock().unwrap() = send.by_name("dtmf");
        *self.audio_src.lock().unwrap() = send.by_name("tone");
        p.add(&send).unwrap();
        self.wire(0, &send, &self.audio, ra.address, ra.rtp_port, ra.rtcp_port);
        if let (Some(v), Some(rv)) = (&self.video, remote.media(Kind::Video)) {
            let send = gst::parse::bin_from_description(
                &format!(
                    "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=15/1 \
                     ! vp8enc deadline=1 lag-in-frames=0 ! rtpvp8pay pt={vp8}"
                ),
                true,
            )
            .unwrap();
            p.add(&send).unwrap();
            self.wire(1, &send, v, rv.address, rv.rtp_port, rv.rtcp_port);
        }
        p.set_state(gst::State::Playing).unwrap();
    }

    fn wire(
        &self,
        n: u32,
        send: &gst::Bin,
        socks: &(gst::Element, gst::Element, u16),
        addr: IpAddr,
        rtp: u16,
        rtcp: u16,
    ) {
        let p = &self.pipeline;
        // Described as the rest of the peer is, not built as the engine
        // builds its own: the peer stays independent of the engine's code.
        let out = |port: u16| {
            gst::parse::launch(&format!(
                "udpsink host={addr} port={port} sync=false async=false"
            ))
            .unwrap()
        };
        let (o1, o2) = (out(rtp), out(rtcp));
        p.add_many([&o1, &o2, &socks.0, &socks.1]).unwrap();
        let rb = &self.rtpbin;
        send.link_pads(Some("src"), rb, Some(&format!("send_rtp_sink_{n}")))
            .unwrap();
        rb.link_pads(Some(&format!("send_rtp_src_{n}")), &o1, Some("sink"))
            .unwrap();
        rb.link_pads(Some(&format!("send_rtcp_src_{n}")), &o2, Some("sink"))
            .unwrap();
        socks
            .0
            .link_pads(Some("src"), rb, Some(&format!("recv_rtp_sink_{n}")))
            .unwrap();
        socks
            .1
            .link_pads(Some("src"), rb, Some(&format!("recv_rtcp_sink_{n}")))
            .unwrap();
        if n == 0 {
            let count = self.rtp_in.clone();
            socks
                .0
                .static_pad("src")
                .unwrap()
                .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    count.fetch_add(1, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                });
        }
        let session = rb
            .emit_by_name::<Option<glib::Object>>("get-internal-session", &[&n])
            .unwrap();
        session.set_property("rtcp-min-interval", 1_000_000_000u64);
    }

    /// Decoded audio from `from` (sample index) on.
    pub fn pcm_since(&self, from: usize) -> Vec<f32> {
        let pcm = self.pcm.lock().unwrap();
        pcm[from.min(pcm.len())..].to_vec()
    }

    pub fn dtmf(&self, number: i32, ms: u64) {
        let src = self.dtmf_src.lock().unwrap().clone().unwrap();
        let ev = |start: bool| {
            let mut b = gst::Structure::builder("dtmf-event")
                .field("type", 1i32)
                .field("start", start);
            if start {
                b = b.field("number", number).field("volume", 10i32);
            }
            gst::event::CustomUpstream::new(b.build())
        };
        let pad = src.static_pad("src").unwrap();
        assert!(pad.send_event(ev(true)));
        std::thread::sleep(Duration::from_millis(ms));
        pad.send_event(ev(false));
    }

    pub fn dtmf_received(&self) -> Vec<i32> {
        let bus = self.pipeline.bus().unwrap();
        while let Some(m) = bus.pop() {
            if let gst::MessageView::Element(e) = m.view()
                && let Some(s) = e.structure()
                && s.name() == "dtmf-event"
            {
                self.dtmf_in
                    .lock()
                    .unwrap()
                    .push(s.get::<i32>("number").unwrap());
            }
        }
        self.dtmf_in.lock().unwrap().clone()
    }

    pub fn stop(&self) {
        self.pipeline.set_state(gst::State::Null).unwrap();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        for s in [Some(&self.audio), self.video.as_ref()]
            .into_iter()
            .flatten()
        {
            let _ = s.0.set_state(gst::State::Null);
            let _ = s.1.set_state(gst::State::Null);
        }
    }
}

//! Call media sessions (spec 7.12) against an independent GStreamer RTP
//! peer on loopback: the engine is driven with the daemon's messages
//! (CallCreate, CallRemoteSdp, CallControl) and its answers (CallLocalSdp,
//! CallStats, CallEnded, CallDtmfReceived) are checked; the peer checks
//! what it receives (the engine's 440 Hz tone, VP8 frames, DTMF).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client_engine::call::sdp;
use client_engine::gst;
use client_engine::gst::prelude::*;
use client_engine::wire::{CallAction, MediaMask, Message, Status};
use client_engine::{Engine, EngineConfig, OutputMode};
use common::peer::{PEER_DTMF, PEER_HZ, PEER_OPUS, PEER_VP8, Peer};
use common::{Collector, tone};
use test_support::until;

fn config(offer_video: bool) -> EngineConfig {
    let mut c = EngineConfig::with_output(OutputMode::Headless);
    c.call.stats_interval = Duration::from_millis(500);
    c.call.peer_timeout = Duration::from_secs(2);
    c.call.offer_video = offer_video;
    c
}

fn local_sdp(events: &Collector, session: u32) -> String {
    assert!(
        events.wait(Duration::from_secs(10), |m| m.iter().any(|m| matches!(
            m,
            Message::CallLocalSdp { session: s, .. } | Message::CallEnded { session: s, .. } if *s == session
        ))),
        "no answer to CallCreate"
    );
    events
        .all()
        .into_iter()
        .find_map(|m| match m {
            Message::CallLocalSdp { session: s, sdp } if s == session => Some(sdp),
            _ => None,
        })
        .unwrap_or_else(|| panic!("CallCreate refused: {:?}", events.all()))
}

fn ended(events: &Collector, session: u32) -> Option<(Status, String)> {
    events.all().into_iter().find_map(|m| match m {
        Message::CallEnded {
            session: s,
            status,
            reason,
        } if s == session => Some((status, reason)),
        _ => None,
    })
}

fn stats(events: &Collector, session: u32) -> Vec<client_engine::wire::CallStats> {
    events
        .all()
        .into_iter()
        .filter_map(|m| match m {
            Message::CallStats(s) if s.session == session => Some(s),
            _ => None,
        })
        .collect()
}

/// Taps the output of the first `factory` element of a call's pipeline
/// (once it exists): counts buffers and keeps the first channel of S16
/// audio as f32.
fn tap(engine: &Engine, session: u32, factory: &str) -> (Arc<AtomicU64>, Arc<Mutex<Vec<f32>>>) {
    let (count, pcm) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let found = until(20, || {
        let Some(p) = engine.call_pipeline(session) else {
            return false;
        };
        let Some(e) = p
            .iterate_recurse()
            .into_iter()
            .flatten()
            .find(|e| e.factory().is_some_and(|f| f.name() == factory))
        else {
            return false;
        };
        let pad = e.static_pad("src").unwrap();
        let (c, v) = (count.clone(), pcm.clone());
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            c.fetch_add(1, Ordering::Relaxed);
            let channels = pad
                .current_caps()
                .and_then(|caps| {
                    caps.structure(0)
                        .and_then(|s| s.get::<i32>("channels").ok())
                })
                .unwrap_or(0);
            if let (Some(b), Ok(ch)) = (info.buffer(), usize::try_from(channels))
                && ch > 0
            {
                let map = b.map_readable().unwrap();
                v.lock().unwrap().extend(
                    map.chunks_exact(2 * ch)
                        .map(|f| f32::from(i16::from_le_bytes([f[0], f[1]])) / 32768.0),
                );
            }
            gst::PadProbeReturn::Ok
        });
        true
    });
    assert!(found, "no {factory} in call {session}");
    (count, pcm)
}

fn control(engine: &Engine, session: u32, action: CallAction) {
    engine.handle(&Message::CallControl { session, action });
}

#[test]
fn peer_offers_engine_answers_audio_dtmf_hold_mute_bye() {
    let engine = Engine::new(config(false)).unwrap();
    let events = Collector::new();
    engine.set_events(events.clone());
    let peer = Peer::new(false);
    let offer = peer.sdp(PEER_OPUS, PEER_DTMF, PEER_VP8);
    engine.handle(&Message::CallCreate {
        session: 1,
        sdp: offer,
    });
    let answer = local_sdp(&events, 1);
    eprintln!("engine answer:\n{answer}");
    assert!(
        answer.contains(&format!("RTP/AVP {PEER_OPUS} {PEER_DTMF}")),
        "{answer}"
    );
    peer.start(&answer, (PEER_OPUS, PEER_DTMF, PEER_VP8));
    control(&engine, 1, CallAction::Start);

    // Opus both ways: the peer hears the engine's 440 Hz microphone.
    assert!(
        until(20, || peer.pcm_since(0).len() > 48000 * 2),
        "peer got no audio"
    );
    let heard = peer.pcm_since(9600);
    assert!(
        tone::dominant(&heard, 48000.0, 440.0),
        "peer did not hear 440 Hz"
    );
    // The engine decodes the peer's 880 Hz tone.
    let (_, engine_pcm) = tap(&engine, 1, "opusdec");
    assert!(until(20, || engine_pcm.lock().unwrap().len() > 48000 * 2));
    let got = engine_pcm.lock().unwrap().clone();
    assert!(
        tone::dominant(&got[4800..], 48000.0, PEER_HZ),
        "engine did not hear 880 Hz"
    );
    // The engine receives the peer: statistics, RTT once RTCP flowed.
    assert!(
        until(20, || stats(&events, 1)
            .iter()
            .any(|s| s.packets_received > 0 && s.rtt_us > 0)),
        "no CallStats with packets and RTT: {:?}",
        stats(&events, 1)
    );
    let s = stats(&events, 1).into_iter().last().unwrap();
    eprintln!("engine stats: {s:?}");
    assert!(s.packets_received > 50, "{s:?}");
    assert_eq!(s.packets_lost, 0, "{s:?}");
    assert!(s.jitter_us < 50_000, "{s:?}");
    assert!(s.rtt_us < 1_000_000, "{s:?}");
    assert!((100..=450).contains(&s.mos_x100), "{s:?}");
    // What CALL_STATS answers: the last report.
    let last = engine.call_stats(1).unwrap();
    assert!(last.packets_received >= s.packets_received, "{last:?}");
    assert!(engine.call_stats(77).is_none());

    // DTMF both ways.
    control(
        &engine,
        1,
        CallAction::Dtmf {
            event: 5,
            duration_ms: 200,
        },
    );
    assert!(
        until(10, || peer.dtmf_received().contains(&5)),
        "peer got no DTMF 5"
    );
    peer.dtmf(7, 200);
    assert!(
        events.wait(Duration::from_secs(10), |m| m.iter().any(|m| matches!(
            m,
            Message::CallDtmfReceived {
                session: 1,
                event: 7
            }
        ))),
        "engine reported no DTMF 7"
    );

    // Hold: the peer stops receiving; resume: it receives again.
    control(&engine, 1, CallAction::Hold);
    std::thread::sleep(Duration::from_millis(400));
    let held = peer.rtp_in.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(peer.rtp_in.load(Ordering::Relaxed), held, "RTP while held");
    assert!(ended(&events, 1).is_none(), "held call ended");
    control(&engine, 1, CallAction::Resume);
    assert!(
        until(10, || peer.rtp_in.load(Ordering::Relaxed) > held + 20),
        "no RTP after resume"
    );

    // Mute: the peer hears silence; unmute: the tone again.
    control(&engine, 1, CallAction::Mute(MediaMask::AUDIO));
    std::thread::sleep(Duration::from_millis(500));
    let at = peer.pcm_since(0).len();
    assert!(until(10, || peer.pcm_since(at).len() > 24000));
    let quiet = peer.pcm_since(at);
    let rms =
        (quiet.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / quiet.len() as f64).sqrt();
    assert!(rms < 0.01, "muted audio has rms {rms}");
    control(&engine, 1, CallAction::Unmute(MediaMask::AUDIO));
    std::thread::sleep(Duration::from_millis(500));
    let at = peer.pcm_since(0).len();
    assert!(until(10, || peer.pcm_since(at).len() > 24000));
    assert!(tone::dominant(&peer.pcm_since(at), 48000.0, 440.0));

    // The peer hangs up (RTCP BYE): CallEnded OK.
    let src = peer.audio_src.lock().unwrap().clone().unwrap();
    src.send_event(gst::event::Eos::new());
    assert!(
        until(15, || ended(&events, 1).is_some()),
        "no CallEnded after the peer's BYE"
    );
    assert_eq!(
        ended(&events, 1).unwrap().0,
        Status::Ok,
        "{:?}",
        ended(&events, 1)
    );
    control(&engine, 1, CallAction::End);
}

#[test]
fn engine_offers_peer_answers_with_video_then_peer_vanishes() {
    let engine = Engine::new(config(true)).unwrap();
    let events = Collector::new();
    engine.set_events(events.clone());
    engine.handle(&Message::CallCreate {
        session: 2,
        sdp: String::new(),
    });
    let offer = local_sdp(&events, 2);
    eprintln!("engine offer:\n{offer}");
    assert!(offer.contains("m=audio") && offer.contains("a=rtpmap:96 opus/48000/2"));
    assert!(offer.contains("a=rtpmap:101 telephone-event/48000"));
    assert!(offer.contains("m=video") && offer.contains("a=rtpmap:97 VP8/90000"));
    let peer = Peer::new(true);
    let answer = peer.sdp(sdp::OPUS_PT, sdp::DTMF_PT, sdp::VP8_PT);
    peer.start(&offer, (sdp::OPUS_PT, sdp::DTMF_PT, sdp::VP8_PT));
    engine.handle(&Message::CallRemoteSdp {
        session: 2,
        sdp: answer,
    });
    control(&engine, 2, CallAction::Start);
    assert!(
        until(20, || peer.frames.load(Ordering::Relaxed) > 10),
        "no VP8 frames at the peer"
    );
    assert!(
        until(20, || peer.pcm_since(0).len() > 48000 * 2),
        "no audio at the peer"
    );
    assert!(tone::dominant(&peer.pcm_since(9600), 48000.0, 440.0));
    assert!(until(10, || stats(&events, 2)
        .iter()
        .any(|s| s.packets_received > 0)));
    // Video mute stops the camera's packets.
    control(&engine, 2, CallAction::Mute(MediaMask::VIDEO));
    std::thread::sleep(Duration::from_millis(500));
    let f = peer.frames.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        peer.frames.load(Ordering::Relaxed) <= f + 1,
        "video while muted"
    );
    assert!(ended(&events, 2).is_none());

    // The peer vanishes without BYE: CallEnded IO after the timeout.
    let t0 = Instant::now();
    for s in [&peer.audio, peer.video.as_ref().unwrap()] {
        s.0.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, |_, _| gst::PadProbeReturn::Drop);
    }
    peer.rtpbin.set_state(gst::State::Null).ok();
    peer.stop();
    assert!(
        until(15, || ended(&events, 2).is_some()),
        "no CallEnded after the peer vanished"
    );
    let (status, reason) = ended(&events, 2).unwrap();
    assert_eq!(status, Status::Io, "{reason}");
    eprintln!("ended after {:?}: {reason}", t0.elapsed());
    // Commands after the end are harmless; End removes the session.
    control(&engine, 2, CallAction::Resume);
    control(&engine, 2, CallAction::End);
    control(&engine, 2, CallAction::Start);
}

#[test]
fn bad_sdp_and_limits_are_refused() {
    let mut cfg = config(false);
    cfg.call.max_sessions = 1;
    let engine = Engine::new(cfg).unwrap();
    let events = Collector::new();
    engine.set_events(events.clone());
    let refused = |session: u32, sdp: &str| {
        engine.handle(&Message::CallCreate {
            session,
            sdp: sdp.into(),
        });
        assert!(
            until(5, || ended(&events, session).is_some()),
            "{sdp:?} not refused"
        );
        ended(&events, session).unwrap()
    };
    assert_eq!(refused(10, "garbage").0, Status::Invalid);
    assert_eq!(
        refused(11, "v=0\r\nm=audio x RTP/AVP\r\n").0,
        Status::Invalid
    );
    let pcmu = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let (st, reason) = refused(12, pcmu);
    assert_eq!(st, Status::Unsupported, "{reason}");
    assert!(reason.contains("Opus"), "{reason}");

    // A local offer, then a malformed answer: the session ends INVALID.
    engine.handle(&Message::CallCreate {
        session: 13,
        sdp: String::new(),
    });
    local_sdp(&events, 13);
    // Only one session at a time.
    assert_eq!(refused(14, "").0, Status::Limit);
    engine.handle(&Message::CallRemoteSdp {
        session: 13,
        sdp: "v=0\r\nnonsense".into(),
    });
    assert!(until(5, || ended(&events, 13).is_some()));
    assert_eq!(ended(&events, 13).unwrap().0, Status::Invalid);
    control(&engine, 13, CallAction::Start);
    control(&engine, 13, CallAction::End);
    // Unknown sessions are ignored.
    control(&engine, 99, CallAction::Start);

    // A client on a real address does not send to loopback (the guest's
    // SDP must not aim media at this machine's services).
    let mut cfg = config(false);
    cfg.call.address = "0.0.0.0".parse().unwrap();
    let engine = Engine::new(cfg).unwrap();
    let events3 = Collector::new();
    engine.set_events(events3.clone());
    let to_loopback = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n";
    engine.handle(&Message::CallCreate {
        session: 1,
        sdp: to_loopback.into(),
    });
    assert!(until(5, || ended(&events3, 1).is_some()));
    assert_eq!(ended(&events3, 1).unwrap().0, Status::Unsupported);

    // A client without a microphone cannot call.
    let mut cfg = config(false);
    cfg.capture_sources = client_engine::CaptureSources::None;
    let engine = Engine::new(cfg).unwrap();
    let events2 = Collector::new();
    engine.set_events(events2.clone());
    engine.handle(&Message::CallCreate {
        session: 1,
        sdp: String::new(),
    });
    assert!(until(5, || ended(&events2, 1).is_some()));
    assert_eq!(ended(&events2, 1).unwrap().0, Status::Unsupported);
}

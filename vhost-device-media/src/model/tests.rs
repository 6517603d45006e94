//! State-machine tests of the device model, driven directly (no vhost).

use super::*;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::{
    ControlRequest, Geometry, MediaParams, Rect, Request, StreamFormat,
};
use mediaredir_proto::data::{DataHeader, FLAG_EOS, FLAG_KEYFRAME};
use mediaredir_proto::device::DeviceLimits;
use mediaredir_proto::response::PresentationState;
use std::time::{Duration, Instant};

const GEN: u32 = 77;

/// A client that decodes H.264, Opus and VP9 up to 1080p.
pub(crate) fn client_caps() -> wire::Capabilities {
    let cap = |codec| wire::CodecCap {
        codec,
        flags: wire::CodecFlags::DECODE,
        max_width: 1920,
        max_height: 1080,
    };
    wire::Capabilities {
        codecs: vec![cap(Codec::H264), cap(Codec::Opus), cap(Codec::Vp9)],
        sources: vec![],
        features: wire::ClientFeatures::OVERLAY,
    }
}

fn model() -> DeviceModel {
    let mut m = DeviceModel::new(
        GEN,
        Limits {
            device: DeviceLimits {
                max_streams: 3,
                max_presentations: 2,
                ..Limits::default().device
            },
            ..Limits::default()
        },
    );
    m.client_connected(client_caps());
    while m.events.pop().is_some() {}
    m
}

fn req(m: &mut DeviceModel, target: u32, request: Request) -> Reply {
    m.handle(
        ControlRequest {
            generation: GEN,
            target,
            request,
        },
        Instant::now(),
    )
    .0
}

/// A 720p30 H.264 playback stream on `txq`.
pub(crate) fn video(txq: u32) -> StreamFormat {
    StreamFormat::video(Codec::H264, txq, 1280, 720, 30, 1)
}

fn audio(txq: u32) -> StreamFormat {
    StreamFormat::audio(Codec::Opus, txq, 48000, 2)
}

pub(crate) fn data(stream: u32, flags: u32) -> DataHeader {
    DataHeader {
        clip: Default::default(),
        stream_id: stream,
        generation: GEN,
        flags,
        payload_len: 100,
        pts: Some(0),
        dts: None,
        duration: Some(1_000_000),
    }
}

pub(crate) fn setup() -> (DeviceModel, u32, u32, u32) {
    let mut m = model();
    let p = req(&mut m, 0, Request::PresCreate { live: false });
    assert_eq!(p.status, Status::Ok);
    let v = req(&mut m, p.id, Request::StreamCreate(video(0)));
    let a = req(&mut m, p.id, Request::StreamCreate(audio(1)));
    assert_eq!((v.status, a.status), (Status::Ok, Status::Ok));
    (m, p.id, v.id, a.id)
}

#[test]
fn stale_generation_is_refused_first() {
    let mut m = model();
    let (reply, actions) = m.handle(
        ControlRequest {
            generation: GEN + 1,
            target: 0,
            request: Request::GetCaps,
        },
        Instant::now(),
    );
    assert_eq!(reply.status, Status::Stale);
    assert!(actions.is_empty());
    let mut h = data(1, FLAG_KEYFRAME);
    h.generation = 1;
    assert_eq!(m.admit(&h, 0).unwrap_err(), Status::Stale);
}

#[test]
fn caps_reflect_the_connected_client() {
    let mut m = model();
    match req(&mut m, 0, Request::GetCaps).body {
        ResponseBody::Caps(c) => {
            assert!(c.client_connected);
            assert_eq!(c.codecs.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    m.client_disconnected();
    match req(&mut m, 0, Request::GetCaps).body {
        ResponseBody::Caps(c) => assert!(!c.client_connected && c.codecs.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn check_format_follows_client_codecs_and_sizes() {
    let mut m = model();
    assert_eq!(
        req(&mut m, 0, Request::CheckFormat(video(0))).status,
        Status::Ok
    );
    let big = StreamFormat {
        media: MediaParams {
            width: 3840,
            height: 2160,
            ..video(0).media
        },
        ..video(0)
    };
    assert_eq!(
        req(&mut m, 0, Request::CheckFormat(big)).status,
        Status::Unsupported
    );
    let av1 = StreamFormat {
        codec: Codec::Av1,
        ..video(0)
    };
    assert_eq!(
        req(&mut m, 0, Request::CheckFormat(av1)).status,
        Status::Unsupported
    );
    m.client_disconnected();
    assert_eq!(
        req(&mut m, 0, Request::CheckFormat(video(0))).status,
        Status::NoClient
    );
}

#[test]
fn presentation_state_machine() {
    let (mut m, p, _, _) = setup();
    assert_eq!(req(&mut m, p, Request::PresPause).status, Status::Ok);
    assert_eq!(m.presentation(p).unwrap().state, PresentationState::Paused);
    assert_eq!(req(&mut m, p, Request::PresPlay).status, Status::Ok);
    assert_eq!(
        req(&mut m, p, Request::PresPlay).status,
        Status::Ok,
        "PLAY is idempotent"
    );
    assert_eq!(
        req(&mut m, p, Request::StreamCreate(audio(2))).status,
        Status::BadState
    );
    assert_eq!(
        req(&mut m, p, Request::PresFlush { position_ns: 5 }).status,
        Status::Ok
    );
    assert_eq!(
        req(&mut m, p, Request::PresSetRate { rate_q16: 131072 }).status,
        Status::Ok
    );
    let geometry = Geometry {
        display_id: 0,
        visible: true,
        color_key: false,
        z: 1,
        dest: Rect {
            x: 10,
            y: 10,
            width: 320,
            height: 180,
        },
        source: Rect::default(),
        clip: vec![],
    };
    assert_eq!(
        req(&mut m, p, Request::PresSetGeometry(geometry)).status,
        Status::Ok
    );
    assert_eq!(
        req(&mut m, p, Request::PresQueryPosition).status,
        Status::Ok
    );
    assert_eq!(req(&mut m, p, Request::PresDestroy).status, Status::Ok);
    assert_eq!(req(&mut m, p, Request::PresPlay).status, Status::NoEntity);
    assert_eq!(m.stream_count(), 0);
}

/// The actions of one request.
fn actions_of(m: &mut DeviceModel, target: u32, request: Request) -> Vec<Action> {
    let request = ControlRequest {
        generation: GEN,
        target,
        request,
    };
    m.handle(request, Instant::now()).1
}

#[test]
fn flush_and_destroy_drain_what_waits_on_the_txqs() {
    // Spec DEV-PRES-2, DEV-PRES-3, DEV-STRM-4: buffers still on a txq
    // (held back for credit, or not yet looked at) come back CANCELLED with
    // the flush or destroy, not whenever the queue is next processed (a
    // player waits for them to free its pool).
    let (mut m, p, v, a) = setup();
    let drains = |actions: &[Action]| -> Vec<(u32, u32)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::DrainTxq { txq, stream } => Some((*txq, *stream)),
                _ => None,
            })
            .collect()
    };
    let flush = actions_of(&mut m, p, Request::PresFlush { position_ns: 0 });
    assert_eq!(drains(&flush), vec![(0, v), (1, a)]);
    let destroy = actions_of(&mut m, v, Request::StreamDestroy);
    assert_eq!(drains(&destroy), vec![(0, v)]);
    let destroy = actions_of(&mut m, p, Request::PresDestroy);
    assert_eq!(drains(&destroy), vec![(1, a)]);
}

/// A control request at a given instant.
pub(crate) fn req_at(m: &mut DeviceModel, target: u32, request: Request, now: Instant) -> Reply {
    let request = ControlRequest {
        generation: GEN,
        target,
        request,
    };
    m.handle(request, now).0
}

#[test]
fn pause_holds_the_position_playing_reached_and_play_resumes_from_it() {
    let (mut m, p, v, _) = setup();
    let t0 = Instant::now();
    let position = |m: &mut DeviceModel, at: Instant| match req_at(
        m,
        p,
        Request::PresQueryPosition,
        at,
    )
    .body
    {
        ResponseBody::Position(info) => info.position_ns,
        other => panic!("not a position: {other:?}"),
    };
    req_at(&mut m, p, Request::PresPlay, t0);
    // Media up to 10 s forwarded, so that the position may advance.
    assert!(matches!(
        m.admit(
            &DataHeader {
                pts: Some(0),
                duration: Some(10_000_000_000),
                ..data(v, FLAG_KEYFRAME)
            },
            0
        ),
        Ok(Admit::Go(_))
    ));
    let report = |position_ns| wire::Message::Position {
        presentation: p,
        position_ns,
    };
    m.client_message(&report(500_000_000), t0);
    let t1 = t0 + Duration::from_millis(500);
    m.client_message(&report(1_000_000_000), t1);
    // Playing: the client's report, advanced at the rate its reports show.
    let t2 = t1 + Duration::from_millis(800);
    assert_eq!(position(&mut m, t2), 1_800_000_000);
    // A pause holds where playing got to, not the client's last report.
    req_at(&mut m, p, Request::PresPause, t2);
    assert_eq!(position(&mut m, t2 + Duration::from_secs(5)), 1_800_000_000);
    // Play holds it there until the client's reports show progress again.
    let t3 = t2 + Duration::from_secs(5);
    req_at(&mut m, p, Request::PresPlay, t3);
    assert_eq!(
        position(&mut m, t3 + Duration::from_millis(200)),
        1_800_000_000
    );
}

#[test]
fn stream_create_rules() {
    let (mut m, p, v, _) = setup();
    let q = req(&mut m, 0, Request::PresCreate { live: false }).id;
    assert_eq!(
        req(&mut m, q, Request::StreamCreate(video(9))).status,
        Status::Invalid,
        "no such txq"
    );
    assert_eq!(
        req(&mut m, 999, Request::StreamCreate(video(0))).status,
        Status::NoEntity
    );
    let av1 = StreamFormat {
        codec: Codec::Av1,
        ..video(0)
    };
    assert_eq!(
        req(&mut m, q, Request::StreamCreate(av1)).status,
        Status::Unsupported
    );
    assert_eq!(
        req(&mut m, q, Request::StreamCreate(video(0))).status,
        Status::Ok
    );
    assert_eq!(
        req(&mut m, q, Request::StreamCreate(audio(1))).status,
        Status::Limit
    );
    assert_eq!(
        req(&mut m, 0, Request::PresCreate { live: false }).status,
        Status::Limit
    );
    assert_eq!(req(&mut m, v, Request::StreamDestroy).status, Status::Ok);
    assert_eq!(
        req(&mut m, p, Request::StreamCreate(video(1))).status,
        Status::Invalid,
        "txq 1 taken by audio"
    );
    assert_eq!(
        req(&mut m, p, Request::StreamCreate(video(0))).status,
        Status::Ok
    );
}

#[test]
fn volume_only_on_audio() {
    let (mut m, _, v, a) = setup();
    let vol = Request::StreamSetVolume {
        volume_q16: 100,
        mute: true,
    };
    assert_eq!(req(&mut m, a, vol.clone()).status, Status::Ok);
    assert_eq!(req(&mut m, v, vol).status, Status::Invalid);
    assert!(m.stream(a).unwrap().mute);
}

#[test]
fn data_admission_and_stream_states() {
    let (mut m, p, v, a) = setup();
    assert!(matches!(m.admit(&data(v, FLAG_KEYFRAME), 0), Ok(Admit::Go(ad)) if ad.sample.seq == 1));
    assert_eq!(
        m.admit(&data(v, 0), 1).unwrap_err(),
        Status::Invalid,
        "wrong txq"
    );
    assert_eq!(m.admit(&data(999, 0), 0).unwrap_err(), Status::NoEntity);
    assert!(matches!(m.admit(&data(a, FLAG_EOS), 1), Ok(Admit::Go(_))));
    assert_eq!(
        m.admit(&data(a, 0), 1).unwrap_err(),
        Status::BadState,
        "after EOS"
    );
    let actions = m.client_message(&wire::Message::EndOfStream { stream: a }, Instant::now());
    assert!(actions.is_empty());
    assert_eq!(m.stream(a).unwrap().state, StreamState::Ended);
    assert_eq!(m.events.pop(), Some(Event::Eos { stream: a }));
    req(&mut m, p, Request::PresFlush { position_ns: 0 });
    assert_eq!(
        m.stream(a).unwrap().state,
        StreamState::Open,
        "flush reopens"
    );
}

#[test]
fn credit_makes_buffers_wait() {
    let mut m = DeviceModel::new(
        GEN,
        Limits {
            device: DeviceLimits {
                max_inflight_bytes: 4 << 20,
                max_buffer_bytes: 4 << 20,
                ..Limits::default().device
            },
            ..Limits::default()
        },
    );
    m.client_connected(client_caps());
    let p = req(&mut m, 0, Request::PresCreate { live: false }).id;
    let v = req(&mut m, p, Request::StreamCreate(video(0))).id;
    let mut h = data(v, FLAG_KEYFRAME);
    h.payload_len = 3 << 20;
    let Ok(Admit::Go(first)) = m.admit(&h, 0) else {
        panic!("first buffer must go")
    };
    let Ok(Admit::Wait(credit)) = m.admit(&h, 0) else {
        panic!("second buffer must wait")
    };
    assert!(credit.release(first.sample.seq), "the waiter is woken");
    assert!(matches!(m.admit(&h, 0), Ok(Admit::Go(ad)) if ad.sample.seq == 2));
}

#[test]
fn disconnect_cancels_and_reconnect_replays() {
    let (mut m, p, v, a) = setup();
    req(&mut m, p, Request::PresPlay);
    req(
        &mut m,
        a,
        Request::StreamSetVolume {
            volume_q16: 1000,
            mute: false,
        },
    );
    assert!(matches!(
        m.admit(&data(v, FLAG_KEYFRAME), 0),
        Ok(Admit::Go(_))
    ));
    let actions = m.client_disconnected();
    assert!(actions.contains(&Action::Cancel {
        stream: v,
        status: Status::NoClient
    }));
    assert_eq!(m.events.pop(), Some(Event::ClientDisconnected));
    assert_eq!(m.admit(&data(v, 0), 0).unwrap_err(), Status::NoClient);
    assert!(!m.config().client_connected);

    let actions = m.client_connected(client_caps());
    let sent: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(msg) => Some(msg),
            Action::Cancel { .. }
            | Action::DrainTxq { .. }
            | Action::Forget { .. }
            | Action::AnswerDeferred(_) => None,
        })
        .collect();
    assert!(matches!(sent[0], wire::Message::CreatePresentation { id, .. } if *id == p));
    assert!(
        sent.iter()
            .any(|m| matches!(m, wire::Message::CreateStream(s) if s.id == v))
    );
    assert!(sent.iter().any(|m| matches!(
        m,
        wire::Message::SetVolume {
            volume_q16: 1000,
            ..
        }
    )));
    assert!(
        matches!(sent.last(), Some(wire::Message::Play { presentation }) if *presentation == p)
    );
    assert_eq!(m.events.pop(), Some(Event::ClientConnected { features: 1 }));
    assert_eq!(m.events.pop(), Some(Event::KeyframeNeeded { stream: v }));
    assert_eq!(m.admit(&data(v, 0), 0).unwrap_err(), Status::Dropped);
    assert!(matches!(
        m.admit(&data(v, FLAG_KEYFRAME), 0),
        Ok(Admit::Go(_))
    ));
    assert!(matches!(m.admit(&data(v, 0), 0), Ok(Admit::Go(_))));
}

#[test]
fn the_colour_key_flag_is_forwarded_and_replayed() {
    // Spec 7.14, DEV-GEOM-1: `COLORKEY` reaches the client with the rest of
    // the geometry, and again when a client reconnects.
    let (mut m, p, _, _) = setup();
    let dest = Rect::new(10, 10, 320, 180);
    let geometry = Geometry {
        display_id: 1,
        visible: true,
        color_key: true,
        z: 2,
        dest,
        source: Rect::default(),
        clip: vec![],
    };
    let sent = |actions: &[Action]| -> Vec<(u32, u32, bool, bool, Rect)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(wire::Message::SetGeometry(g)) => {
                    Some((g.presentation, g.display, g.visible, g.color_key, g.dest))
                }
                _ => None,
            })
            .collect()
    };
    let want = vec![(p, 1, true, true, dest)];
    let actions = actions_of(&mut m, p, Request::PresSetGeometry(geometry));
    assert_eq!(sent(&actions), want);
    m.client_disconnected();
    let actions = m.client_connected(client_caps());
    assert_eq!(sent(&actions), want);
}

#[test]
fn stream_error_fails_only_that_stream() {
    let (mut m, _, v, a) = setup();
    let msg = wire::Message::StreamError {
        stream: v,
        status: Status::Unsupported,
        message: "no decoder".into(),
    };
    let actions = m.client_message(&msg, Instant::now());
    assert_eq!(
        actions,
        vec![Action::Cancel {
            stream: v,
            status: Status::Unsupported
        }]
    );
    assert_eq!(
        m.admit(&data(v, FLAG_KEYFRAME), 0).unwrap_err(),
        Status::Unsupported
    );
    assert!(matches!(m.admit(&data(a, 0), 1), Ok(Admit::Go(_))));
}

#[test]
fn requests_of_features_not_negotiated_are_unknown() {
    // DEV-INIT-1.
    let mut m = model();
    assert_eq!(
        req(&mut m, 0, Request::CallCreate { sdp: None }).status,
        Status::UnknownRequest
    );
    assert_eq!(
        req(&mut m, 0, Request::EnumSources).status,
        Status::UnknownRequest
    );
    let p = req(&mut m, 0, Request::PresCreate { live: true }).id;
    let cap = audio(0).captured_from(1);
    assert_eq!(
        req(&mut m, p, Request::StreamCreate(cap)).status,
        Status::Invalid
    );
}

#[test]
fn reset_forgets_everything() {
    let (mut m, p, v, _) = setup();
    let actions = m.reset();
    assert!(actions.contains(&Action::Cancel {
        stream: v,
        status: Status::Cancelled
    }));
    assert!(actions.contains(&Action::Send(wire::Message::DestroyPresentation { id: p })));
    assert!(m.presentation(p).is_none());
    assert_eq!(m.stream_count(), 0);
}

#[test]
fn clipping_is_forwarded_only_with_f_clipping() {
    // DEV-DATA-8: the device forwards the data header's clipping unchanged
    // with F_CLIPPING and ignores the (then reserved) bytes without it.
    let clip = mediaredir_proto::data::Clip {
        start: 312,
        end: 648,
    };
    let header = |a| DataHeader { clip, ..data(a, 0) };
    let (mut m, _, _, a) = setup();
    let Ok(Admit::Go(plain)) = m.admit(&header(a), 1) else {
        panic!("admitted");
    };
    assert_eq!(plain.sample.clip, wire::Clip::NONE);
    m.set_features(Features {
        clipping: true,
        ..Features::default()
    });
    let Ok(Admit::Go(clipped)) = m.admit(&header(a), 1) else {
        panic!("admitted");
    };
    assert_eq!(clipped.sample.clip, clip);
}

#[test]
fn pcm_payloads_are_whole_sample_frames() {
    let mut m = model();
    let mut caps = client_caps();
    caps.codecs.push(wire::CodecCap {
        codec: Codec::PcmS24le,
        flags: wire::CodecFlags::DECODE,
        max_width: 0,
        max_height: 0,
    });
    m.client_connected(caps);
    while m.events.pop().is_some() {}
    let p = req(&mut m, 0, Request::PresCreate { live: false });
    let format = StreamFormat {
        codec: Codec::PcmS24le,
        media: MediaParams {
            channels: 6,
            ..audio(0).media
        },
        codec_data: 0x60Fu32.to_le_bytes().to_vec(),
        ..audio(0)
    };
    let s = req(&mut m, p.id, Request::StreamCreate(format));
    assert_eq!(s.status, Status::Ok);
    let mut h = data(s.id, 0);
    // 24-bit 5.1: 18 bytes a sample frame.
    h.payload_len = 18 * 10;
    assert!(matches!(m.admit(&h, 0), Ok(Admit::Go(_))));
    h.payload_len = 2 * 6 * 10;
    assert_eq!(m.admit(&h, 0).unwrap_err(), Status::Invalid);
}

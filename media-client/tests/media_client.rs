//! The `media-client` binary against a scripted daemon on a Unix socket:
//! Hello with real capabilities, Welcome, the replay, raw-payload samples,
//! cumulative acknowledgements, EndOfStream, Ping/Pong.

// The engine's test support (clips, demuxing), shared rather than copied.
#[path = "../../client-engine/tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client_engine::wire::{
    self, CallAction, ClientFeatures, CreateStream, Message, PresentationFlags, SampleFlags,
    SampleHeader, SourceKind, Status, Welcome,
};
use common::*;
use mediaredir_peer::{FrameWriter, FramedReader};
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::StreamFormat;

fn send(s: &mut impl Write, msg: &Message, payload: &[u8]) {
    FrameWriter::new().write(s, msg, &[payload]).unwrap();
}

/// `media-client --headless --once` started on a Unix socket at `path`, its
/// connection accepted, and the frames it sends (read with a 200 ms
/// timeout).
fn start_client(path: &Path) -> (Child, UnixStream, FramedReader<UnixStream>) {
    let listener = UnixListener::bind(path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_media-client"))
        .args(["--connect", &format!("unix:{}", path.display())])
        .args(["--headless", "--once", "--stats-interval", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let frames = FramedReader::new(conn.try_clone().unwrap(), 65536);
    (child, conn, frames)
}

/// The next frame from the client; `None` when none came in time or the
/// client closed. A malformed frame fails the test.
fn next_frame(frames: &mut FramedReader<UnixStream>) -> Option<(Message, Vec<u8>)> {
    match frames.next_frame() {
        Ok(frame) => frame,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => panic!("malformed frame: {e}"),
        Err(_) => None,
    }
}

/// The client's Hello, the first frame it sends, answered with a Welcome
/// of daemon session `session`.
fn handshake(
    conn: &mut UnixStream,
    frames: &mut FramedReader<UnixStream>,
    session: u64,
) -> wire::Hello {
    let hello = loop {
        if let Some((m, _)) = next_frame(frames) {
            break m;
        }
    };
    let Message::Hello(h) = hello else {
        panic!("expected Hello, got {hello:?}")
    };
    send(
        conn,
        &Message::Welcome(Welcome {
            major: wire::PROTOCOL_MAJOR,
            minor: wire::PROTOCOL_MINOR,
            server: "test daemon".into(),
            session,
        }),
        &[],
    );
    h
}

#[test]
fn client_plays_what_the_daemon_sends() {
    let dir = TempDir::new("client");
    let track = demux(&generate(&dir.0, "clip.webm", VP8)).remove(0);
    let path = dir.0.join("uplink.sock");
    let (mut child, mut conn, mut frames) = start_client(&path);
    let h = handshake(&mut conn, &mut frames, 42);
    assert_eq!(h.major, wire::PROTOCOL_MAJOR);
    assert!(h.caps.codecs.iter().any(|c| c.codec == track.codec));
    let mut next = || next_frame(&mut frames).map(|(m, _)| m);
    send(
        &mut conn,
        &Message::CreatePresentation {
            id: 1,
            flags: PresentationFlags::empty(),
        },
        &[],
    );
    send(&mut conn, &create_stream(&track, 3, 1), &[]);
    for (i, s) in track.samples.iter().enumerate() {
        send(
            &mut conn,
            &Message::Sample(header(3, i, s, SampleFlags::empty())),
            &s.data,
        );
    }
    let last = track.samples.len() as u64 + 1;
    let eos = SampleHeader {
        clip: Default::default(),
        stream: 3,
        seq: last,
        pts: None,
        dts: None,
        duration: None,
        flags: SampleFlags::EOS,
    };
    send(&mut conn, &Message::Sample(eos), &[]);
    send(&mut conn, &Message::Play { presentation: 1 }, &[]);
    send(&mut conn, &Message::Ping { nonce: 7 }, &[]);
    let (mut acked, mut eos_seen, mut pong) = (0, false, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !(acked == last && eos_seen && pong) {
        match next() {
            Some(Message::Ack {
                stream: 3,
                seq,
                status,
            }) => {
                assert!(status.is_ok());
                assert!(seq <= last);
                acked = acked.max(seq);
            }
            Some(Message::EndOfStream { stream: 3 }) => eos_seen = true,
            Some(Message::Pong { nonce: 7 }) => pong = true,
            _ => {}
        }
    }
    drop(conn);
    let (status, log) = exit_and_log(&mut child);
    assert!(
        acked == last && eos_seen && pong,
        "acked {acked}/{last} eos {eos_seen} pong {pong}\n{log}"
    );
    assert!(status.success(), "{log}");
    assert!(log.contains("decoded"), "no statistics at exit:\n{log}");
}

#[test]
fn client_captures_and_answers_calls_over_the_wire() {
    let dir = TempDir::new("client-capture");
    let path = dir.0.join("uplink.sock");
    let (mut child, mut conn, mut frames) = start_client(&path);
    let h = handshake(&mut conn, &mut frames, 43);
    let mut next = || next_frame(&mut frames);
    assert!(
        h.caps
            .features
            .contains(ClientFeatures::CAPTURE | ClientFeatures::CALL)
    );
    let mic = h
        .caps
        .sources
        .iter()
        .find(|s| s.kind == SourceKind::Microphone)
        .unwrap()
        .id;
    send(
        &mut conn,
        &Message::CreatePresentation {
            id: 1,
            flags: PresentationFlags::LIVE,
        },
        &[],
    );
    let mut format = StreamFormat::audio(Codec::Opus, 0, 48000, 2);
    format.media.bitrate = 48000;
    let cs = CreateStream::from_format(4, 1, &format.captured_from(mic));
    send(&mut conn, &Message::CreateStream(cs), &[]);
    send(&mut conn, &Message::StartCapture { stream: 4 }, &[]);
    send(
        &mut conn,
        &Message::CallCreate {
            session: 9,
            sdp: String::new(),
        },
        &[],
    );
    let (mut packets, mut local_sdp) = (Vec::new(), None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && (packets.len() < 100 || local_sdp.is_none()) {
        match next() {
            Some((Message::CaptureSample(h), payload)) => {
                assert_eq!(h.stream, 4);
                assert_eq!(h.seq, packets.len() as u64 + 1);
                assert_eq!(h.flags.contains(SampleFlags::DISCONT), h.seq == 1);
                packets.push(payload);
                send(
                    &mut conn,
                    &Message::Ack {
                        stream: 4,
                        seq: h.seq,
                        status: Status::Ok,
                    },
                    &[],
                );
            }
            Some((Message::CallLocalSdp { session: 9, sdp }, _)) => local_sdp = Some(sdp),
            Some((
                Message::CallEnded {
                    session: 9, reason, ..
                },
                _,
            )) => {
                panic!("call refused: {reason}")
            }
            _ => {}
        }
    }
    send(&mut conn, &Message::StopCapture { stream: 4 }, &[]);
    send(
        &mut conn,
        &Message::CallControl {
            session: 9,
            action: CallAction::End,
        },
        &[],
    );
    let sdp = local_sdp.expect("no CallLocalSdp");
    assert!(sdp.contains("a=rtpmap:96 opus/48000/2"), "{sdp}");
    drop(conn);
    let (status, log) = exit_and_log(&mut child);
    assert!(
        packets.len() >= 100,
        "{} capture samples\n{log}",
        packets.len()
    );
    assert!(status.success(), "{log}");
    let pcm = tone::decode_opus(&packets, 2);
    assert!(
        tone::dominant(&pcm[4800..], 48000.0, 440.0),
        "not the 440 Hz test tone"
    );
}

/// Waits for `media-client` to exit; its status and what it logged.
fn exit_and_log(child: &mut Child) -> (std::process::ExitStatus, String) {
    let status = child.wait().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    (status, log)
}

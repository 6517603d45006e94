//! The `media-client` binary against a scripted daemon on a Unix socket:
//! Hello with real capabilities, Welcome, the replay, raw-payload samples,
//! cumulative acknowledgements, EndOfStream, Ping/Pong.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use client_engine::wire::{
    self, FrameReader, Message, PresentationFlags, SampleFlags, SampleHeader, Welcome,
};
use common::*;

fn send(s: &mut impl Write, msg: &Message, payload: &[u8]) {
    let frame = wire::encode_frame(msg, payload.len()).unwrap();
    s.write_all(&frame).unwrap();
    s.write_all(payload).unwrap();
}

#[test]
fn client_plays_what_the_daemon_sends() {
    let dir = TempDir::new("client");
    let track = demux(&generate(&dir.0, "clip.webm", VP8)).remove(0);
    let path = dir.0.join("uplink.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_media-client"))
        .args(["--connect", &format!("unix:{}", path.display())])
        .args(["--headless", "--once", "--stats-interval", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut reader = FrameReader::new();
    let mut buf = vec![0u8; 65536];
    let mut next = |conn: &mut std::os::unix::net::UnixStream| -> Option<Message> {
        loop {
            if let Some((m, _)) = reader.next_frame() {
                return Some(m);
            }
            let want = reader.wanted().clamp(1, buf.len());
            match conn.read(&mut buf[..want]) {
                Ok(0) => return None,
                Ok(n) => {
                    reader.feed(&buf[..n]).unwrap();
                }
                Err(_) => return None,
            }
        }
    };
    let hello = loop {
        if let Some(m) = next(&mut conn) {
            break m;
        }
    };
    let Message::Hello(h) = hello else {
        panic!("expected Hello, got {hello:?}")
    };
    assert_eq!(h.major, wire::PROTOCOL_MAJOR);
    assert!(h.caps.codecs.iter().any(|c| c.codec == track.codec));
    send(
        &mut conn,
        &Message::Welcome(Welcome {
            major: wire::PROTOCOL_MAJOR,
            minor: wire::PROTOCOL_MINOR,
            server: "test daemon".into(),
            session: 42,
        }),
        &[],
    );
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
        match next(&mut conn) {
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
    let status = child.wait().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        acked == last && eos_seen && pong,
        "acked {acked}/{last} eos {eos_seen} pong {pong}\n{log}"
    );
    assert!(status.success(), "{log}");
    assert!(log.contains("decoded"), "no statistics at exit:\n{log}");
}

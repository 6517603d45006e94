//! A wire-protocol test client: connects to the daemon's socket uplink,
//! says hello with chosen capabilities, and records what arrives.

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use mediaredir_peer::FramedReader;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{
    self, Capabilities, ClientFeatures, CodecCap, CodecFlags, Hello, Message, SampleFlags,
    SampleHeader,
};

/// A frame received by the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The message.
    pub msg: Message,
    /// Its payload (samples only).
    pub payload: Vec<u8>,
}

/// How the client acknowledges samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckPolicy {
    /// Ack each sample as it arrives.
    Immediate,
    /// Ack each sample but the `EOS`-flagged one (a client that reports the
    /// end of the stream and leaves before acknowledging it).
    AllButEos,
    /// Never ack (a stuck client).
    Never,
}

/// A connected test client.
#[derive(Debug)]
pub struct TestClient {
    writer: UnixStream,
    frames: Receiver<Received>,
}

/// Capabilities decoding every codec, no size limit.
pub fn decode_everything() -> Capabilities {
    Capabilities {
        codecs: Codec::ALL
            .iter()
            .map(|&codec| CodecCap {
                codec,
                flags: CodecFlags::DECODE,
                max_width: 0,
                max_height: 0,
            })
            .collect(),
        sources: vec![],
        features: ClientFeatures::OVERLAY,
    }
}

/// Capabilities decoding every codec and encoding Opus and VP8 from a test
/// microphone (source 1) and camera (source 2), with the CAPTURE feature.
pub fn decode_and_capture() -> Capabilities {
    let mut caps = decode_everything();
    for cap in &mut caps.codecs {
        if matches!(cap.codec, Codec::Opus | Codec::Vp8) {
            cap.flags |= CodecFlags::ENCODE;
        }
    }
    caps.features |= ClientFeatures::CAPTURE;
    caps.sources = vec![
        wire::CaptureSource {
            id: 1,
            kind: wire::SourceKind::Microphone,
            name: "test microphone".into(),
        },
        wire::CaptureSource {
            id: 2,
            kind: wire::SourceKind::Camera,
            name: "test camera".into(),
        },
    ];
    caps
}

/// The acknowledgement of `sample` (consumed).
fn ack(sample: &SampleHeader) -> Message {
    Message::Ack {
        stream: sample.stream,
        seq: sample.seq,
        status: Status::Ok,
    }
}

fn write_msg(stream: &mut UnixStream, msg: &Message) -> std::io::Result<()> {
    let frame = wire::encode_frame(msg, 0).map_err(std::io::Error::other)?;
    stream.write_all(&frame)
}

impl TestClient {
    /// Connects to the uplink at `path`, retrying until it listens, and
    /// says hello.
    pub fn connect(path: &Path, caps: Capabilities, acks: AckPolicy) -> TestClient {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(err) => {
                    assert!(
                        Instant::now() < deadline,
                        "uplink {} not reachable: {err}",
                        path.display()
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        let hello = Message::Hello(Hello {
            major: wire::PROTOCOL_MAJOR,
            minor: wire::PROTOCOL_MINOR,
            name: "test client".into(),
            caps,
        });
        write_msg(&mut stream, &hello).expect("send Hello");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut acker = stream.try_clone().expect("clone");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut frames = FramedReader::new(reader, 64 << 10);
            while let Ok(Some((msg, payload))) = frames.next_frame() {
                let reply = match (&msg, acks) {
                    (Message::Sample(s), AckPolicy::Immediate) => Some(ack(s)),
                    (Message::Sample(s), AckPolicy::AllButEos)
                        if !s.flags.contains(SampleFlags::EOS) =>
                    {
                        Some(ack(s))
                    }
                    (Message::Ping { nonce }, _) => Some(Message::Pong { nonce: *nonce }),
                    _ => None,
                };
                if tx.send(Received { msg, payload }).is_err() {
                    return;
                }
                if let Some(reply) = reply
                    && write_msg(&mut acker, &reply).is_err()
                {
                    return;
                }
            }
        });
        TestClient {
            writer: stream,
            frames: rx,
        }
    }

    /// Sends a message to the daemon.
    pub fn send(&mut self, msg: &Message) {
        write_msg(&mut self.writer, msg).expect("send to daemon");
    }

    /// Sends a message followed by its payload (a captured sample).
    pub fn send_with_payload(&mut self, msg: &Message, payload: &[u8]) {
        let mut frame = wire::encode_frame(msg, payload.len()).expect("encode");
        frame.extend_from_slice(payload);
        self.writer.write_all(&frame).expect("send to daemon");
    }

    /// The next frame, skipping pings and pongs; `None` on timeout or close.
    pub fn next(&self, timeout: Duration) -> Option<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.frames.recv_timeout(left) {
                Ok(r) if matches!(r.msg, Message::Ping { .. } | Message::Pong { .. }) => continue,
                Ok(r) => return Some(r),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Waits for the first frame matching `pred`, returning it and every
    /// frame skipped before it.
    pub fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&Message) -> bool,
    ) -> (Option<Received>, Vec<Received>) {
        let deadline = Instant::now() + timeout;
        let mut skipped = Vec::new();
        while let Some(r) = self.next(deadline.saturating_duration_since(Instant::now())) {
            if pred(&r.msg) {
                return (Some(r), skipped);
            }
            skipped.push(r);
        }
        (None, skipped)
    }

    /// Leaves as soon as a stream has ended, as `media-client --once`
    /// does: waits up to `timeout` for an `EOS`-flagged sample, reports
    /// `EndOfStream` for its stream and closes at once. The stream's id;
    /// `None` when no such sample came.
    pub fn end_and_leave(mut self, timeout: Duration) -> Option<u32> {
        let (eos, _) = self.wait_for(
            timeout,
            |m| matches!(m, Message::Sample(s) if s.flags.contains(SampleFlags::EOS)),
        );
        let Some(Received {
            msg: Message::Sample(eos),
            ..
        }) = eos
        else {
            return None;
        };
        self.send(&Message::EndOfStream { stream: eos.stream });
        self.close();
        Some(eos.stream)
    }

    /// Closes the connection.
    pub fn close(self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
    }
}

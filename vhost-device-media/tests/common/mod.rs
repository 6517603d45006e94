//! What the uplink tests share: a used ring that records completions, an
//! events sink that reports connections on a channel, and sample headers.

#![allow(dead_code)]

use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, Sender};

use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{self, FrameReader, Message};
use vhost_user_mediaredir::guest_buffer::{UsedRing, Waker};
use vhost_user_mediaredir::uplink::ClientEvents;

/// Records every completion `(head, used length)`; wakes nobody.
#[derive(Default)]
pub(crate) struct Ring(pub(crate) Mutex<Vec<(u16, u32)>>);

impl UsedRing for Ring {
    fn complete(&self, head: u16, len: u32) {
        self.0.lock().unwrap().push((head, len));
    }
}

impl Waker for Ring {
    fn wake(&self) {}
}

impl Ring {
    /// Heads completed so far, in order.
    pub(crate) fn heads(&self) -> Vec<u16> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(head, _)| *head)
            .collect()
    }
}

/// Reports "connected" and "disconnected" on a channel.
pub(crate) struct Events(Mutex<Sender<&'static str>>);

impl Events {
    /// The sink and the receiving end of its channel.
    pub(crate) fn new() -> (Events, Receiver<&'static str>) {
        let (tx, rx) = mpsc::channel();
        (Events(Mutex::new(tx)), rx)
    }
}

impl ClientEvents for Events {
    fn client_connected(&self, _caps: wire::Capabilities) {
        let _ = self.0.lock().unwrap().send("connected");
    }
    fn client_disconnected(&self) {
        let _ = self.0.lock().unwrap().send("disconnected");
    }
    fn client_message(&self, _msg: Message) {}
    fn captured(&self, _sample: wire::SampleHeader, _payload: Vec<u8>) {
        let _ = self.0.lock().unwrap().send("captured");
    }
}

/// A client's `Hello` frame (protocol 1.0, no codecs, overlay), named
/// `name`.
pub(crate) fn hello_frame(name: &str) -> Vec<u8> {
    let hello = Message::Hello(wire::Hello {
        major: 1,
        minor: 0,
        name: name.into(),
        caps: wire::Capabilities {
            codecs: vec![],
            sources: vec![],
            features: wire::ClientFeatures::OVERLAY,
        },
    });
    wire::encode_frame(&hello, 0).unwrap()
}

/// A keyframe sample header numbered `seq`.
pub(crate) fn sample(stream: u32, seq: u64) -> wire::SampleHeader {
    wire::SampleHeader {
        clip: Default::default(),
        stream,
        seq,
        pts: Some(seq * 1000),
        dts: None,
        duration: Some(1000),
        flags: wire::SampleFlags::KEYFRAME,
    }
}

/// A test client's receive loop: reads frames with `read`, acks every sample
/// through `write` when `ack`, and forwards each frame on the returned
/// channel. Runs on its own thread until the connection ends.
pub(crate) fn pump<R, W>(mut read: R, mut write: W, ack: bool) -> Receiver<(Message, Vec<u8>)>
where
    R: FnMut(&mut [u8]) -> std::io::Result<usize> + Send + 'static,
    W: FnMut(&[u8]) + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut frames = FrameReader::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            while let Some((msg, payload)) = frames.next_frame() {
                if let (true, Message::Sample(s)) = (ack, &msg) {
                    let a = Message::Ack {
                        stream: s.stream,
                        seq: s.seq,
                        status: Status::Ok,
                    };
                    write(&wire::encode_frame(&a, 0).unwrap());
                }
                if tx.send((msg, payload)).is_err() {
                    return;
                }
            }
            let want = frames.wanted().clamp(1, buf.len());
            match read(&mut buf[..want]) {
                Ok(0) | Err(_) => return,
                Ok(n) => frames.feed(&buf[..n]).unwrap(),
            };
        }
    });
    rx
}

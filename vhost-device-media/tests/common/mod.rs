//! What the uplink tests share: a used ring that records completions, an
//! events sink that reports connections on a channel, and sample headers.

#![allow(dead_code)]

use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, Sender};

use mediaredir_proto::wire::{self, Message};
use vhost_device_media::guest_buffer::{UsedRing, Waker};
use vhost_device_media::uplink::ClientEvents;

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
}

/// A keyframe sample header numbered `seq`.
pub(crate) fn sample(stream: u32, seq: u64) -> wire::SampleHeader {
    wire::SampleHeader {
        stream,
        seq,
        pts: Some(seq * 1000),
        dts: None,
        duration: Some(1000),
        flags: wire::SampleFlags::KEYFRAME,
    }
}

//! The redirect branch's way to the device: a private bin, `queue !
//! mediaredirsink`, outside the pipeline, driven by the forwarder.
//!
//! Why private: a sink inside a decoder would count for the pipeline's
//! preroll and EOS. Why a queue: in PAUSED a sink holds its first buffer
//! until PLAYING, while a decoder must go on taking input until the
//! application's sink prerolls (a B-frame stream's first picture is due
//! only after later frames came in); the queue takes the input meanwhile,
//! and when it is full the device's flow control reaches the forwarder.
//! The bin has no clock (the application's sink paces the placeholders)
//! and its own bus, whose messages are logged and tell the forwarder when
//! the client reached the end of stream or the branch failed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::forward::CAT;

/// How much the queue before the device holds (ns).
const QUEUED: u64 = 2_000_000_000;

/// How long the stream's creation at the client may take.
const CREATE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often waits look at the flush flag.
const POLL: Duration = Duration::from_millis(20);

/// What the bin's bus told.
#[derive(Debug, Default)]
struct Told {
    /// The sink posted EOS: the client reached the end.
    eos: bool,
    /// The sink failed.
    error: Option<String>,
}

#[derive(Debug, Default)]
struct Signals {
    told: Mutex<Told>,
    changed: Condvar,
}

impl Signals {
    fn lock(&self) -> MutexGuard<'_, Told> {
        crate::lock(&self.told)
    }
}

/// The private `queue ! mediaredirsink` bin.
#[derive(Debug)]
pub(super) struct Device {
    bin: gst::Bin,
    sink: gst::Element,
    pad: gst::GhostPad,
    signals: Arc<Signals>,
}

impl Device {
    pub(super) fn new() -> Device {
        let bin = gst::Bin::with_name("device");
        let queue = gst::ElementFactory::make("queue")
            .property("max-size-time", QUEUED)
            .property("max-size-buffers", 0u32)
            .property("max-size-bytes", 0u32)
            .build()
            .expect("queue is a core element");
        let sink = gst::ElementFactory::make("mediaredirsink")
            .build()
            .expect("mediaredirsink is registered with this element");
        bin.add_many([&queue, &sink]).expect("add to a new bin");
        // Unchecked: the sink's caps are the client's, asked when data
        // comes, not now.
        let _ = queue
            .static_pad("src")
            .zip(sink.static_pad("sink"))
            .map(|(src, sinkpad)| src.link_full(&sinkpad, gst::PadLinkCheck::empty()));
        let pad = gst::GhostPad::with_target(&queue.static_pad("sink").expect("queue sink pad"))
            .expect("ghost the queue's sink pad");
        bin.add_pad(&pad).expect("add the ghost pad");
        let signals = Arc::new(Signals::default());
        let bus = gst::Bus::new();
        let told = Arc::clone(&signals);
        bus.set_sync_handler(move |_, message| {
            match message.view() {
                gst::MessageView::Error(e) => {
                    gst::warning!(CAT, "redirection failed: {} ({:?})", e.error(), e.debug());
                    told.lock().error = Some(e.error().to_string());
                    told.changed.notify_all();
                }
                gst::MessageView::Warning(w) => {
                    gst::info!(CAT, "redirection: {} ({:?})", w.error(), w.debug());
                }
                gst::MessageView::Eos(_) => {
                    told.lock().eos = true;
                    told.changed.notify_all();
                }
                _ => {}
            }
            gst::BusSyncReply::Drop
        });
        bin.set_bus(Some(&bus));
        Device {
            bin,
            sink,
            pad,
            signals,
        }
    }

    /// The sink's properties (socket, group).
    pub(super) fn configure(&self, socket: &str, group: &str) {
        self.sink.set_property("socket", socket);
        self.sink.set_property("group", group);
    }

    /// Where the forwarder sends the compressed stream.
    pub(super) fn pad(&self) -> &gst::Pad {
        self.pad.upcast_ref()
    }

    /// Whether the connected client decodes `caps` (asked of the broker).
    pub(super) fn client_takes(&self, caps: &gst::Caps) -> bool {
        self.sink
            .static_pad("sink")
            .is_some_and(|p| p.query_accept_caps(caps))
    }

    /// Waits until the sink took `caps` (the stream exists at the client)
    /// or failed.
    pub(super) fn wait_created(&self, caps: &gst::Caps) -> bool {
        let deadline = Instant::now() + CREATE_TIMEOUT;
        let pad = self.sink.static_pad("sink");
        loop {
            if pad
                .as_ref()
                .and_then(gst::Pad::current_caps)
                .is_some_and(|c| c == *caps)
            {
                return true;
            }
            let told = self.signals.lock();
            if told.error.is_some() || Instant::now() >= deadline {
                return false;
            }
            let _ = self.signals.changed.wait_timeout(told, POLL);
        }
    }

    /// Waits until the client reached the end (the sink's EOS), the branch
    /// failed, or `flushing` is set.
    pub(super) fn wait_eos(&self, flushing: &AtomicBool) {
        let mut told = self.signals.lock();
        while !told.eos && told.error.is_none() && !flushing.load(Ordering::SeqCst) {
            told = self
                .signals
                .changed
                .wait_timeout(told, POLL)
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
    }

    /// After a flush: the end is not reached.
    pub(super) fn restart(&self) {
        self.signals.lock().eos = false;
    }

    /// The branch failed (what the sink said).
    pub(super) fn failed(&self) -> Option<String> {
        self.signals.lock().error.clone()
    }

    pub(super) fn set_state(&self, state: gst::State) -> bool {
        if state <= gst::State::Ready {
            *self.signals.lock() = Told::default();
        }
        self.bin.set_state(state).is_ok()
    }
}

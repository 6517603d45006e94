//! The event sink: how the engine reports back (EOS, position, state, stream
//! errors, QoS, acknowledgements). The engine calls it from GStreamer
//! streaming threads, its bus threads and its report ticker, so it must be
//! cheap and must not call back into the engine.

use std::sync::{Arc, RwLock};

use gstreamer as gst;
use mediaredir_proto::wire::{Message, SampleHeader};

/// Receives the engine's messages to the daemon.
pub trait EngineEvents: Send + Sync {
    /// One message: `EndOfStream`, `Position`, `StateChanged`,
    /// `StreamError`, `Qos`, `Ack`, and for calls `CallLocalSdp`,
    /// `CallStats`, `CallEnded`, `CallDtmfReceived`.
    fn report(&self, msg: Message);

    /// One encoded capture sample (spec 7.10): send it as `CaptureSample`
    /// with `payload` as the frame's payload. The default drops it (a sink
    /// that does not carry capture; the engine announces capture only when
    /// asked to, see [`crate::EngineConfig::capture_sources`]). Called from
    /// the capture pipeline's streaming thread with no engine lock held:
    /// the receiver may acknowledge the sample (`Engine::handle(Ack)`)
    /// before returning.
    fn capture_sample(&self, header: SampleHeader, payload: gst::Buffer) {
        log::trace!(
            "capture sample {} #{} ({} bytes) dropped: sink does not carry capture",
            header.stream,
            header.seq,
            payload.size()
        );
    }
}

/// The engine's shared, replaceable event sink.
#[derive(Clone, Default)]
pub(crate) struct EventHub(Arc<RwLock<Option<Arc<dyn EngineEvents>>>>);

impl EventHub {
    pub(crate) fn set(&self, sink: Arc<dyn EngineEvents>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(sink);
    }

    pub(crate) fn report(&self, msg: Message) {
        let sink = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        match sink {
            Some(sink) => sink.report(msg),
            None => log::trace!("no event sink: {msg:?}"),
        }
    }

    pub(crate) fn capture_sample(&self, header: SampleHeader, payload: gst::Buffer) {
        let sink = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        match sink {
            Some(sink) => sink.capture_sample(header, payload),
            None => log::trace!("no event sink: capture sample {}", header.stream),
        }
    }
}

//! The event sink: how the engine reports back (EOS, position, state, stream
//! errors, QoS, acknowledgements). The engine calls it from GStreamer
//! streaming threads, its bus threads and its report ticker, so it must be
//! cheap and must not call back into the engine.

use std::sync::{Arc, RwLock};

use mediaredir_proto::wire::Message;

/// Receives the engine's messages to the daemon.
pub trait EngineEvents: Send + Sync {
    /// One message: `EndOfStream`, `Position`, `StateChanged`,
    /// `StreamError`, `Qos` or `Ack`.
    fn report(&self, msg: Message);
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
}

//! The local uplink: the client engine in the daemon's own process.
//!
//! It serves verification, the bench and tests: the host's decoders do the
//! work, with no transport in between. Each payload reaches its `appsrc` as
//! GStreamer memory that wraps the mapped guest memory itself: one
//! `gst_memory_new_wrapped` per contiguous piece, read-only, with the guest
//! buffer as the owner. Nothing is copied, and no Rust slice of guest memory
//! is ever made. The guest buffer completes when GStreamer drops the last of
//! that memory (complete on drop): `OK` once consumed, `CANCELLED` when a
//! flush or destroy came after it was queued.
//!
//! It opens no window: the engine's Auto mode plays audio on the sound
//! card and decodes video on the clock without showing it (only the
//! viewer, a Spice client, shows redirected video), so `local` and
//! `local:headless` differ in audio alone.
//!
//! The in-process client is connected from the start; what the engine
//! reports goes to the device core as a socket client's messages would.
//! Acknowledgements are not needed: the buffer's release is the ack, and its
//! credit returns with it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use client_engine::gst::glib;
use client_engine::gst::glib::translate::from_glib_full;
use client_engine::{Engine, EngineConfig, EngineError, EngineEvents, OutputMode, gst};
use mediaredir_proto::status::Status;
use mediaredir_proto::wire;

use super::{ClientEvents, Uplink};
use crate::counters::Counters;
use crate::guest_buffer::GuestBuffer;

/// Cancellation epoch of one stream: a buffer queued before the latest
/// cancel completes with that cancel's status.
#[derive(Debug, Default)]
struct Epoch {
    count: AtomicU64,
    status: AtomicU32,
}

/// A guest buffer held by GStreamer memory.
struct Held {
    guest: GuestBuffer,
    epoch: Arc<Epoch>,
    queued_at: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        let status = if self.epoch.count.load(Ordering::Acquire) > self.queued_at {
            Status::from_u32(self.epoch.status.load(Ordering::Acquire)).unwrap_or(Status::Cancelled)
        } else {
            Status::Ok
        };
        self.guest.set_status(status);
        // Dropping `guest` next completes it to the used ring.
    }
}

/// Releases one reference to a [`Held`] (GStreamer's destroy notify).
unsafe extern "C" fn release_held(data: glib::ffi::gpointer) {
    // SAFETY: `data` came from `Arc::into_raw` in `wrap` and GStreamer
    // calls this exactly once per wrapped memory.
    drop(unsafe { Arc::from_raw(data as *const Held) });
}

/// Wraps the guest payload as a `gst::Buffer` without copying it.
fn wrap(held: Held) -> gst::Buffer {
    let held = Arc::new(held);
    let mut buffer = gst::Buffer::new();
    let buffer_mut = buffer.get_mut().expect("a new buffer is writable");
    for slice in held.guest.slices() {
        if slice.len == 0 {
            continue;
        }
        let owner = Arc::into_raw(Arc::clone(&held)) as glib::ffi::gpointer;
        // SAFETY: `slice` lies in guest memory that stays mapped while the
        // Held (and the Arc<dyn GuestRam> inside its GuestBuffer) lives,
        // which the owner reference passed here guarantees until GStreamer
        // calls `release_held`. The memory is flagged read-only, so GStreamer
        // never writes through the pointer.
        let memory = unsafe {
            gst::ffi::gst_memory_new_wrapped(
                gst::ffi::GST_MEMORY_FLAG_READONLY,
                slice.ptr as glib::ffi::gpointer,
                slice.len,
                0,
                slice.len,
                owner,
                Some(release_held),
            )
        };
        // SAFETY: gst_memory_new_wrapped returns a new, owned GstMemory.
        buffer_mut.append_memory(unsafe { from_glib_full(memory) });
    }
    buffer
}

/// Forwards the engine's reports to the device core.
struct Reports(Arc<OnceLock<Weak<dyn ClientEvents>>>);

impl EngineEvents for Reports {
    fn report(&self, msg: wire::Message) {
        if matches!(msg, wire::Message::Ack { .. }) {
            return; // the buffer's release is the acknowledgement
        }
        if let Some(events) = self.0.get().and_then(Weak::upgrade) {
            events.client_message(msg);
        }
    }

    fn capture_sample(&self, header: wire::SampleHeader, payload: gst::Buffer) {
        // The device core takes the payload as bytes (it writes it into a
        // capq buffer); the engine holds no lock here, so the core may
        // acknowledge at once (its Ack goes back into the engine).
        let Ok(map) = payload.map_readable() else {
            return;
        };
        if let Some(events) = self.0.get().and_then(Weak::upgrade) {
            events.captured(header, map.as_slice().to_vec());
        }
    }
}

/// The in-process uplink.
pub struct LocalUplink {
    engine: Engine,
    counters: Arc<Counters>,
    events: Arc<OnceLock<Weak<dyn ClientEvents>>>,
    epochs: Mutex<HashMap<u32, Arc<Epoch>>>,
}

impl std::fmt::Debug for LocalUplink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalUplink").finish_non_exhaustive()
    }
}

impl LocalUplink {
    /// Starts the engine with `output` sinks.
    pub fn new(output: OutputMode, counters: Arc<Counters>) -> Result<LocalUplink, EngineError> {
        let engine = Engine::new(EngineConfig::with_output(output))?;
        let events = Arc::new(OnceLock::new());
        engine.set_events(Arc::new(Reports(Arc::clone(&events))));
        Ok(LocalUplink {
            engine,
            counters,
            events,
            epochs: Mutex::new(HashMap::new()),
        })
    }

    /// The engine (verification reports, pipelines for tests).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Tells the uplink whom to report to, and connects the in-process
    /// client: the device learns its capabilities at once.
    pub fn connect(&self, events: Weak<dyn ClientEvents>) {
        let _ = self.events.set(events);
        if let Some(events) = self.events.get().and_then(Weak::upgrade) {
            events.client_connected(self.engine.capabilities());
        }
    }

    fn epoch(&self, stream: u32) -> Arc<Epoch> {
        let mut epochs = self.epochs.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(epochs.entry(stream).or_default())
    }
}

impl Uplink for LocalUplink {
    fn send(&self, msg: wire::Message) {
        self.engine.handle(&msg);
    }

    fn send_sample(&self, sample: wire::SampleHeader, guest: GuestBuffer) {
        let epoch = self.epoch(sample.stream);
        let queued_at = epoch.count.load(Ordering::Acquire);
        Counters::add(&self.counters.payload_bytes, u64::from(guest.payload_len()));
        let buffer = wrap(Held {
            guest,
            epoch,
            queued_at,
        });
        self.engine.push_sample(&sample, buffer);
    }

    fn cancel(&self, stream: u32, status: Status) {
        let epoch = self.epoch(stream);
        epoch.status.store(status.as_u32(), Ordering::Release);
        epoch.count.fetch_add(1, Ordering::AcqRel);
        // The engine drops what it queued when it handles the Flush or
        // DestroyStream the model sends next; each drop completes a buffer.
    }

    fn forget(&self, stream: u32) {
        self.epochs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&stream);
    }

    fn shutdown(&self) {}
}

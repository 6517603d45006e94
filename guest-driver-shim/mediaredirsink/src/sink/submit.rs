//! Buffers to the device: a free pool buffer for each GStreamer buffer
//! (taking back what the device completed, waiting on its flow control,
//! growing the buffers when one does not fit), queueing it, the
//! presentation's flush before the first buffer and after a flushing seek,
//! and the end of stream, queued and awaited at the client.
//!
//! The waits never hang a flush or a state change: after `unlock` or while
//! paused they wait for preroll instead ([`MediaRedirSink::wait`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::subclass::prelude::*;
use gstreamer_base::prelude::*;

use mediaredir_player::{BufferInfo, PlayerError};
use mediaredir_proto::data::FLAG_EOS;
use mediaredir_proto::status::Status;

use super::imp::{CAT, MediaRedirSink};
use super::stream::Stream;
use crate::group::{Group, Shared};

/// How often waits look at the flush flag.
const POLL: Duration = Duration::from_millis(20);

impl MediaRedirSink {
    /// Events, the client's errors on this stream, and buffers back.
    /// `finishing`: the stream's end was queued (`finish`).
    fn service(
        &self,
        shared: &mut Shared,
        stream: &mut Stream,
        finishing: bool,
    ) -> Result<(), gst::FlowError> {
        shared
            .pump_events()
            .map_err(|e| self.fail("reading events", &e))?;
        if let Some(status) = shared.error(stream.id) {
            return Err(self.fail(
                "the client failed to play the stream",
                &format!("{status:?}"),
            ));
        }
        // A client that leaves once this stream has ended (`media-client
        // --once` does, right after its last EOS) stops nothing (spec 7.15,
        // DRV-CONN-3): its disconnection fails the stream only before the
        // stream's EOS.
        if let Some(why) = shared.gone
            && !shared.is_eos(stream.id)
        {
            return Err(self.fail("playback stopped", &why));
        }
        loop {
            match shared.redir.dequeue_buffer(stream.id) {
                Ok(done) => {
                    stream.free.push(done.index);
                    match done.status {
                        Status::Ok | Status::Cancelled | Status::Dropped => {}
                        // Once the end is queued the events decide: the
                        // client's EOS (the buffer was played out, only its
                        // acknowledgement left with the client) or its
                        // disconnection without it. The completion may come
                        // in before those events.
                        Status::NoClient if finishing => {}
                        other => {
                            return Err(self.fail("a buffer came back", &format!("{other:?}")));
                        }
                    }
                }
                Err(PlayerError::WouldBlock | PlayerError::Usage(_)) => return Ok(()),
                Err(e) => return Err(self.fail("taking buffers back", &e)),
            }
        }
    }

    /// Waits for the device. After `unlock` or while paused it waits for
    /// preroll instead, as GstBaseSink wants: `unlock` comes with a flush
    /// or a shutdown (then `wait_preroll` returns FLUSHING) but also with
    /// PLAYING -> PAUSED (then it blocks until PLAYING again, and returning
    /// FLUSHING upstream would stop its streaming thread for good); and
    /// while paused the device gives nothing back.
    fn wait(&self, group: &Group) -> Result<(), gst::FlowError> {
        if self.flushing.load(Ordering::SeqCst) || self.paused.load(Ordering::SeqCst) {
            self.obj().wait_preroll()?;
            return Ok(());
        }
        group.wait(POLL);
        Ok(())
    }

    /// A free buffer of at least `need` bytes (growing the buffers when
    /// they are too small, once the device gave them all back).
    /// Fails when the device holds every buffer for `stall-timeout` while
    /// playing (a device or host daemon that died keeps them for ever).
    fn free_slot(&self, stream: &mut Stream, need: usize) -> Result<u32, gst::FlowError> {
        let stall = Duration::from_secs(u64::from(self.settings().stall_timeout));
        let mut deadline = Instant::now() + stall;
        loop {
            {
                let group = Arc::clone(&stream.group);
                let mut shared = group.lock();
                let held = stream.free.len();
                self.service(&mut shared, stream, false)?;
                if stream.free.len() > held || self.paused.load(Ordering::SeqCst) {
                    deadline = Instant::now() + stall;
                } else if Instant::now() >= deadline {
                    shared.broken = true;
                    return Err(self.fail(
                        "the device gave no buffer back",
                        &format!("within {stall:?}"),
                    ));
                }
                if need > stream.size && shared.redir.queued_count(stream.id) == 0 {
                    let size = need.next_power_of_two();
                    gst::debug!(CAT, imp = self, "buffers grown to {size} bytes");
                    let count = shared
                        .redir
                        .request_buffers(stream.id, stream.count, size)
                        .map_err(|e| self.fail("growing the buffers", &e))?;
                    stream.free = (0..count).rev().collect();
                    stream.size = shared.redir.buffer_layout(stream.id).map_or(size, |l| l.1);
                }
                if need <= stream.size
                    && let Some(slot) = stream.free.pop()
                {
                    return Ok(slot);
                }
            }
            self.wait(&Arc::clone(&stream.group))?;
        }
    }

    /// Flushes the presentation at the segment's start before the first
    /// buffer and after a flushing seek (the first sink of the group to get
    /// here does it, for all).
    pub(super) fn flush_if_pending(&self, stream: &Stream) -> Result<(), gst::FlowError> {
        let mut shared = stream.group.lock();
        if !shared.flush_pending {
            return Ok(());
        }
        let segment = self.obj().segment();
        let position = segment
            .downcast_ref::<gst::ClockTime>()
            .and_then(|s| s.to_stream_time(s.start()).or(s.start()))
            .map_or(0, gst::ClockTime::nseconds);
        let presentation = shared.presentation;
        let result = shared.redir.seek(presentation, position);
        shared
            .check(result)
            .map_err(|e| self.fail("flushing the presentation", &e))?;
        shared.flush_pending = false;
        shared.clear_eos();
        gst::debug!(CAT, imp = self, "presentation flushed at {position} ns");
        Ok(())
    }

    pub(super) fn queue(
        &self,
        stream: &mut Stream,
        data: &[u8],
        info: BufferInfo,
    ) -> Result<(), gst::FlowError> {
        self.flush_if_pending(stream)?;
        let slot = self.free_slot(stream, data.len())?;
        let mut shared = stream.group.lock();
        let Some(target) = shared.redir.buffer_mut(stream.id, slot) else {
            return Err(self.fail("a free buffer", &"is not writable"));
        };
        target[..data.len()].copy_from_slice(data);
        let result = shared.redir.queue_buffer(stream.id, slot, &info);
        shared
            .check(result)
            .map_err(|e| self.fail("queueing a buffer", &e))
    }

    /// Queues the end of stream and waits for the client to reach it.
    pub(super) fn finish(&self, stream: &mut Stream) -> Result<(), gst::FlowError> {
        let info = BufferInfo {
            flags: FLAG_EOS,
            ..BufferInfo::default()
        };
        self.queue(stream, &[], info)?;
        let timeout = Duration::from_secs(u64::from(self.settings().eos_timeout));
        let mut deadline = Instant::now() + timeout;
        loop {
            {
                let group = Arc::clone(&stream.group);
                let mut shared = group.lock();
                self.service(&mut shared, stream, true)?;
                if shared.is_eos(stream.id) {
                    return Ok(());
                }
            }
            if self.paused.load(Ordering::SeqCst) {
                deadline = Instant::now() + timeout;
            }
            if Instant::now() >= deadline {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Failed,
                    [
                        "the client did not report the end of stream within {:?}",
                        timeout
                    ]
                );
                return Ok(());
            }
            self.wait(&Arc::clone(&stream.group))?;
        }
    }
}

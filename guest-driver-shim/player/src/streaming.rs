//! V4L2 streaming I/O for playback (spec 7.8, 7.9, 9.2): `REQBUFS` +
//! `mmap` (a pool of the broker's DMA memory mapped into the player),
//! filling a buffer in place, `QBUF` (a `QUEUE` of the buffer's bytes) and
//! `DQBUF` (its `COMPLETE`). [`super::buffers::BufferQueue`] keeps who
//! holds each buffer.

use std::time::Instant;

use mediaredir_proto::broker::BrokerMessage;
use mediaredir_proto::data::{Clip, DataHeader};

use super::buffers::BufferQueue;
use super::error::status_of;
use super::mapping::Mapping;
use super::{Dequeued, MediaRedir, PlayerError};

/// Timing and flags of one queued buffer (V4L2's `struct v4l2_buffer`
/// fields). Times in nanoseconds of stream time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferInfo {
    /// Payload bytes at the start of the buffer.
    pub bytes_used: u32,
    /// Presentation time.
    pub pts: Option<u64>,
    /// Decoding time (`None` when equal to `pts` or unknown).
    pub dts: Option<u64>,
    /// Duration.
    pub duration: Option<u64>,
    /// `FLAG_*` bits of `mediaredir_proto::data` (keyframe, EOS, ...).
    pub flags: u32,
    /// Audio: decoded samples to drop at the start and end of this buffer
    /// (encoder delay, pre-skip, padding; `F_CLIPPING`).
    pub clip: Clip,
}

impl MediaRedir {
    /// `VIDIOC_REQBUFS` + `mmap`: `count` buffers of at least `size` bytes
    /// each for `stream`, in a pool of the broker's DMA memory mapped into
    /// this process. Returns the count. `count` 0 frees the buffers (all of
    /// them must be dequeued).
    pub fn request_buffers(
        &mut self,
        stream: u32,
        count: u32,
        size: usize,
    ) -> Result<u32, PlayerError> {
        if let Some(old) = self.queues.get(&stream) {
            if !old.all_dequeued() {
                return Err(PlayerError::Usage("buffers still queued"));
            }
            let pool_id = old.pool_id;
            self.queues.remove(&stream);
            self.destroy_pool(pool_id)?;
        }
        if count == 0 {
            return Ok(0);
        }
        let slot = BufferQueue::slot_size_for(size).ok_or(PlayerError::Usage("buffer size"))?;
        let total = slot
            .checked_mul(count as usize)
            .ok_or(PlayerError::Usage("buffer count times size overflows"))?;
        let (pool_id, actual, fd) =
            match self.request(&BrokerMessage::PoolCreate { size: total as u64 })? {
                (BrokerMessage::PoolCreateReply { pool_id, size }, Some(fd)) => (pool_id, size, fd),
                (BrokerMessage::Status { status }, _) => {
                    return Err(PlayerError::Status {
                        what: "POOL_CREATE",
                        status,
                    });
                }
                _ => return Err(PlayerError::Usage("unexpected reply to POOL_CREATE")),
            };
        let len = usize::try_from(actual).map_err(|_| PlayerError::Usage("pool size"))?;
        let mapping = Mapping::new(fd, len)?;
        self.queues
            .insert(stream, BufferQueue::new(pool_id, mapping, count, slot));
        Ok(count)
    }

    pub(super) fn destroy_pool(&mut self, pool_id: u32) -> Result<(), PlayerError> {
        match self.request(&BrokerMessage::PoolDestroy { pool_id })? {
            (BrokerMessage::Status { status }, _) => status_of("POOL_DESTROY", status),
            _ => Err(PlayerError::Usage("unexpected reply to POOL_DESTROY")),
        }
    }

    /// Frees the buffers of a destroyed stream once they are all back.
    pub(super) fn release_when_idle(&mut self, stream: u32) -> Result<(), PlayerError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            // Completions already read (while waiting for the destroy's
            // answer, say) first: waiting on the socket for them would
            // wait for nothing until the timeout.
            while self.take_completed(stream).is_some() {}
            if self
                .queues
                .get(&stream)
                .is_none_or(BufferQueue::all_dequeued)
            {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PlayerError::Timeout(self.timeout));
            }
            self.pump(Some(left))?;
        }
        if let Some(q) = self.queues.remove(&stream) {
            self.destroy_pool(q.pool_id)?;
        }
        Ok(())
    }

    /// Buffer count and size of each buffer of `stream`.
    pub fn buffer_layout(&self, stream: u32) -> Option<(u32, usize)> {
        self.queues.get(&stream).map(|q| (q.count(), q.slot_size()))
    }

    /// Buffer `index` of `stream` for filling in place; `None` unless the
    /// player holds it (not queued).
    pub fn buffer_mut(&mut self, stream: u32, index: u32) -> Option<&mut [u8]> {
        self.queues.get_mut(&stream)?.player_slot(index)
    }

    /// The mapped pool of `stream` (start address, bytes), for checks that
    /// payloads are written in place.
    pub fn pool_mapping(&self, stream: u32) -> Option<(*const u8, usize)> {
        self.queues.get(&stream).map(|q| (q.base(), q.mapped()))
    }

    /// `VIDIOC_QBUF`: hands buffer `index` (its first `info.bytes_used`
    /// bytes) to the device. It comes back through
    /// [`MediaRedir::dequeue_buffer`].
    pub fn queue_buffer(
        &mut self,
        stream: u32,
        index: u32,
        info: &BufferInfo,
    ) -> Result<(), PlayerError> {
        let queue = self.held_buffer(stream, index)?;
        if info.bytes_used as usize > queue.slot_size() {
            return Err(PlayerError::Usage("bytes_used larger than the buffer"));
        }
        let message = BrokerMessage::Queue {
            pool_id: queue.pool_id,
            offset: queue.offset(index),
            header: DataHeader {
                clip: info.clip,
                stream_id: stream,
                generation: 0,
                flags: info.flags,
                payload_len: info.bytes_used,
                pts: info.pts,
                dts: info.dts,
                duration: info.duration,
            },
        };
        self.send_buffer(stream, index, &message)
    }

    /// The buffers of `stream`, if the player holds their buffer `index`
    /// (the check before a `QBUF`).
    pub(super) fn held_buffer(&self, stream: u32, index: u32) -> Result<&BufferQueue, PlayerError> {
        let queue = self
            .queues
            .get(&stream)
            .ok_or(PlayerError::Usage("no buffers requested for this stream"))?;
        if !queue.is_players(index) {
            return Err(PlayerError::Usage("buffer index not held by the player"));
        }
        Ok(queue)
    }

    /// Sends `message` (the `QUEUE` or `CAPTURE_POST` of buffer `index` of
    /// `stream`) and marks the buffer queued under its tag.
    pub(super) fn send_buffer(
        &mut self,
        stream: u32,
        index: u32,
        message: &BrokerMessage,
    ) -> Result<(), PlayerError> {
        let tag = self.tag();
        self.send(tag, message)?;
        if let Some(q) = self.queues.get_mut(&stream) {
            q.mark_queued(index, tag);
        }
        Ok(())
    }

    pub(super) fn take_completed(&mut self, stream: u32) -> Option<Dequeued> {
        let queue = self.queues.get_mut(&stream)?;
        let (index, tag) = queue
            .queued_tags()
            .find(|(_, tag)| self.completions.contains_key(tag))?;
        let status = self.completions.remove(&tag)?;
        queue.mark_dequeued(index);
        Some(Dequeued { index, status })
    }

    /// `VIDIOC_DQBUF`: the next buffer of `stream` the device gave back,
    /// with its status.
    pub fn dequeue_buffer(&mut self, stream: u32) -> Result<Dequeued, PlayerError> {
        if !self.queues.contains_key(&stream) {
            return Err(PlayerError::Usage("no buffers requested for this stream"));
        }
        self.pump_all()?;
        if let Some(done) = self.take_completed(stream) {
            return Ok(done);
        }
        if self
            .queues
            .get(&stream)
            .is_some_and(BufferQueue::all_dequeued)
        {
            return Err(PlayerError::Usage("no buffer queued"));
        }
        if self.nonblocking {
            return Err(PlayerError::WouldBlock);
        }
        self.wait_for(|me| me.take_completed(stream))
    }

    /// Buffers of `stream` the device holds.
    pub fn queued_count(&self, stream: u32) -> usize {
        self.queues
            .get(&stream)
            .map_or(0, |q| q.queued_tags().count())
    }
}

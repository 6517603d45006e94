//! A stream's buffers during playback: a sample written into a free
//! buffer and queued, buffers taken back as the device completes them
//! (the device's flow control: a buffer is refilled only after it came
//! back), grown when a sample does not fit, and waited for.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mediaredir_player::seqpacket::wait_readable;
use mediaredir_player::{BufferInfo, PlayerError};
use mediaredir_proto::data::{FLAG_DECODE_ONLY, FLAG_DISCONT, FLAG_KEYFRAME};
use mediaredir_proto::status::Status;
use redir_demux::{Demuxer, Sample, Track};

use super::Session;
use super::seek::Skip;

impl Session<'_> {
    /// Writes `sample` into a free buffer of its stream and queues it;
    /// `false` when a seek came first (the sample is then stale).
    pub(super) fn submit(
        &mut self,
        index: usize,
        sample: &Sample,
        tracks: &[Track],
        demuxer: &mut Box<dyn Demuxer>,
        skip: &mut Option<Skip>,
    ) -> anyhow::Result<bool> {
        if sample.data.len() > self.streams[index].size {
            self.grow(index, sample.data.len())?;
        }
        let seeks = self.seeks;
        let slot = self.free_buffer(index, tracks, demuxer, skip)?;
        if self.seeks != seeks {
            self.streams[index].free.push(slot);
            return Ok(false);
        }
        let id = self.streams[index].id;
        let buffer = self
            .redir
            .buffer_mut(id, slot)
            .context("a free buffer is not writable")?;
        buffer[..sample.data.len()].copy_from_slice(&sample.data);
        self.redir.queue_buffer(
            id,
            slot,
            &BufferInfo {
                bytes_used: u32::try_from(sample.data.len())?,
                pts: sample.pts,
                // Matroska has no DTS: it stays None.
                dts: sample.dts,
                duration: sample.duration,
                // Lost data (an MPEG-TS continuity gap) tells the decoder
                // to resync rather than to continue.
                flags: if sample.keyframe { FLAG_KEYFRAME } else { 0 }
                    | if sample.discont { FLAG_DISCONT } else { 0 }
                    | if sample.decode_only {
                        FLAG_DECODE_ONLY
                    } else {
                        0
                    },
                clip: sample.clip,
            },
        )?;
        Ok(true)
    }

    /// Replaces the buffers of stream `index` by larger ones (all must come
    /// back first).
    fn grow(&mut self, index: usize, need: usize) -> anyhow::Result<()> {
        self.collect_all(index)?;
        let id = self.streams[index].id;
        let size = need.next_power_of_two();
        eprintln!("redir-play: stream {id}: buffers grown to {size} bytes");
        let count = self
            .redir
            .request_buffers(id, self.settings.buffers, size)?;
        let stream = &mut self.streams[index];
        stream.free = (0..count).rev().collect();
        stream.size = self.redir.buffer_layout(id).map_or(size, |(_, s)| s);
        Ok(())
    }

    /// Waits until every buffer of stream `index` is back.
    pub(super) fn collect_all(&mut self, index: usize) -> anyhow::Result<()> {
        let id = self.streams[index].id;
        let deadline = Instant::now() + self.settings.stall_timeout;
        while self.redir.queued_count(id) > 0 {
            if !self.reap(index)? {
                if Instant::now() >= deadline {
                    bail!(
                        "stream {id}: {} buffers not given back within {:?}",
                        self.redir.queued_count(id),
                        self.settings.stall_timeout
                    );
                }
                self.wait(Duration::from_millis(50))?;
            }
        }
        Ok(())
    }

    /// Takes back the buffers of stream `index` the device completed;
    /// whether any came back.
    fn reap(&mut self, index: usize) -> anyhow::Result<bool> {
        let id = self.streams[index].id;
        let mut any = false;
        loop {
            match self.redir.dequeue_buffer(id) {
                Ok(done) => {
                    any = true;
                    let stream = &mut self.streams[index];
                    stream.free.push(done.index);
                    match done.status {
                        Status::Ok => {}
                        // Played out (the client reported the end of the
                        // stream), its acknowledgement gone with the client.
                        Status::NoClient if stream.eos => {}
                        // The client left mid-stream: the main loop waits
                        // for it and goes on from a keyframe.
                        Status::NoClient => self.client_lost = true,
                        Status::Cancelled => stream.cancelled += 1,
                        Status::Dropped => stream.dropped += 1,
                        other => bail!("a buffer of stream {id} completed with {other:?}"),
                    }
                }
                Err(PlayerError::WouldBlock | PlayerError::Usage(_)) => return Ok(any),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A buffer of stream `index` the player holds, waiting (and serving
    /// events and commands) while the device holds them all.
    pub(super) fn free_buffer(
        &mut self,
        index: usize,
        tracks: &[Track],
        demuxer: &mut Box<dyn Demuxer>,
        skip: &mut Option<Skip>,
    ) -> anyhow::Result<u32> {
        let mut deadline = Instant::now() + self.settings.stall_timeout;
        loop {
            if let Some(slot) = self.streams[index].free.pop() {
                return Ok(slot);
            }
            if self.reap(index)? {
                continue;
            }
            self.service(tracks, demuxer, skip)?;
            if self.paused {
                // Nothing comes back while paused: that is not a stall.
                deadline = Instant::now() + self.settings.stall_timeout;
            }
            if Instant::now() >= deadline {
                bail!(
                    "stream {}: no buffer came back within {:?}",
                    self.streams[index].id,
                    self.settings.stall_timeout
                );
            }
            self.wait(Duration::from_millis(50))?;
        }
    }

    /// Waits up to `timeout` for the broker to send something.
    pub(super) fn wait(&self, timeout: Duration) -> anyhow::Result<()> {
        wait_readable(&self.redir, timeout)?;
        Ok(())
    }
}

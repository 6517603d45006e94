//! The capq (F_CAPTURE): the driver keeps buffers posted there, and the
//! device writes captured samples (a data header and the payload) into
//! them; each buffer is posted again as soon as it has been read.

use std::collections::HashMap;
use std::sync::Arc;

use mediaredir_proto::data::{DATA_HDR_SIZE, DataHeader};
use mediaredir_proto::device::CAPQ;

use super::{DriverError, MediaDevice, notify_if_needed};
use crate::dma::{DmaBuffer, DmaMemory};
use crate::transport::Transport;
use crate::virtqueue::Virtqueue;

/// A sample the device wrote into a capq buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedSample {
    /// Its data header (stream, generation, flags, times).
    pub header: DataHeader,
    /// The sample.
    pub payload: Vec<u8>,
}

/// Buffers posted on capq.
#[derive(Debug)]
pub(super) struct CapturePool {
    buffer: DmaBuffer,
    slot: usize,
    by_head: HashMap<u16, usize>,
}

impl CapturePool {
    /// Posts `buffers` capture buffers (at most the queue size) of
    /// `payload_bytes` each after the data header on `capq`.
    pub(super) fn post(
        dma: &Arc<DmaMemory>,
        capq: &mut Virtqueue,
        buffers: u16,
        payload_bytes: usize,
    ) -> Result<CapturePool, DriverError> {
        let count = usize::from(buffers.min(capq.size()));
        let slot = (DATA_HDR_SIZE + payload_bytes).next_multiple_of(64);
        let buffer = dma.alloc(count * slot, 64)?;
        let mut by_head = HashMap::with_capacity(count);
        for i in 0..count {
            let head = capq.add_chain(&[], &[buffer.segment(i * slot, slot)?])?;
            by_head.insert(head, i);
        }
        Ok(CapturePool {
            buffer,
            slot,
            by_head,
        })
    }
}

impl<T: Transport> MediaDevice<T> {
    /// Samples the device wrote into capq buffers since the last call,
    /// without waiting; each buffer is posted again at once. Samples of
    /// another generation are dropped (DRV-CAP-3).
    pub fn poll_captures(&mut self) -> Result<Vec<CapturedSample>, DriverError> {
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        let generation = state.config.generation;
        let Some(pool) = state.capture.as_mut() else {
            return Ok(Vec::new());
        };
        let vq = &mut state.queues[usize::from(CAPQ)];
        let mut out = Vec::new();
        while let Some(used) = vq.poll_used() {
            let Some(slot) = pool.by_head.remove(&used.head) else {
                log::warn!("capq: used head {} is not a capture buffer", used.head);
                continue;
            };
            let offset = slot * pool.slot;
            let len = (used.len as usize).min(pool.slot);
            let bytes = pool.buffer.read_vec(offset, len)?;
            let head = vq.add_chain(&[], &[pool.buffer.segment(offset, pool.slot)?])?;
            pool.by_head.insert(head, slot);
            let Some(header) = bytes
                .get(..DATA_HDR_SIZE)
                .and_then(|h| DataHeader::decode(h, u32::MAX).ok())
            else {
                log::warn!("capq: a buffer came back with {len} bytes and no valid header");
                continue;
            };
            let end = DATA_HDR_SIZE + header.payload_len as usize;
            if header.generation != generation || end > len {
                log::warn!(
                    "capq: sample of stream {} dropped (generation {:#x}, {} of {len} bytes)",
                    header.stream_id,
                    header.generation,
                    end
                );
                continue;
            }
            out.push(CapturedSample {
                header,
                payload: bytes[DATA_HDR_SIZE..end].to_vec(),
            });
        }
        notify_if_needed(&mut self.transport, &mut state.queues[usize::from(CAPQ)])?;
        Ok(out)
    }

    /// Index of the capture queue (buffers for it go through
    /// [`MediaDevice::queue_mut`] for now).
    pub fn capture_queue(&self) -> u16 {
        CAPQ
    }
}

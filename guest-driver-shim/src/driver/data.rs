//! Data buffers on the playback queues (txqs): each sample goes as a chain
//! of its data header, its payload segments (direct, or through an indirect
//! table above a threshold) and an 8-byte status the device writes; a
//! [`DataToken`] names it until its completion is collected.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediaredir_proto::ProtoError;
use mediaredir_proto::data::{Clip, DATA_HDR_SIZE, DATA_STATUS_SIZE, DataHeader, decode_status};
use mediaredir_proto::device::TXQ_BASE;
use mediaredir_proto::status::Status;

use super::{
    DriverError, FEATURE_CLIPPING, MediaDevice, State, next_used, notify_if_needed, queue_full,
};
use crate::dma::DmaBuffer;
use crate::transport::Transport;
use crate::virtqueue::UsedElem;

/// Identifies a submitted data buffer until it completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataToken(pub u64);

/// A completed data buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCompletion {
    /// The token [`MediaDevice::submit_data`] returned.
    pub token: DataToken,
    /// The 8-byte status the device wrote (or why it is unusable).
    pub status: Result<Status, ProtoError>,
    /// Used length the device reported (8 for a well-formed completion).
    pub used_len: u32,
}

/// Buffers of a data chain in flight.
#[derive(Debug)]
pub(super) struct DataPending {
    token: DataToken,
    /// Header (48 bytes) followed by the status (8 bytes).
    header: DmaBuffer,
    _payload: Option<DmaBuffer>,
}

impl<T: Transport> MediaDevice<T> {
    fn txq_queue(&self, txq: u16) -> Result<u16, DriverError> {
        let state = self.state()?;
        if u32::from(txq) >= state.config.limits.num_txqs {
            return Err(DriverError::NoSuchTxq(txq));
        }
        Ok(TXQ_BASE + txq)
    }

    /// Queues a data buffer on playback queue `txq`: `header` (generation 0
    /// is replaced by the current one; every other field is sent as given)
    /// followed by `payload` segments, which must lie in
    /// [`MediaDevice::dma`] memory and stay untouched until completion.
    pub fn submit_data(
        &mut self,
        txq: u16,
        header: &DataHeader,
        payload: &[(u64, u32)],
    ) -> Result<DataToken, DriverError> {
        self.submit(txq, header, payload, None)
    }

    /// Like [`MediaDevice::submit_data`], copying `payload` into new DMA
    /// memory first; `header.payload_len` is set to its length.
    pub fn submit_data_copy(
        &mut self,
        txq: u16,
        header: &DataHeader,
        payload: &[u8],
    ) -> Result<DataToken, DriverError> {
        let buffer = self.dma().alloc(payload.len().max(1), 64)?;
        buffer.write_at(0, payload)?;
        let segment = buffer.segment(0, payload.len())?;
        let header = DataHeader {
            payload_len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            ..*header
        };
        let segments: &[(u64, u32)] = if payload.is_empty() { &[] } else { &[segment] };
        self.submit(txq, &header, segments, Some(buffer))
    }

    fn submit(
        &mut self,
        txq: u16,
        header: &DataHeader,
        payload: &[(u64, u32)],
        owned: Option<DmaBuffer>,
    ) -> Result<DataToken, DriverError> {
        let queue = self.txq_queue(txq)?;
        let threshold = self.options.indirect_threshold;
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        let mut header = *header;
        if header.generation == 0 {
            header.generation = state.config.generation;
        }
        if state.features & FEATURE_CLIPPING == 0 {
            // Without F_CLIPPING the bytes are reserved (spec, 7.8): the
            // audio plays untrimmed rather than being refused.
            header.clip = Clip::NONE;
        }
        let dma = Arc::clone(self.transport.dma());
        let head_buffer = dma.alloc(DATA_HDR_SIZE + DATA_STATUS_SIZE, 64)?;
        head_buffer.write_at(0, &header.to_bytes())?;
        let mut readable = Vec::with_capacity(payload.len() + 1);
        readable.push(head_buffer.segment(0, DATA_HDR_SIZE)?);
        readable.extend_from_slice(payload);
        let writable = [head_buffer.segment(DATA_HDR_SIZE, DATA_STATUS_SIZE)?];
        let vq = &mut state.queues[usize::from(queue)];
        let indirect = vq.features().indirect && readable.len() + 1 > threshold;
        let head = if indirect {
            vq.add_indirect_chain(&readable, &writable)
        } else {
            vq.add_chain(&readable, &writable)
        }
        .map_err(queue_full(queue))?;
        let token = DataToken(self.next_token);
        self.next_token += 1;
        state.data.entry(queue).or_default().insert(
            head,
            DataPending {
                token,
                header: head_buffer,
                _payload: owned,
            },
        );
        notify_if_needed(&mut self.transport, vq)?;
        Ok(token)
    }

    fn collect_completions(
        state: &mut State,
        queue: u16,
        used: UsedElem,
        out: &mut Vec<DataCompletion>,
    ) {
        let Some(pending) = state
            .data
            .get_mut(&queue)
            .and_then(|map| map.remove(&used.head))
        else {
            log::warn!("txq {queue}: used head {} has no data buffer", used.head);
            return;
        };
        let status = if (used.len as usize) < DATA_STATUS_SIZE {
            Err(ProtoError::Truncated {
                what: "data status",
                need: DATA_STATUS_SIZE,
                got: used.len as usize,
            })
        } else {
            pending
                .header
                .read_vec(DATA_HDR_SIZE, DATA_STATUS_SIZE)
                .map_err(|_| ProtoError::Truncated {
                    what: "data status",
                    need: DATA_STATUS_SIZE,
                    got: 0,
                })
                .and_then(|bytes| decode_status(&bytes))
        };
        out.push(DataCompletion {
            token: pending.token,
            status,
            used_len: used.len,
        });
    }

    /// Completed data buffers of `txq`, without waiting.
    pub fn poll_data_completions(&mut self, txq: u16) -> Result<Vec<DataCompletion>, DriverError> {
        let queue = self.txq_queue(txq)?;
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        let mut out = Vec::new();
        while let Some(used) = state.queues[usize::from(queue)].poll_used() {
            Self::collect_completions(state, queue, used, &mut out);
        }
        Ok(out)
    }

    /// Completed data buffers of `txq`, waiting up to `timeout` for the first
    /// one (an empty list on timeout).
    pub fn wait_data_completions(
        &mut self,
        txq: u16,
        timeout: Duration,
    ) -> Result<Vec<DataCompletion>, DriverError> {
        let queue = self.txq_queue(txq)?;
        let deadline = Instant::now() + timeout;
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        let mut out = Vec::new();
        while out.is_empty() {
            let vq = &mut state.queues[usize::from(queue)];
            let Some(used) = next_used(&mut self.transport, vq, deadline)? else {
                break;
            };
            Self::collect_completions(state, queue, used, &mut out);
        }
        while let Some(used) = state.queues[usize::from(queue)].poll_used() {
            Self::collect_completions(state, queue, used, &mut out);
        }
        Ok(out)
    }

    /// Data buffers of `txq` the device still holds.
    pub fn data_in_flight(&self, txq: u16) -> Result<usize, DriverError> {
        let queue = self.txq_queue(txq)?;
        Ok(self.state()?.data.get(&queue).map_or(0, HashMap::len))
    }
}

//! Playback buffers: a `QUEUE` checked against the client's streams and
//! pools, then put on the stream's txq as a chain pointing into the pool
//! (no copy), or kept in the txq's backlog, in order, while the ring is
//! full.

use std::collections::VecDeque;

use mediaredir_proto::broker::BrokerMessage;
use mediaredir_proto::data::DataHeader;
use mediaredir_proto::status::Status;

use super::{Broker, ClientId};
use crate::broker::BrokerError;
use crate::driver::DriverError;
use crate::transport::Transport;

/// A `QUEUE` the device holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct InFlight {
    pub(super) client: ClientId,
    pub(super) tag: u32,
    pub(super) pool: u32,
}

/// A `QUEUE` waiting for room on its txq.
#[derive(Debug)]
pub(super) struct Waiting {
    pub(super) client: ClientId,
    pub(super) tag: u32,
    pub(super) pool: u32,
    pub(super) header: DataHeader,
    pub(super) segments: Vec<(u64, u32)>,
}

impl<T: Transport> Broker<T> {
    pub(super) fn queue(
        &mut self,
        id: ClientId,
        tag: u32,
        pool_id: u32,
        offset: u64,
        mut header: DataHeader,
    ) -> Result<(), BrokerError> {
        let complete = |status| BrokerMessage::Complete { status };
        let Some(client) = self.clients.get(&id) else {
            return Ok(());
        };
        let Some(stream) = client.owned.streams.get(&header.stream_id).copied() else {
            self.reply(id, tag, &complete(Status::NoEntity), None);
            return Ok(());
        };
        let Some(pool) = self
            .pools
            .get(&(id, pool_id))
            .filter(|p| p.destroy.is_none())
        else {
            self.reply(id, tag, &complete(Status::NoEntity), None);
            return Ok(());
        };
        if !stream.playback {
            self.reply(id, tag, &complete(Status::Invalid), None);
            return Ok(());
        }
        let segments = if header.payload_len == 0 {
            Ok(Vec::new())
        } else {
            pool.memory.segments(offset, u64::from(header.payload_len))
        };
        let Ok(segments) = segments else {
            log::warn!(
                "broker: client {id}: QUEUE {offset}+{} outside pool {pool_id}",
                header.payload_len
            );
            self.reply(id, tag, &complete(Status::Invalid), None);
            return Ok(());
        };
        header.generation = self.generation;
        let waiting = Waiting {
            client: id,
            tag,
            pool: pool_id,
            header,
            segments,
        };
        let backlog = self.waiting.entry(stream.txq).or_default();
        if backlog.is_empty() {
            self.submit_or_wait(stream.txq, waiting, false)?;
        } else {
            backlog.push_back(waiting);
        }
        Ok(())
    }

    /// Submits `w`, or keeps it in the txq's backlog (at the front when it
    /// came from there) when the ring is full. Returns whether the ring took
    /// it (or it was answered with an error).
    fn submit_or_wait(&mut self, txq: u16, w: Waiting, front: bool) -> Result<bool, BrokerError> {
        match self.dev.submit_data(txq, &w.header, &w.segments) {
            Ok(token) => {
                if let Some(pool) = self.pools.get_mut(&(w.client, w.pool)) {
                    pool.in_flight += 1;
                }
                self.in_flight.insert(
                    token,
                    InFlight {
                        client: w.client,
                        tag: w.tag,
                        pool: w.pool,
                    },
                );
                Ok(true)
            }
            Err(DriverError::QueueFull(_)) => {
                let backlog = self.waiting.entry(txq).or_default();
                if front {
                    backlog.push_front(w);
                } else {
                    backlog.push_back(w);
                }
                Ok(false)
            }
            Err(DriverError::NoSuchTxq(_)) => {
                self.reply(
                    w.client,
                    w.tag,
                    &BrokerMessage::Complete {
                        status: Status::Invalid,
                    },
                    None,
                );
                Ok(true)
            }
            Err(e) => {
                log::warn!("broker: submitting on txq {txq}: {e}");
                self.reply(
                    w.client,
                    w.tag,
                    &BrokerMessage::Complete { status: Status::Io },
                    None,
                );
                Ok(true)
            }
        }
    }

    pub(super) fn drain_backlog(&mut self, txq: u16) -> Result<(), BrokerError> {
        while let Some(w) = self.waiting.get_mut(&txq).and_then(VecDeque::pop_front) {
            if !self.clients.contains_key(&w.client) {
                continue;
            }
            if !self.submit_or_wait(txq, w, true)? {
                return Ok(());
            }
        }
        Ok(())
    }
}

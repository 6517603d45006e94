//! Buffer pools: DMA memory the broker allocates for a client and shares
//! with it as a memfd (`POOL_CREATE`), within the per-client limits, and
//! frees on `POOL_DESTROY` or when the client is gone, once the device
//! holds none of its buffers.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use mediaredir_proto::broker::BrokerMessage;
use mediaredir_proto::status::Status;

use super::{Broker, ClientId};
use crate::broker::BrokerError;
use crate::broker::client::CapturePost;
use crate::dma::DmaMemory;
use crate::transport::Transport;

/// A pool: DMA memory shared with one client.
#[derive(Debug)]
pub(super) struct Pool {
    pub(super) memory: Arc<DmaMemory>,
    /// Buffers of the pool the device holds.
    pub(super) in_flight: usize,
    /// `POOL_DESTROY` waiting for `in_flight` to reach 0 (its tag), or the
    /// owner is gone (`Some(None)`).
    pub(super) destroy: Option<Option<u32>>,
}

impl<T: Transport> Broker<T> {
    pub(super) fn pool_create(&mut self, id: ClientId, tag: u32, size: u64) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if size == 0 {
            self.status(id, tag, Status::Invalid);
            return;
        }
        if client.pool_count >= self.options.max_pools_per_client
            || client.pool_bytes.saturating_add(size) > self.options.max_pool_bytes_per_client
        {
            log::info!("broker: client {id}: pool of {size} bytes over the limits");
            self.status(id, tag, Status::Limit);
            return;
        }
        let Ok(wanted) = usize::try_from(size) else {
            self.status(id, tag, Status::Limit);
            return;
        };
        let memory = match self.dev.new_memory(wanted) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("broker: pool of {size} bytes: {e}");
                self.status(id, tag, Status::Io);
                return;
            }
        };
        let fd = memory
            .file()
            .and_then(|f| f.try_clone().ok())
            .map(OwnedFd::from);
        let Some(fd) = fd else {
            log::warn!("broker: pool memory has no file to share");
            let _ = self.dev.release_memory(&memory);
            self.status(id, tag, Status::Io);
            return;
        };
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let pool_id = client.pool_id();
        client.pool_count += 1;
        client.pool_bytes += memory.size();
        let actual = memory.size();
        self.pools.insert(
            (id, pool_id),
            Pool {
                memory,
                in_flight: 0,
                destroy: None,
            },
        );
        log::debug!("broker: client {id}: pool {pool_id} of {actual} bytes");
        self.reply(
            id,
            tag,
            &BrokerMessage::PoolCreateReply {
                pool_id,
                size: actual,
            },
            Some(fd),
        );
    }

    pub(super) fn pool_destroy(
        &mut self,
        id: ClientId,
        tag: u32,
        pool_id: u32,
    ) -> Result<(), BrokerError> {
        match self.pools.get_mut(&(id, pool_id)) {
            None => self.status(id, tag, Status::NoEntity),
            Some(pool) if pool.destroy.is_some() => self.status(id, tag, Status::BadState),
            Some(pool) => {
                pool.destroy = Some(Some(tag));
                let returned: Vec<u32> = match self.clients.get_mut(&id) {
                    Some(client) => {
                        let (gone, kept) = std::mem::take(&mut client.posts)
                            .into_iter()
                            .partition(|p| p.pool == pool_id);
                        client.posts = kept;
                        gone.into_iter().map(|p: CapturePost| p.tag).collect()
                    }
                    None => Vec::new(),
                };
                for post in returned {
                    self.status(id, post, Status::Cancelled);
                }
                self.release_idle_pool(id, pool_id)?;
            }
        }
        Ok(())
    }

    /// Unmaps pool `(id, pool_id)` if it is being destroyed and the device
    /// holds none of its buffers; answers its `POOL_DESTROY`.
    pub(super) fn release_idle_pool(
        &mut self,
        id: ClientId,
        pool_id: u32,
    ) -> Result<(), BrokerError> {
        let ready = self
            .pools
            .get(&(id, pool_id))
            .is_some_and(|p| p.destroy.is_some() && p.in_flight == 0);
        // Waiting requests of the pool have not reached the device.
        let queued = self
            .waiting
            .values()
            .flatten()
            .any(|w| w.client == id && w.pool == pool_id);
        if !ready || queued {
            return Ok(());
        }
        let Some(pool) = self.pools.remove(&(id, pool_id)) else {
            return Ok(());
        };
        if let Err(e) = self.dev.release_memory(&pool.memory) {
            log::warn!("broker: releasing pool memory: {e}");
        }
        if let Some(client) = self.clients.get_mut(&id) {
            client.pool_count -= 1;
            client.pool_bytes -= pool.memory.size();
        }
        if let Some(Some(tag)) = pool.destroy {
            self.status(id, tag, Status::Ok);
        }
        Ok(())
    }
}

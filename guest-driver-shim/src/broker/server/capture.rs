//! Capture: the regions of their pools players offer (`CAPTURE_POST`), and
//! each captured sample copied into the oldest region of the client that
//! owns its stream (spec 9.2: capq buffers are shared, so the player gets
//! a copy).

use mediaredir_proto::broker::BrokerMessage;
use mediaredir_proto::status::Status;

use super::{Broker, ClientId};
use crate::broker::client::CapturePost;
use crate::driver::CapturedSample;
use crate::transport::Transport;

impl<T: Transport> Broker<T> {
    /// `CAPTURE_POST`: keeps `pool[offset..offset + len]` for the next
    /// capture sample of one of the client's streams.
    pub(super) fn capture_post(
        &mut self,
        id: ClientId,
        tag: u32,
        pool_id: u32,
        offset: u64,
        len: u64,
    ) {
        let Some(pool) = self
            .pools
            .get(&(id, pool_id))
            .filter(|p| p.destroy.is_none())
        else {
            self.status(id, tag, Status::NoEntity);
            return;
        };
        let fits = offset
            .checked_add(len)
            .is_some_and(|end| len > 0 && end <= pool.memory.size());
        if !fits {
            log::warn!("broker: client {id}: CAPTURE_POST {offset}+{len} outside pool {pool_id}");
            self.status(id, tag, Status::Invalid);
            return;
        }
        log::debug!("broker: client {id}: capture post {tag} in pool {pool_id} at {offset}+{len}");
        if let Some(client) = self.clients.get_mut(&id) {
            client.posts.push_back(CapturePost {
                pool: pool_id,
                offset,
                len,
                tag,
            });
        }
    }

    /// Copies a captured sample into the oldest post of the client that
    /// owns its stream (spec 9.2: capq buffers are shared, so the player
    /// gets a copy, never a mapping of them).
    pub(super) fn deliver_capture(&mut self, sample: &CapturedSample) {
        let stream = sample.header.stream_id;
        let Some((&id, _)) = self
            .clients
            .iter()
            .find(|(_, c)| c.owned.streams.contains_key(&stream))
        else {
            log::debug!("broker: capture sample of unowned stream {stream} dropped");
            return;
        };
        loop {
            let Some(post) = self.clients.get_mut(&id).and_then(|c| c.posts.pop_front()) else {
                log::info!(
                    "broker: client {id} has no capture post; sample of stream {stream} dropped"
                );
                return;
            };
            if (sample.payload.len() as u64) > post.len {
                self.status(id, post.tag, Status::Limit);
                continue;
            }
            let Some(pool) = self.pools.get(&(id, post.pool)) else {
                self.status(id, post.tag, Status::Cancelled);
                continue;
            };
            let gpa = pool.memory.base() + post.offset;
            if let Err(e) = pool.memory.write(gpa, &sample.payload) {
                log::warn!("broker: writing a capture sample: {e}");
                self.status(id, post.tag, Status::Io);
                continue;
            }
            self.reply(
                id,
                post.tag,
                &BrokerMessage::CaptureFilled {
                    header: sample.header,
                },
                None,
            );
            return;
        }
    }
}

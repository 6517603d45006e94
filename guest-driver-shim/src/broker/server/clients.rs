//! The players' side of the broker loop: accepting connections (up to
//! `max_clients`), reading their packets a burst at a time and dispatching
//! each message, `HELLO`, answering, and dropping the clients that left
//! with what they created.

use std::io;
use std::os::fd::OwnedFd;

use mediaredir_player::seqpacket::Received;
use mediaredir_proto::ProtoError;
use mediaredir_proto::broker::{BROKER_VERSION, BrokerMessage, MAX_MESSAGE, Sender};
use mediaredir_proto::control::{ControlRequest, Request};
use mediaredir_proto::status::Status;

use super::{Broker, ClientId};
use crate::broker::BrokerError;
use crate::broker::client::Client;
use crate::transport::Transport;

/// Client messages handled per client per loop turn (fairness).
const BURST: usize = 32;

impl<T: Transport> Broker<T> {
    pub(super) fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok(conn) => {
                    if self.clients.len() >= self.options.max_clients {
                        log::warn!(
                            "broker: {} clients already; connection closed",
                            self.clients.len()
                        );
                        continue;
                    }
                    let id = self.next_client;
                    self.next_client += 1;
                    let mut client = Client::new(conn);
                    client.generation = self.generation;
                    self.clients.insert(id, client);
                    log::info!("broker: client {id} connected");
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("broker: accept: {e}");
                    return;
                }
            }
        }
    }

    pub(super) fn read_client(&mut self, id: ClientId) -> Result<(), BrokerError> {
        for _ in 0..BURST {
            if !self.reads_from(id) {
                return Ok(());
            }
            let Some(client) = self.clients.get_mut(&id) else {
                return Ok(());
            };
            let received = match client.conn.recv(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => {
                    log::info!("broker: client {id}: {e}");
                    client.dead = true;
                    return Ok(());
                }
            };
            let (len, truncated) = match received {
                Received::Closed => {
                    client.dead = true;
                    return Ok(());
                }
                // A client never sends descriptors; one that does has it
                // closed here (dropped).
                Received::Packet { len, truncated, .. } => (len, truncated),
            };
            if truncated {
                log::warn!("broker: client {id}: packet over {MAX_MESSAGE} bytes refused");
                client.send(
                    0,
                    &BrokerMessage::Status {
                        status: Status::Invalid,
                    },
                    None,
                );
                continue;
            }
            // The buffer is lent out while the packet is handled: no
            // allocation per message.
            let buf = std::mem::take(&mut self.buf);
            let handled = self.handle_packet(id, &buf[..len]);
            self.buf = buf;
            handled?;
        }
        Ok(())
    }

    pub(super) fn reply(
        &mut self,
        id: ClientId,
        tag: u32,
        message: &BrokerMessage,
        fd: Option<OwnedFd>,
    ) {
        if let Some(client) = self.clients.get_mut(&id) {
            client.send(tag, message, fd);
        }
    }

    pub(super) fn status(&mut self, id: ClientId, tag: u32, status: Status) {
        self.reply(id, tag, &BrokerMessage::Status { status }, None);
    }

    fn handle_packet(&mut self, id: ClientId, packet: &[u8]) -> Result<(), BrokerError> {
        let tag = packet
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes);
        let message = match BrokerMessage::decode(packet, Sender::Client) {
            Ok((_, message)) => message,
            Err(e) => {
                let status = match e {
                    ProtoError::UnknownBrokerMessage(_) => Status::UnknownRequest,
                    _ => Status::Invalid,
                };
                log::warn!("broker: client {id}: malformed message: {e}");
                self.status(id, tag, status);
                return Ok(());
            }
        };
        let Some(client) = self.clients.get(&id) else {
            return Ok(());
        };
        if let BrokerMessage::Hello { version } = message {
            return self.hello(id, tag, version);
        }
        if !client.hello {
            self.status(id, tag, Status::BadState);
            return Ok(());
        }
        let stale = client.stale;
        match message {
            // Checked (stale included) when its turn comes, after the
            // client's earlier requests.
            BrokerMessage::Control(bytes) => self.control(id, tag, &bytes),
            BrokerMessage::CapturePost { .. } if stale => self.status(id, tag, Status::Stale),
            BrokerMessage::Queue { .. } if stale => {
                self.reply(
                    id,
                    tag,
                    &BrokerMessage::Complete {
                        status: Status::Stale,
                    },
                    None,
                );
            }
            BrokerMessage::Queue {
                pool_id,
                offset,
                header,
            } => self.queue(id, tag, pool_id, offset, header)?,
            BrokerMessage::PoolCreate { size } => self.pool_create(id, tag, size),
            BrokerMessage::PoolDestroy { pool_id } => self.pool_destroy(id, tag, pool_id)?,
            BrokerMessage::CapturePost {
                pool_id,
                offset,
                len,
            } => self.capture_post(id, tag, pool_id, offset, len),
            _ => self.status(id, tag, Status::Invalid),
        }
        Ok(())
    }

    fn hello(&mut self, id: ClientId, tag: u32, version: u32) -> Result<(), BrokerError> {
        if version != BROKER_VERSION {
            self.status(id, tag, Status::Unsupported);
            return Ok(());
        }
        let generation = self.generation;
        if let Some(client) = self.clients.get_mut(&id) {
            client.hello = true;
            client.stale = false;
            client.generation = generation;
        }
        self.reply(
            id,
            tag,
            &BrokerMessage::HelloReply {
                version: BROKER_VERSION,
                generation,
            },
            None,
        );
        Ok(())
    }

    /// Drops clients whose socket closed: destroys what they created (their
    /// buffers complete `CANCELLED`; the destroy requests go the way of
    /// every control request, without waiting) and frees their pools once
    /// the device holds none of their buffers (BRK-5).
    pub(super) fn sweep_dead(&mut self) -> Result<(), BrokerError> {
        let dead: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.dead)
            .map(|(&id, _)| id)
            .collect();
        for id in dead {
            let Some(client) = self.clients.remove(&id) else {
                continue;
            };
            log::info!("broker: client {id} gone; destroying what it created");
            for w in self.waiting.values_mut() {
                w.retain(|w| w.client != id);
            }
            // Its requests not yet sent are forgotten; one at the device
            // is answered to nobody (and what it creates destroyed).
            self.control_waiting.retain(|w| w.client != id);
            let presentations = client
                .owned
                .presentations
                .iter()
                .map(|&p| (p, Request::PresDestroy));
            let sessions = client.owned.sessions.iter().map(|&s| (s, Request::CallEnd));
            for (target, request) in presentations.chain(sessions) {
                let request = ControlRequest {
                    generation: self.generation,
                    target,
                    request,
                };
                self.clean_up(id, request);
            }
            let pools: Vec<u32> = self
                .pools
                .keys()
                .filter(|(c, _)| *c == id)
                .map(|&(_, p)| p)
                .collect();
            for pool in pools {
                if let Some(p) = self.pools.get_mut(&(id, pool)) {
                    p.destroy = Some(None);
                }
                self.release_idle_pool(id, pool)?;
            }
        }
        self.dispatch_controls();
        Ok(())
    }
}

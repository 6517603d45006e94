//! Messages between the guest broker and the players it serves (spec,
//! "Guest broker protocol").
//!
//! One guest process owns the device (a userspace PCI driver can have only
//! one owner); players talk to it over a `SOCK_SEQPACKET` Unix socket, one
//! message per packet, and receive buffer pools as memfds (`SCM_RIGHTS`) that
//! map the broker's DMA memory, so they fill buffers in place. A reply echoes
//! its request's tag.

use zerocopy::IntoBytes;
use zerocopy::little_endian::{U32, U64};

use crate::ProtoError;
use crate::control::{expect_end, read_prefix};
use crate::data::{DATA_HDR_SIZE, DataHeader};
use crate::device::HARD_MAX_BUFFER_BYTES;
use crate::event::EVENT_SIZE;
use crate::layout::virtio_struct;
use crate::status::Status;

/// Version of the broker protocol.
pub const BROKER_VERSION: u32 = 1;
/// Default path of the broker's socket.
pub const DEFAULT_SOCKET: &str = "/run/mediaredir/broker.sock";
/// Largest broker message (header included).
pub const MAX_MESSAGE: usize = 128 << 10;

/// Message types (spec, "Guest broker protocol", 9.2). A reply has the type
/// of its request, except `COMPLETE`, `CAPTURE_FILLED` and `STATUS`; which
/// side sent a packet tells a request from a reply.
pub mod kind {
    /// Version handshake.
    pub const HELLO: u32 = 1;
    /// A control request, forwarded to the controlq.
    pub const CONTROL: u32 = 2;
    /// Create a shared buffer pool.
    pub const POOL_CREATE: u32 = 3;
    /// Queue a playback buffer from a pool.
    pub const QUEUE: u32 = 4;
    /// A queued buffer completed.
    pub const COMPLETE: u32 = 5;
    /// An event (broker to client, tag 0).
    pub const EVENT: u32 = 6;
    /// Post a pool region for a capture sample.
    pub const CAPTURE_POST: u32 = 7;
    /// A capture post was filled.
    pub const CAPTURE_FILLED: u32 = 8;
    /// Destroy a pool.
    pub const POOL_DESTROY: u32 = 9;
    /// A bare status reply.
    pub const STATUS: u32 = 10;
}

/// Who sent a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// A player (client of the broker).
    Client,
    /// The broker.
    Broker,
}

virtio_struct! {
    /// `struct media_redir_broker_hdr` (16 bytes).
    pub struct RawBrokerHdr {
        /// Message type.
        pub kind: U32,
        /// Chosen by the client, echoed in the reply; 0 in `EVENT`.
        pub tag: U32,
        /// Body bytes.
        pub len: U32,
        /// Reserved, zero.
        pub reserved: U32,
    }
}

/// A message between broker and client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerMessage {
    /// Client: protocol version (first message).
    Hello {
        /// Version the client speaks.
        version: u32,
    },
    /// Broker: reply to `Hello`.
    HelloReply {
        /// Version the broker speaks.
        version: u32,
        /// Device generation.
        generation: u32,
    },
    /// Client: a control request (controlq layout; the broker sets the
    /// generation).
    Control(Vec<u8>),
    /// Broker: the device's response (`resp_hdr` + body).
    ControlReply(Vec<u8>),
    /// Client: create a pool of `size` bytes.
    PoolCreate {
        /// Bytes.
        size: u64,
    },
    /// Broker: the pool; its memfd travels with this message.
    PoolCreateReply {
        /// Pool id.
        pool_id: u32,
        /// Bytes mapped (rounded up to the page size).
        size: u64,
    },
    /// Client: queue `pool[offset .. offset + header.payload_len]`.
    Queue {
        /// Pool id.
        pool_id: u32,
        /// Offset of the payload in the pool.
        offset: u64,
        /// Data header.
        header: DataHeader,
    },
    /// Broker: a queued buffer completed (tag of its `Queue`).
    Complete {
        /// Data completion status.
        status: Status,
    },
    /// Broker: an event.
    Event([u8; EVENT_SIZE]),
    /// Client: offer `pool[offset .. offset + len]` for a capture sample.
    CapturePost {
        /// Pool id.
        pool_id: u32,
        /// Offset.
        offset: u64,
        /// Bytes available.
        len: u64,
    },
    /// Broker: a capture post was filled with a sample (tag of the post).
    CaptureFilled {
        /// Header of the sample written into the post.
        header: DataHeader,
    },
    /// Client: destroy a pool.
    PoolDestroy {
        /// Pool id.
        pool_id: u32,
    },
    /// Broker: a bare status (errors, `POOL_DESTROY`, returned posts).
    Status {
        /// Status.
        status: Status,
    },
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Little-endian reader over a body.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u32(&mut self, what: &'static str) -> Result<u32, ProtoError> {
        let (v, rest): (U32, _) = read_prefix(self.0, what)?;
        self.0 = rest;
        Ok(v.get())
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, ProtoError> {
        let (v, rest): (U64, _) = read_prefix(self.0, what)?;
        self.0 = rest;
        Ok(v.get())
    }
    fn status(&mut self) -> Result<Status, ProtoError> {
        let status = Status::from_u32(self.u32("status")?)?;
        self.u32("reserved")?;
        Ok(status)
    }
    fn header(&mut self) -> Result<DataHeader, ProtoError> {
        let header = DataHeader::decode(self.0, HARD_MAX_BUFFER_BYTES)?;
        self.0 = &self.0[DATA_HDR_SIZE..];
        Ok(header)
    }
    fn end(self) -> Result<(), ProtoError> {
        expect_end(self.0, "broker message")
    }
}

impl BrokerMessage {
    /// The message's type number.
    pub fn kind(&self) -> u32 {
        use BrokerMessage::*;
        match self {
            Hello { .. } | HelloReply { .. } => kind::HELLO,
            Control(_) | ControlReply(_) => kind::CONTROL,
            PoolCreate { .. } | PoolCreateReply { .. } => kind::POOL_CREATE,
            Queue { .. } => kind::QUEUE,
            Complete { .. } => kind::COMPLETE,
            Event(_) => kind::EVENT,
            CapturePost { .. } => kind::CAPTURE_POST,
            CaptureFilled { .. } => kind::CAPTURE_FILLED,
            PoolDestroy { .. } => kind::POOL_DESTROY,
            Status { .. } => kind::STATUS,
        }
    }

    /// Who sends this message.
    pub fn sender(&self) -> Sender {
        use BrokerMessage::*;
        match self {
            Hello { .. }
            | Control(_)
            | PoolCreate { .. }
            | Queue { .. }
            | CapturePost { .. }
            | PoolDestroy { .. } => Sender::Client,
            _ => Sender::Broker,
        }
    }

    /// Encodes one packet with `tag`.
    pub fn encode(&self, tag: u32) -> Vec<u8> {
        let mut body = Vec::new();
        match self {
            BrokerMessage::Hello { version } => {
                put32(&mut body, *version);
                put32(&mut body, 0);
            }
            BrokerMessage::HelloReply {
                version,
                generation,
            } => {
                put32(&mut body, *version);
                put32(&mut body, *generation);
            }
            BrokerMessage::Control(bytes) | BrokerMessage::ControlReply(bytes) => {
                body.extend_from_slice(bytes)
            }
            BrokerMessage::PoolCreate { size } => put64(&mut body, *size),
            BrokerMessage::PoolCreateReply { pool_id, size } => {
                put32(&mut body, *pool_id);
                put32(&mut body, 0);
                put64(&mut body, *size);
            }
            BrokerMessage::Queue {
                pool_id,
                offset,
                header,
            } => {
                put32(&mut body, *pool_id);
                put32(&mut body, 0);
                put64(&mut body, *offset);
                body.extend_from_slice(&header.to_bytes());
            }
            BrokerMessage::Complete { status } | BrokerMessage::Status { status } => {
                put32(&mut body, status.as_u32());
                put32(&mut body, 0);
            }
            BrokerMessage::Event(event) => body.extend_from_slice(event),
            BrokerMessage::CapturePost {
                pool_id,
                offset,
                len,
            } => {
                put32(&mut body, *pool_id);
                put32(&mut body, 0);
                put64(&mut body, *offset);
                put64(&mut body, *len);
            }
            BrokerMessage::CaptureFilled { header } => body.extend_from_slice(&header.to_bytes()),
            BrokerMessage::PoolDestroy { pool_id } => put32(&mut body, *pool_id),
        }
        let hdr = RawBrokerHdr {
            kind: self.kind().into(),
            tag: tag.into(),
            len: crate::control::len_u32(body.len()).into(),
            reserved: 0.into(),
        };
        let mut out = hdr.as_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    /// Decodes one packet sent by `sender`; returns the tag and the message.
    pub fn decode(packet: &[u8], sender: Sender) -> Result<(u32, BrokerMessage), ProtoError> {
        if packet.len() > MAX_MESSAGE {
            return Err(ProtoError::TooLarge {
                what: "broker message",
                len: packet.len() as u64,
                max: MAX_MESSAGE as u64,
            });
        }
        let (hdr, body): (RawBrokerHdr, _) = read_prefix(packet, "broker header")?;
        if hdr.len.get() as usize != body.len() {
            return Err(crate::control::invalid(
                "len",
                hdr.len.get(),
                "must equal the body length",
            ));
        }
        let mut r = Reader(body);
        let msg = match (sender, hdr.kind.get()) {
            (Sender::Client, kind::HELLO) => {
                let version = r.u32("version")?;
                r.u32("reserved")?;
                BrokerMessage::Hello { version }
            }
            (Sender::Broker, kind::HELLO) => {
                let version = r.u32("version")?;
                let generation = r.u32("generation")?;
                BrokerMessage::HelloReply {
                    version,
                    generation,
                }
            }
            (Sender::Client, kind::CONTROL) => {
                return Ok((hdr.tag.get(), BrokerMessage::Control(body.to_vec())));
            }
            (Sender::Broker, kind::CONTROL) => {
                return Ok((hdr.tag.get(), BrokerMessage::ControlReply(body.to_vec())));
            }
            (Sender::Client, kind::POOL_CREATE) => BrokerMessage::PoolCreate {
                size: r.u64("size")?,
            },
            (Sender::Broker, kind::POOL_CREATE) => {
                let pool_id = r.u32("pool_id")?;
                r.u32("reserved")?;
                BrokerMessage::PoolCreateReply {
                    pool_id,
                    size: r.u64("size")?,
                }
            }
            (Sender::Client, kind::QUEUE) => {
                let pool_id = r.u32("pool_id")?;
                r.u32("reserved")?;
                let offset = r.u64("offset")?;
                BrokerMessage::Queue {
                    pool_id,
                    offset,
                    header: r.header()?,
                }
            }
            (Sender::Broker, kind::COMPLETE) => BrokerMessage::Complete {
                status: r.status()?,
            },
            (Sender::Broker, kind::EVENT) => {
                let event: [u8; EVENT_SIZE] =
                    body.try_into().map_err(|_| ProtoError::Truncated {
                        what: "event",
                        need: EVENT_SIZE,
                        got: body.len(),
                    })?;
                return Ok((hdr.tag.get(), BrokerMessage::Event(event)));
            }
            (Sender::Client, kind::CAPTURE_POST) => {
                let pool_id = r.u32("pool_id")?;
                r.u32("reserved")?;
                let offset = r.u64("offset")?;
                BrokerMessage::CapturePost {
                    pool_id,
                    offset,
                    len: r.u64("len")?,
                }
            }
            (Sender::Broker, kind::CAPTURE_FILLED) => BrokerMessage::CaptureFilled {
                header: r.header()?,
            },
            (Sender::Client, kind::POOL_DESTROY) => BrokerMessage::PoolDestroy {
                pool_id: r.u32("pool_id")?,
            },
            (Sender::Broker, kind::STATUS) => BrokerMessage::Status {
                status: r.status()?,
            },
            (_, other) => return Err(ProtoError::UnknownBrokerMessage(other)),
        };
        r.end()?;
        Ok((hdr.tag.get(), msg))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::FLAG_KEYFRAME;
    use crate::event::Event;

    pub(crate) fn every_message() -> Vec<BrokerMessage> {
        let header = DataHeader {
            clip: Default::default(),
            stream_id: 2,
            generation: 3,
            flags: FLAG_KEYFRAME,
            payload_len: 4096,
            pts: Some(0),
            dts: Some(0),
            duration: None,
        };
        vec![
            BrokerMessage::Hello {
                version: BROKER_VERSION,
            },
            BrokerMessage::HelloReply {
                version: 1,
                generation: 5,
            },
            BrokerMessage::Control(vec![1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            BrokerMessage::ControlReply(vec![0; 16]),
            BrokerMessage::PoolCreate { size: 8 << 20 },
            BrokerMessage::PoolCreateReply {
                pool_id: 1,
                size: 8 << 20,
            },
            BrokerMessage::Queue {
                pool_id: 1,
                offset: 4096,
                header,
            },
            BrokerMessage::Complete {
                status: Status::NoClient,
            },
            BrokerMessage::Event(Event::ClientDisconnected.encode(5)),
            BrokerMessage::CapturePost {
                pool_id: 1,
                offset: 0,
                len: 65536,
            },
            BrokerMessage::CaptureFilled { header },
            BrokerMessage::PoolDestroy { pool_id: 1 },
            BrokerMessage::Status {
                status: Status::BadState,
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for (tag, msg) in every_message().into_iter().enumerate() {
            let tag = u32::try_from(tag).unwrap() + 100;
            assert_eq!(
                BrokerMessage::decode(&msg.encode(tag), msg.sender()),
                Ok((tag, msg))
            );
        }
    }

    #[test]
    fn layouts_follow_the_spec() {
        let queue = every_message()[6].encode(9);
        assert_eq!(queue.len(), 16 + 64, "QUEUE body is 64 bytes");
        assert_eq!(
            BrokerMessage::PoolDestroy { pool_id: 1 }.encode(1).len(),
            16 + 4
        );
        assert_eq!(
            BrokerMessage::PoolCreateReply {
                pool_id: 1,
                size: 2
            }
            .encode(1)
            .len(),
            16 + 16
        );
    }

    #[test]
    fn rejects_bad_packets() {
        let mut packet = BrokerMessage::PoolCreate { size: 1 }.encode(1);
        packet[8] = 9;
        assert!(BrokerMessage::decode(&packet, Sender::Client).is_err());
        let mut packet = BrokerMessage::PoolCreate { size: 1 }.encode(1);
        packet[0] = 55;
        assert_eq!(
            BrokerMessage::decode(&packet, Sender::Client),
            Err(ProtoError::UnknownBrokerMessage(55))
        );
        let complete = BrokerMessage::Complete { status: Status::Ok }.encode(1);
        assert!(
            BrokerMessage::decode(&complete, Sender::Client).is_err(),
            "clients do not send COMPLETE"
        );
        assert!(BrokerMessage::decode(&[0; 15], Sender::Broker).is_err());
        assert!(BrokerMessage::decode(&vec![0; MAX_MESSAGE + 1], Sender::Broker).is_err());
    }
}

//! Messages between the guest broker and the players it serves (spec,
//! "Guest broker protocol").
//!
//! One guest process owns the device (a userspace PCI driver can have only
//! one owner); players talk to it over a `SOCK_SEQPACKET` Unix socket, one
//! message per packet, and receive buffer pools as memfds (`SCM_RIGHTS`) that
//! map the broker's DMA memory, so they fill buffers in place. A reply has the
//! request's type with [`REPLY_BIT`] set and echoes its tag; every reply body
//! starts with a status word.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::ProtoError;
use crate::control::{expect_end, read_prefix};
use crate::data::{DATA_HDR_SIZE, DataHeader};
use crate::device::HARD_MAX_BUFFER_BYTES;
use crate::event::EVENT_SIZE;
use crate::status::Status;

/// Version of the broker protocol.
pub const BROKER_VERSION: u32 = 1;
/// Default path of the broker's socket.
pub const DEFAULT_SOCKET: &str = "/run/mediaredir/broker.sock";
/// Largest broker message (header included).
pub const MAX_MESSAGE: usize = 128 << 10;
/// Bit set in the type of a reply.
pub const REPLY_BIT: u32 = 0x8000_0000;

/// Message types.
pub mod kind {
    /// Version handshake.
    pub const HELLO: u32 = 1;
    /// A control request, forwarded to the controlq.
    pub const CONTROL: u32 = 2;
    /// Create a shared buffer pool.
    pub const POOL_CREATE: u32 = 3;
    /// Queue a playback buffer from a pool.
    pub const QUEUE: u32 = 4;
    /// An event (broker to player, unsolicited, tag 0).
    pub const EVENT: u32 = 6;
    /// Post a pool region for a capture frame.
    pub const CAPTURE_POST: u32 = 7;
    /// Destroy a pool.
    pub const POOL_DESTROY: u32 = 9;
}

/// `struct media_redir_broker_hdr` (16 bytes).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RawBrokerHdr {
    /// Message type (`REPLY_BIT` set on replies).
    pub kind: U32,
    /// Chosen by the player, echoed in the reply.
    pub tag: U32,
    /// Body bytes.
    pub len: U32,
    /// Reserved, zero.
    pub reserved: U32,
}

/// A message between broker and player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerMessage {
    /// Player to broker: protocol version.
    Hello {
        /// Version the player speaks.
        version: u32,
    },
    /// Reply to `Hello`.
    HelloReply {
        /// OK, or INVALID for an unsupported version.
        status: Status,
        /// Version the broker speaks.
        version: u32,
        /// Device generation.
        generation: u32,
    },
    /// A control request (controlq layout; the broker sets the generation).
    Control(Vec<u8>),
    /// Reply to `Control`: the device's response (resp_hdr + body).
    ControlReply {
        /// Broker-level status (OK when the device answered).
        status: Status,
        /// The device's response bytes.
        response: Vec<u8>,
    },
    /// Create a pool of `size` bytes.
    PoolCreate {
        /// Bytes.
        size: u64,
    },
    /// Reply to `PoolCreate`; the pool's memfd travels with it.
    PoolCreateReply {
        /// OK or LIMIT.
        status: Status,
        /// Pool id.
        pool_id: u32,
        /// Bytes actually mapped (rounded up to the page size).
        size: u64,
    },
    /// Queue `pool[offset .. offset + header.payload_len]` as a playback
    /// buffer.
    Queue {
        /// Pool id.
        pool_id: u32,
        /// Offset of the payload in the pool.
        offset: u64,
        /// Data header.
        header: DataHeader,
    },
    /// Completion of a `Queue` (the buffer is the player's again).
    QueueReply {
        /// Data completion status.
        status: Status,
    },
    /// An event.
    Event([u8; EVENT_SIZE]),
    /// Offer `pool[offset .. offset + len]` for one capture frame.
    CapturePost {
        /// Pool id.
        pool_id: u32,
        /// Offset.
        offset: u64,
        /// Bytes available.
        len: u64,
    },
    /// Reply to `CapturePost`: the frame's header when filled.
    CapturePostReply {
        /// OK when filled.
        status: Status,
        /// Header of the frame written into the region.
        header: Option<DataHeader>,
    },
    /// Destroy a pool.
    PoolDestroy {
        /// Pool id.
        pool_id: u32,
    },
    /// Reply to `PoolDestroy`.
    PoolDestroyReply {
        /// OK, NO_ENTITY or BAD_STATE (buffers still queued).
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
    fn kind(&self) -> u32 {
        use BrokerMessage::*;
        match self {
            Hello { .. } => kind::HELLO,
            HelloReply { .. } => kind::HELLO | REPLY_BIT,
            Control(_) => kind::CONTROL,
            ControlReply { .. } => kind::CONTROL | REPLY_BIT,
            PoolCreate { .. } => kind::POOL_CREATE,
            PoolCreateReply { .. } => kind::POOL_CREATE | REPLY_BIT,
            Queue { .. } => kind::QUEUE,
            QueueReply { .. } => kind::QUEUE | REPLY_BIT,
            Event(_) => kind::EVENT,
            CapturePost { .. } => kind::CAPTURE_POST,
            CapturePostReply { .. } => kind::CAPTURE_POST | REPLY_BIT,
            PoolDestroy { .. } => kind::POOL_DESTROY,
            PoolDestroyReply { .. } => kind::POOL_DESTROY | REPLY_BIT,
        }
    }

    /// Encodes one packet with `tag`.
    pub fn encode(&self, tag: u32) -> Vec<u8> {
        let mut body = Vec::new();
        let status = |out: &mut Vec<u8>, s: &Status| {
            put32(out, s.as_u32());
            put32(out, 0);
        };
        match self {
            BrokerMessage::Hello { version } => {
                put32(&mut body, *version);
                put32(&mut body, 0);
            }
            BrokerMessage::HelloReply {
                status: s,
                version,
                generation,
            } => {
                status(&mut body, s);
                put32(&mut body, *version);
                put32(&mut body, *generation);
            }
            BrokerMessage::Control(request) => body.extend_from_slice(request),
            BrokerMessage::ControlReply {
                status: s,
                response,
            } => {
                status(&mut body, s);
                body.extend_from_slice(response);
            }
            BrokerMessage::PoolCreate { size } => put64(&mut body, *size),
            BrokerMessage::PoolCreateReply {
                status: s,
                pool_id,
                size,
            } => {
                status(&mut body, s);
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
            BrokerMessage::QueueReply { status: s } => status(&mut body, s),
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
            BrokerMessage::CapturePostReply { status: s, header } => {
                status(&mut body, s);
                if let Some(header) = header {
                    body.extend_from_slice(&header.to_bytes());
                }
            }
            BrokerMessage::PoolDestroy { pool_id } => {
                put32(&mut body, *pool_id);
                put32(&mut body, 0);
            }
            BrokerMessage::PoolDestroyReply { status: s } => status(&mut body, s),
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

    /// Decodes one packet; returns the tag and the message.
    pub fn decode(packet: &[u8]) -> Result<(u32, BrokerMessage), ProtoError> {
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
        let msg = match hdr.kind.get() {
            kind::HELLO => {
                let version = r.u32("version")?;
                r.u32("reserved")?;
                r.end()?;
                BrokerMessage::Hello { version }
            }
            k if k == kind::HELLO | REPLY_BIT => {
                let status = r.status()?;
                let version = r.u32("version")?;
                let generation = r.u32("generation")?;
                r.end()?;
                BrokerMessage::HelloReply {
                    status,
                    version,
                    generation,
                }
            }
            kind::CONTROL => BrokerMessage::Control(body.to_vec()),
            k if k == kind::CONTROL | REPLY_BIT => {
                let status = r.status()?;
                BrokerMessage::ControlReply {
                    status,
                    response: r.0.to_vec(),
                }
            }
            kind::POOL_CREATE => {
                let size = r.u64("size")?;
                r.end()?;
                BrokerMessage::PoolCreate { size }
            }
            k if k == kind::POOL_CREATE | REPLY_BIT => {
                let status = r.status()?;
                let pool_id = r.u32("pool_id")?;
                r.u32("reserved")?;
                let size = r.u64("size")?;
                r.end()?;
                BrokerMessage::PoolCreateReply {
                    status,
                    pool_id,
                    size,
                }
            }
            kind::QUEUE => {
                let pool_id = r.u32("pool_id")?;
                r.u32("reserved")?;
                let offset = r.u64("offset")?;
                let header = r.header()?;
                r.end()?;
                BrokerMessage::Queue {
                    pool_id,
                    offset,
                    header,
                }
            }
            k if k == kind::QUEUE | REPLY_BIT => {
                let status = r.status()?;
                r.end()?;
                BrokerMessage::QueueReply { status }
            }
            kind::EVENT => {
                let event: [u8; EVENT_SIZE] =
                    body.try_into().map_err(|_| ProtoError::Truncated {
                        what: "event",
                        need: EVENT_SIZE,
                        got: body.len(),
                    })?;
                BrokerMessage::Event(event)
            }
            kind::CAPTURE_POST => {
                let pool_id = r.u32("pool_id")?;
                r.u32("reserved")?;
                let offset = r.u64("offset")?;
                let len = r.u64("len")?;
                r.end()?;
                BrokerMessage::CapturePost {
                    pool_id,
                    offset,
                    len,
                }
            }
            k if k == kind::CAPTURE_POST | REPLY_BIT => {
                let status = r.status()?;
                let header = if r.0.is_empty() {
                    None
                } else {
                    Some(r.header()?)
                };
                r.end()?;
                BrokerMessage::CapturePostReply { status, header }
            }
            kind::POOL_DESTROY => {
                let pool_id = r.u32("pool_id")?;
                r.u32("reserved")?;
                r.end()?;
                BrokerMessage::PoolDestroy { pool_id }
            }
            k if k == kind::POOL_DESTROY | REPLY_BIT => {
                let status = r.status()?;
                r.end()?;
                BrokerMessage::PoolDestroyReply { status }
            }
            other => return Err(ProtoError::UnknownBrokerMessage(other)),
        };
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
                status: Status::Ok,
                version: 1,
                generation: 5,
            },
            BrokerMessage::Control(vec![1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            BrokerMessage::ControlReply {
                status: Status::Ok,
                response: vec![0; 16],
            },
            BrokerMessage::PoolCreate { size: 8 << 20 },
            BrokerMessage::PoolCreateReply {
                status: Status::Ok,
                pool_id: 1,
                size: 8 << 20,
            },
            BrokerMessage::Queue {
                pool_id: 1,
                offset: 4096,
                header,
            },
            BrokerMessage::QueueReply {
                status: Status::NoClient,
            },
            BrokerMessage::Event(Event::ClientDisconnected.encode(5)),
            BrokerMessage::CapturePost {
                pool_id: 1,
                offset: 0,
                len: 65536,
            },
            BrokerMessage::CapturePostReply {
                status: Status::Ok,
                header: Some(header),
            },
            BrokerMessage::CapturePostReply {
                status: Status::Cancelled,
                header: None,
            },
            BrokerMessage::PoolDestroy { pool_id: 1 },
            BrokerMessage::PoolDestroyReply {
                status: Status::BadState,
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for (tag, msg) in every_message().into_iter().enumerate() {
            let tag = u32::try_from(tag).unwrap() + 100;
            assert_eq!(BrokerMessage::decode(&msg.encode(tag)), Ok((tag, msg)));
        }
    }

    #[test]
    fn rejects_bad_packets() {
        let mut packet = BrokerMessage::PoolCreate { size: 1 }.encode(1);
        packet[8] = 9;
        assert!(BrokerMessage::decode(&packet).is_err());
        let mut packet = BrokerMessage::PoolCreate { size: 1 }.encode(1);
        packet[0] = 55;
        assert_eq!(
            BrokerMessage::decode(&packet),
            Err(ProtoError::UnknownBrokerMessage(55))
        );
        assert!(BrokerMessage::decode(&[0; 15]).is_err());
        assert!(BrokerMessage::decode(&vec![0; MAX_MESSAGE + 1]).is_err());
    }
}

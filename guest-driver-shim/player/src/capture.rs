//! Capture (spec 7.10): the client's sources, starting and stopping a
//! capture stream, and the capture side of the buffers (V4L2's `QBUF` and
//! `DQBUF` on a capture queue): the player offers buffers of its pool, the
//! broker copies each captured sample into the oldest one.

use mediaredir_proto::broker::BrokerMessage;
use mediaredir_proto::control::Request;
use mediaredir_proto::data::DataHeader;
use mediaredir_proto::response::ResponseBody;
use mediaredir_proto::status::Status;

use super::{MediaRedir, PlayerError};

/// A capture buffer the device filled (or the broker returned unfilled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Captured {
    /// The stream whose buffers it belongs to ([`MediaRedir::queue_capture_buffer`]).
    pub stream: u32,
    /// The buffer index.
    pub index: u32,
    /// `Ok` when filled; otherwise why it came back empty (`LIMIT`: the
    /// sample was larger than the buffer; `CANCELLED`; `STALE`).
    pub status: Status,
    /// The sample's header when filled: its `stream_id` (any of this
    /// player's capture streams: posts are shared), flags, times and
    /// `payload_len` (the bytes at the start of the buffer).
    pub header: Option<DataHeader>,
}

impl MediaRedir {
    /// The client's capture sources (microphones, cameras).
    pub fn enum_sources(&mut self) -> Result<Vec<mediaredir_proto::response::Source>, PlayerError> {
        match self.control_ok(Request::EnumSources, 0)?.1 {
            ResponseBody::Sources(sources, _) => Ok(sources),
            _ => Err(PlayerError::Usage("ENUM_SOURCES answered without sources")),
        }
    }

    /// Starts a capture stream: the client captures and encodes.
    pub fn start_capture(&mut self, stream: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::StreamStart, stream).map(drop)
    }

    /// Stops a capture stream.
    pub fn stop_capture(&mut self, stream: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::StreamStop, stream).map(drop)
    }

    /// Asks the client's encoder of a capture stream for a keyframe.
    pub fn request_keyframe(&mut self, stream: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::StreamRequestKeyframe, stream)
            .map(drop)
    }

    /// `VIDIOC_QBUF` on a capture queue: offers buffer `index` of
    /// `stream`'s buffers for the next captured sample of any of this
    /// player's capture streams.
    pub fn queue_capture_buffer(&mut self, stream: u32, index: u32) -> Result<(), PlayerError> {
        let queue = self.held_buffer(stream, index)?;
        let message = BrokerMessage::CapturePost {
            pool_id: queue.pool_id,
            offset: queue.offset(index),
            len: queue.slot_size() as u64,
        };
        self.send_buffer(stream, index, &message)
    }

    fn take_captured(&mut self) -> Option<Captured> {
        let found = self.queues.iter().find_map(|(&stream, q)| {
            q.queued_tags()
                .find(|(_, tag)| {
                    matches!(
                        self.replies.get(tag),
                        Some((
                            BrokerMessage::CaptureFilled { .. } | BrokerMessage::Status { .. },
                            _
                        ))
                    )
                })
                .map(|(index, tag)| (stream, index, tag))
        })?;
        let (stream, index, tag) = found;
        let (reply, _) = self.replies.remove(&tag)?;
        if let Some(q) = self.queues.get_mut(&stream) {
            q.mark_dequeued(index);
        }
        let (status, header) = match reply {
            BrokerMessage::CaptureFilled { header } => (Status::Ok, Some(header)),
            BrokerMessage::Status { status } => (status, None),
            _ => (Status::Io, None),
        };
        Some(Captured {
            stream,
            index,
            status,
            header,
        })
    }

    /// `VIDIOC_DQBUF` on the capture side: the next capture buffer back.
    pub fn dequeue_capture(&mut self) -> Result<Captured, PlayerError> {
        self.pump_all()?;
        if let Some(c) = self.take_captured() {
            return Ok(c);
        }
        if self.nonblocking {
            return Err(PlayerError::WouldBlock);
        }
        self.wait_for(MediaRedir::take_captured)
    }

    /// Buffer `index` of `stream` for reading a captured sample (the
    /// player holds it after [`MediaRedir::dequeue_capture`]).
    pub fn buffer(&mut self, stream: u32, index: u32) -> Option<&[u8]> {
        self.buffer_mut(stream, index).map(|b| &*b)
    }
}

//! A stream: one elementary stream of a presentation, with its state machine
//! (spec, "Stream states"); and the control requests that create, destroy
//! and set up streams (`STREAM_CREATE`, `STREAM_DESTROY`,
//! `STREAM_SET_VOLUME`; capture's own requests are in [`super::capture`]).

use std::sync::Arc;

use mediaredir_proto::codec::MediaKind;
use mediaredir_proto::control::{Direction, StreamFormat, UNITY_Q16};
use mediaredir_proto::response::{PresentationState, ResponseBody};
use mediaredir_proto::status::Status;
use mediaredir_proto::wire;

use super::credit::Credit;
use super::{Action, DeviceModel, Reply};

/// State of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// Playback: accepts data.
    Open,
    /// Playback: an EOS buffer was taken; data is refused.
    Draining,
    /// Playback: the client reported EOS; data is refused.
    Ended,
    /// The client reported an error; data completes with that status.
    Failed(Status),
    /// Capture: not capturing.
    Stopped,
    /// Capture: capturing.
    Capturing,
}

/// A stream of a presentation.
#[derive(Debug)]
pub struct Stream {
    /// Stream id.
    pub id: u32,
    /// Owning presentation.
    pub presentation: u32,
    /// Format and codec data, as created (replayed to a reconnecting client).
    pub format: StreamFormat,
    /// State.
    pub state: StreamState,
    /// Volume in 1/65536 units.
    pub volume_q16: u32,
    /// Muted.
    pub mute: bool,
    /// Sequence number of the next buffer (from 1).
    pub next_seq: u64,
    /// In-flight credit.
    pub credit: Arc<Credit>,
    /// After a client reconnect (playback) or a dropped sample (capture):
    /// drop non-keyframes until a keyframe.
    pub keyframe_needed: bool,
    /// Capture: samples written to the driver so far.
    pub captured: u64,
    /// Capture: samples dropped so far.
    pub capture_dropped: u64,
    /// Capture: the next sample written carries `DISCONT`.
    pub discont: bool,
    /// Playback: the end (`pts + duration`, or `pts`) of the latest
    /// sample forwarded to the client since the last flush or connection
    /// (spec 7.13: what `buffered_ns` counts).
    pub sent_end_ns: Option<u64>,
}

impl Stream {
    /// A new stream in its initial state.
    pub fn new(id: u32, presentation: u32, format: StreamFormat, credit: Arc<Credit>) -> Stream {
        let state = match format.direction {
            Direction::Playback => StreamState::Open,
            Direction::Capture => StreamState::Stopped,
        };
        Stream {
            id,
            presentation,
            format,
            state,
            volume_q16: UNITY_Q16,
            mute: false,
            next_seq: 1,
            credit,
            keyframe_needed: false,
            captured: 0,
            capture_dropped: 0,
            discont: true,
            sent_end_ns: None,
        }
    }

    /// Whether this is a video stream.
    pub fn is_video(&self) -> bool {
        self.format.codec.kind() == MediaKind::Video
    }

    /// Whether this stream is a playback stream.
    pub fn is_playback(&self) -> bool {
        self.format.direction == Direction::Playback
    }

    /// For a playback stream, the action that completes its buffers still
    /// waiting on its txq (not yet taken, e.g. held back for credit) with
    /// `CANCELLED`: a flush or a destroy returns them at once, as the
    /// in-flight ones, instead of whenever the queue is next looked at.
    pub(super) fn drain_txq(&self) -> Option<Action> {
        self.is_playback().then_some(Action::DrainTxq {
            txq: self.format.txq,
            stream: self.id,
        })
    }

    /// Returns a playback stream to `Open` after a flush (a failed stream
    /// stays failed).
    pub fn reopen(&mut self) {
        if matches!(self.state, StreamState::Draining | StreamState::Ended) {
            self.state = StreamState::Open;
        }
    }
}

impl DeviceModel {
    /// `STREAM_CREATE` in presentation `presentation`.
    pub(super) fn create_stream(
        &mut self,
        presentation: u32,
        format: StreamFormat,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        let pres = self
            .presentations
            .get(&presentation)
            .ok_or(Status::NoEntity)?;
        let capture = format.direction == Direction::Capture;
        if capture && !self.features.capture {
            // DEV-INIT-1: capture without F_CAPTURE is INVALID.
            return Err(Status::Invalid);
        }
        if pres.state != PresentationState::Idle && !capture {
            return Err(Status::BadState);
        }
        if self.streams.len() >= self.limits.device.max_streams as usize {
            return Err(Status::Limit);
        }
        if !capture {
            if format.txq >= self.limits.device.num_txqs {
                return Err(Status::Invalid);
            }
            let txq_taken = pres
                .streams
                .iter()
                .filter_map(|s| self.streams.get(s))
                .any(|s| s.is_playback() && s.format.txq == format.txq);
            if txq_taken {
                return Err(Status::Invalid);
            }
        }
        self.check_client_format(&format)?;
        let id = self.alloc_id();
        let credit = Arc::new(Credit::new(
            self.limits.device.max_inflight_bytes,
            self.limits.device.max_inflight_ms,
        ));
        actions.push(Action::Send(wire::Message::CreateStream(
            wire::CreateStream::from_format(id, presentation, &format),
        )));
        self.streams
            .insert(id, Stream::new(id, presentation, format, credit));
        if let Some(pres) = self.presentations.get_mut(&presentation) {
            pres.streams.push(id);
        }
        Ok(Reply::ok(id, ResponseBody::None))
    }

    /// `STREAM_DESTROY`: its in-flight data is cancelled.
    pub(super) fn destroy_stream(
        &mut self,
        target: u32,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        let stream = self.streams.remove(&target).ok_or(Status::NoEntity)?;
        if let Some(pres) = self.presentations.get_mut(&stream.presentation) {
            pres.streams.retain(|s| *s != target);
        }
        actions.extend(stream.drain_txq());
        actions.push(Action::Cancel {
            stream: target,
            status: Status::Cancelled,
        });
        actions.push(Action::Forget { stream: target });
        actions.push(Action::Send(wire::Message::DestroyStream { id: target }));
        Ok(Reply::ok(target, ResponseBody::None))
    }

    /// `STREAM_SET_VOLUME` (audio streams only).
    pub(super) fn set_volume(
        &mut self,
        target: u32,
        volume_q16: u32,
        mute: bool,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        let stream = self.streams.get_mut(&target).ok_or(Status::NoEntity)?;
        if stream.format.codec.kind() != MediaKind::Audio {
            return Err(Status::Invalid);
        }
        stream.volume_q16 = volume_q16;
        stream.mute = mute;
        actions.push(Action::Send(wire::Message::SetVolume {
            stream: target,
            volume_q16,
            mute,
        }));
        Ok(Reply::ok(target, ResponseBody::None))
    }
}

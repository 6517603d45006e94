//! A stream: one elementary stream of a presentation, with its state machine
//! (spec, "Stream states").

use std::sync::Arc;

use mediaredir_proto::codec::MediaKind;
use mediaredir_proto::control::{Direction, StreamFormat, UNITY_Q16};
use mediaredir_proto::status::Status;

use super::credit::Credit;

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

    /// Returns a playback stream to `Open` after a flush (a failed stream
    /// stays failed).
    pub fn reopen(&mut self) {
        if matches!(self.state, StreamState::Draining | StreamState::Ended) {
            self.state = StreamState::Open;
        }
    }
}

//! Validation: every rule of the protocol a message must follow on its own
//! ([`Message::validate`] and [`Capabilities::validate`]). A sender runs it
//! before encoding and [`Message::decode`] runs it after parsing, so both
//! sides refuse exactly the same messages.

use super::checks::{in_range, max_count, max_len, nonzero, not_ok, rect, rule, time};
use super::{
    CallAction, Capabilities, CreateStream, MAX_CLIP_RECTS, MAX_CODEC_DATA_LEN, MAX_CODECS,
    MAX_DTMF_DURATION_MS, MAX_DTMF_EVENT, MAX_MOS_X100, MAX_NAME_LEN, MAX_RATE_Q16, MAX_SDP_LEN,
    MAX_SOURCES, MAX_TEXT_LEN, MAX_VOLUME_Q16, MIN_DTMF_DURATION_MS, MIN_RATE_Q16, Message,
    SampleHeader, SetGeometry,
};
use crate::media::MediaField;
use crate::wire::WireError;
use crate::wire::types::{Codec, Direction};

impl Capabilities {
    /// Checks counts, names, ids and flags.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), WireError> {
        max_count(self.codecs.len(), MAX_CODECS, "Capabilities.codecs")?;
        max_count(self.sources.len(), MAX_SOURCES, "Capabilities.sources")?;
        for (i, s) in self.sources.iter().enumerate() {
            nonzero(s.id, "CaptureSource.id")?;
            max_len(s.name.len(), MAX_NAME_LEN, "CaptureSource.name")?;
            if self.sources[..i].iter().any(|t| t.id == s.id) {
                return Err(WireError::DuplicateId {
                    field: "CaptureSource.id",
                    id: s.id,
                });
            }
        }
        Ok(())
    }
}

impl SetGeometry {
    fn validate(&self) -> Result<(), WireError> {
        nonzero(self.presentation, "SetGeometry.presentation")?;
        rect(&self.dest, "SetGeometry.dest")?;
        rect(&self.source, "SetGeometry.source")?;
        rule(
            self.source.x >= 0 && self.source.y >= 0,
            "SetGeometry.source",
            "picture coordinates must not be negative",
        )?;
        max_count(self.clip.len(), MAX_CLIP_RECTS, "SetGeometry.clip")?;
        self.clip
            .iter()
            .try_for_each(|r| rect(r, "SetGeometry.clip"))
    }
}

impl CreateStream {
    fn validate(&self) -> Result<(), WireError> {
        nonzero(self.id, "CreateStream.id")?;
        nonzero(self.presentation, "CreateStream.presentation")?;
        self.media
            .check_kind(self.codec.kind())
            .map_err(|e| WireError::OutOfRange {
                field: match e.field {
                    MediaField::Width => "CreateStream.width",
                    MediaField::Height => "CreateStream.height",
                    MediaField::SampleRate => "CreateStream.sample_rate",
                    MediaField::Channels => "CreateStream.channels",
                },
                value: i64::from(e.value),
                min: i64::from(e.range.min),
                max: i64::from(e.range.max),
            })?;
        rule(
            self.media.fps_num == 0 || self.media.fps_den != 0,
            "CreateStream.fps_den",
            "must be nonzero when fps_num is",
        )?;
        match self.direction {
            Direction::Playback => rule(
                self.source == 0,
                "CreateStream.source",
                "must be 0 for playback",
            )?,
            Direction::Capture => nonzero(self.source, "CreateStream.source")?,
        }
        max_len(
            self.codec_data.len(),
            MAX_CODEC_DATA_LEN,
            "CreateStream.codec_data",
        )?;
        rule(
            !(self.codec == Codec::Opus
                && self.direction == Direction::Playback
                && self.media.channels > 2
                && self.codec_data.is_empty()),
            "CreateStream.codec_data",
            "Opus with more than 2 channels needs an OpusHead",
        )
    }
}

impl SampleHeader {
    fn validate(&self, capture: bool) -> Result<(), WireError> {
        let f = |sample: &'static str, capture_sample: &'static str| {
            if capture { capture_sample } else { sample }
        };
        nonzero(self.stream, f("Sample.stream", "CaptureSample.stream"))?;
        rule(
            self.seq != 0,
            f("Sample.seq", "CaptureSample.seq"),
            "sequence numbers start at 1",
        )?;
        time(self.pts, f("Sample.pts", "CaptureSample.pts"))?;
        time(self.dts, f("Sample.dts", "CaptureSample.dts"))?;
        time(
            self.duration,
            f("Sample.duration", "CaptureSample.duration"),
        )
    }
}

impl CallAction {
    fn validate(&self) -> Result<(), WireError> {
        match *self {
            Self::Mute(m) | Self::Unmute(m) => rule(
                !m.is_empty(),
                "CallControl.arg",
                "the media mask must not be empty",
            ),
            Self::Dtmf { event, duration_ms } => {
                in_range(event, 0, MAX_DTMF_EVENT, "CallControl.arg")?;
                in_range(
                    duration_ms,
                    MIN_DTMF_DURATION_MS,
                    MAX_DTMF_DURATION_MS,
                    "CallControl.duration_ms",
                )
            }
            Self::Start | Self::Hold | Self::Resume | Self::End => Ok(()),
        }
    }
}

impl Message {
    /// Checks every field against the protocol, as [`Message::decode`] does
    /// after parsing.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), WireError> {
        match self {
            Self::Hello(h) => {
                max_len(h.name.len(), MAX_NAME_LEN, "Hello.name")?;
                h.caps.validate()
            }
            Self::Welcome(w) => max_len(w.server.len(), MAX_NAME_LEN, "Welcome.server"),
            Self::CapabilitiesChanged(caps) => caps.validate(),
            Self::CreatePresentation { id, .. } => nonzero(*id, "CreatePresentation.id"),
            Self::DestroyPresentation { id } => nonzero(*id, "DestroyPresentation.id"),
            Self::Play { presentation } => nonzero(*presentation, "Play.presentation"),
            Self::Pause { presentation } => nonzero(*presentation, "Pause.presentation"),
            Self::Flush { presentation, .. } => nonzero(*presentation, "Flush.presentation"),
            Self::SetRate {
                presentation,
                rate_q16,
            } => {
                nonzero(*presentation, "SetRate.presentation")?;
                in_range(*rate_q16, MIN_RATE_Q16, MAX_RATE_Q16, "SetRate.rate_q16")
            }
            Self::SetGeometry(g) => g.validate(),
            Self::CreateStream(c) => c.validate(),
            Self::DestroyStream { id } => nonzero(*id, "DestroyStream.id"),
            Self::SetVolume {
                stream, volume_q16, ..
            } => {
                nonzero(*stream, "SetVolume.stream")?;
                in_range(*volume_q16, 0, MAX_VOLUME_Q16, "SetVolume.volume_q16")
            }
            Self::Sample(s) => s.validate(false),
            Self::Ack { stream, seq, .. } => {
                nonzero(*stream, "Ack.stream")?;
                rule(*seq != 0, "Ack.seq", "sequence numbers start at 1")
            }
            Self::StartCapture { stream } => nonzero(*stream, "StartCapture.stream"),
            Self::StopCapture { stream } => nonzero(*stream, "StopCapture.stream"),
            Self::CaptureSample(s) => s.validate(true),
            Self::RequestKeyframe { stream } => nonzero(*stream, "RequestKeyframe.stream"),
            Self::EndOfStream { stream } => nonzero(*stream, "EndOfStream.stream"),
            Self::Position { presentation, .. } => nonzero(*presentation, "Position.presentation"),
            Self::StateChanged { presentation, .. } => {
                nonzero(*presentation, "StateChanged.presentation")
            }
            Self::StreamError {
                stream,
                status,
                message,
            } => {
                nonzero(*stream, "StreamError.stream")?;
                not_ok(*status, "StreamError.status")?;
                max_len(message.len(), MAX_TEXT_LEN, "StreamError.message")
            }
            Self::Qos { stream, .. } => nonzero(*stream, "Qos.stream"),
            Self::CallCreate { session, sdp } => {
                nonzero(*session, "CallCreate.session")?;
                max_len(sdp.len(), MAX_SDP_LEN, "CallCreate.sdp")
            }
            Self::CallLocalSdp { session, sdp } => {
                nonzero(*session, "CallLocalSdp.session")?;
                rule(!sdp.is_empty(), "CallLocalSdp.sdp", "must not be empty")?;
                max_len(sdp.len(), MAX_SDP_LEN, "CallLocalSdp.sdp")
            }
            Self::CallRemoteSdp { session, sdp } => {
                nonzero(*session, "CallRemoteSdp.session")?;
                rule(!sdp.is_empty(), "CallRemoteSdp.sdp", "must not be empty")?;
                max_len(sdp.len(), MAX_SDP_LEN, "CallRemoteSdp.sdp")
            }
            Self::CallControl { session, action } => {
                nonzero(*session, "CallControl.session")?;
                action.validate()
            }
            Self::CallStats(s) => {
                nonzero(s.session, "CallStats.session")?;
                in_range(s.mos_x100, 0, MAX_MOS_X100, "CallStats.mos_x100")
            }
            Self::CallEnded {
                session, reason, ..
            } => {
                nonzero(*session, "CallEnded.session")?;
                max_len(reason.len(), MAX_TEXT_LEN, "CallEnded.reason")
            }
            Self::CallDtmfReceived { session, event } => {
                nonzero(*session, "CallDtmfReceived.session")?;
                in_range(*event, 0, MAX_DTMF_EVENT, "CallDtmfReceived.event")
            }
            Self::Ping { .. } | Self::Pong { .. } => Ok(()),
            Self::ProtocolError {
                status, message, ..
            } => {
                not_ok(*status, "ProtocolError.status")?;
                max_len(message.len(), MAX_TEXT_LEN, "ProtocolError.message")
            }
        }
    }
}

#[cfg(test)]
#[path = "validate_limits_tests.rs"]
mod limits_tests;

#[cfg(test)]
#[path = "validate_rules_tests.rs"]
mod rules_tests;

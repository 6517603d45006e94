//! Control requests (spec 7.4 to 7.7, 7.14): the V4L2-style calls that
//! ask the device something or change a presentation or stream
//! (`QUERYCAP`, `TRY_FMT`, `S_FMT`, play, pause, seek, rate, geometry,
//! volume), each one a `CONTROL` message to the broker and its answer.

use std::time::{Duration, Instant};

use mediaredir_proto::broker::BrokerMessage;
use mediaredir_proto::control::{
    ControlRequest, Geometry, Request, RequestCode, ResponseHeader, StreamFormat,
};
use mediaredir_proto::response::{CapsInfo, CodecCap, PositionInfo, ResponseBody};
use mediaredir_proto::status::Status;

use super::error::status_of;
use super::{MediaRedir, PlayerError};

/// What [`MediaRedir::query_caps`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Device generation (changes when the host daemon restarts).
    pub generation: u32,
    /// Whether a client is connected to the device.
    pub client_connected: bool,
    /// The client's feature bits.
    pub client_features: u32,
    /// What the client can decode (empty without a client).
    pub codecs: Vec<CodecCap>,
}

impl MediaRedir {
    /// Sends a control request for `target`; the response header and body
    /// (any status).
    pub fn control(
        &mut self,
        request: Request,
        target: u32,
    ) -> Result<(ResponseHeader, ResponseBody), PlayerError> {
        let code = request.code();
        let bytes = ControlRequest {
            generation: 0,
            target,
            request,
        }
        .encode();
        match self.request(&BrokerMessage::Control(bytes))? {
            (BrokerMessage::ControlReply(answer), _) => {
                let (header, rest) = ResponseHeader::decode(&answer)?;
                let body = if header.status == Status::Ok {
                    ResponseBody::decode(code, rest)?
                } else {
                    ResponseBody::None
                };
                Ok((header, body))
            }
            (BrokerMessage::Status { status }, _) => Err(PlayerError::Status {
                what: code_name(code),
                status,
            }),
            _ => Err(PlayerError::Usage("unexpected reply to CONTROL")),
        }
    }

    /// Like [`MediaRedir::control`], failing unless the status is OK;
    /// returns the id and body.
    pub(super) fn control_ok(
        &mut self,
        request: Request,
        target: u32,
    ) -> Result<(u32, ResponseBody), PlayerError> {
        let code = request.code();
        let (header, body) = self.control(request, target)?;
        status_of(code_name(code), header.status)?;
        Ok((header.id, body))
    }

    // ----- capabilities and formats -----

    /// `VIDIOC_QUERYCAP`: the device and what the connected client decodes.
    pub fn query_caps(&mut self) -> Result<Capabilities, PlayerError> {
        let (_, body) = self.control_ok(Request::GetCaps, 0)?;
        let ResponseBody::Caps(CapsInfo {
            client_connected,
            client_features,
            codecs,
            ..
        }) = body
        else {
            return Err(PlayerError::Usage("GET_CAPS answered without capabilities"));
        };
        Ok(Capabilities {
            generation: self.generation,
            client_connected,
            client_features,
            codecs,
        })
    }

    /// Waits up to `timeout` for a client to be connected to the device;
    /// its capabilities.
    pub fn wait_client(&mut self, timeout: Duration) -> Result<Capabilities, PlayerError> {
        let deadline = Instant::now() + timeout;
        loop {
            let caps = self.query_caps()?;
            if caps.client_connected {
                return Ok(caps);
            }
            if Instant::now() >= deadline {
                return Err(PlayerError::Timeout(timeout));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `VIDIOC_ENUM_FMT`: the codecs the client decodes.
    pub fn enum_formats(&mut self) -> Result<Vec<CodecCap>, PlayerError> {
        Ok(self.query_caps()?.codecs)
    }

    /// `VIDIOC_TRY_FMT`: whether a stream of `format` would be accepted
    /// (`UNSUPPORTED` when the client cannot decode it, `NO_CLIENT`).
    pub fn try_format(&mut self, format: &StreamFormat) -> Result<(), PlayerError> {
        self.control_ok(Request::CheckFormat(format.clone()), 0)
            .map(drop)
    }

    // ----- presentations and streams -----

    /// Creates a presentation (one clock for its streams); its id.
    pub fn create_presentation(&mut self, live: bool) -> Result<u32, PlayerError> {
        Ok(self.control_ok(Request::PresCreate { live }, 0)?.0)
    }

    /// Destroys a presentation and its streams; their queued buffers
    /// complete `CANCELLED` (and can be dequeued).
    pub fn destroy_presentation(&mut self, presentation: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::PresDestroy, presentation)
            .map(drop)
    }

    /// `VIDIOC_S_FMT`: creates a stream of `format` in `presentation`; its
    /// id. `format.txq` picks the playback queue (one per stream of a
    /// presentation).
    pub fn create_stream(
        &mut self,
        presentation: u32,
        format: &StreamFormat,
    ) -> Result<u32, PlayerError> {
        Ok(self
            .control_ok(Request::StreamCreate(format.clone()), presentation)?
            .0)
    }

    /// Destroys a stream (its buffers must be dequeued first to reuse them;
    /// the device cancels queued ones).
    pub fn destroy_stream(&mut self, stream: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::StreamDestroy, stream).map(drop)?;
        self.release_when_idle(stream)
    }

    /// `VIDIOC_STREAMON` for a presentation: play.
    pub fn stream_on(&mut self, presentation: u32) -> Result<(), PlayerError> {
        self.play(presentation)
    }

    /// `VIDIOC_STREAMOFF`: pause and drop what is queued (the buffers come
    /// back `CANCELLED`).
    pub fn stream_off(&mut self, presentation: u32) -> Result<(), PlayerError> {
        self.pause(presentation)?;
        self.seek(presentation, 0)
    }

    /// Plays a presentation.
    pub fn play(&mut self, presentation: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::PresPlay, presentation).map(drop)
    }

    /// Pauses a presentation.
    pub fn pause(&mut self, presentation: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::PresPause, presentation).map(drop)
    }

    /// Flushes a presentation for a seek: queued buffers come back
    /// `CANCELLED`; the next buffers start at `position_ns`.
    pub fn seek(&mut self, presentation: u32, position_ns: u64) -> Result<(), PlayerError> {
        self.control_ok(Request::PresFlush { position_ns }, presentation)
            .map(drop)
    }

    /// Playback rate (1.0 normal).
    pub fn set_rate(&mut self, presentation: u32, rate: f64) -> Result<(), PlayerError> {
        if !(rate.is_finite() && rate > 0.0 && rate <= 65535.0) {
            return Err(PlayerError::Usage("rate out of range"));
        }
        // In range (checked above), so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rate_q16 = (rate * 65536.0).round() as u32;
        self.control_ok(Request::PresSetRate { rate_q16 }, presentation)
            .map(drop)
    }

    /// `VIDIOC_S_SELECTION`: where and whether the client shows the video.
    pub fn set_geometry(
        &mut self,
        presentation: u32,
        geometry: Geometry,
    ) -> Result<(), PlayerError> {
        self.control_ok(Request::PresSetGeometry(geometry), presentation)
            .map(drop)
    }

    /// Where playback is, as the client's output has it (spec 7.13): its
    /// last report, advanced for at most 1 s at the rate its reports show,
    /// and the media sent to it ahead of that.
    pub fn query_position(&mut self, presentation: u32) -> Result<PositionInfo, PlayerError> {
        match self.control_ok(Request::PresQueryPosition, presentation)?.1 {
            ResponseBody::Position(p) => Ok(p),
            _ => Err(PlayerError::Usage(
                "PRES_QUERY_POSITION answered without a position",
            )),
        }
    }

    /// `VIDIOC_S_CTRL` volume/mute: `volume` 1.0 is unity gain.
    pub fn set_volume(&mut self, stream: u32, volume: f64, mute: bool) -> Result<(), PlayerError> {
        if !(volume.is_finite() && (0.0..=65535.0).contains(&volume)) {
            return Err(PlayerError::Usage("volume out of range"));
        }
        // In range (checked above), so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let volume_q16 = (volume * 65536.0).round() as u32;
        self.control_ok(Request::StreamSetVolume { volume_q16, mute }, stream)
            .map(drop)
    }
}

/// A request code's name for errors.
fn code_name(code: RequestCode) -> &'static str {
    use RequestCode as C;
    match code {
        C::GetCaps => "GET_CAPS",
        C::CheckFormat => "CHECK_FORMAT",
        C::EnumSources => "ENUM_SOURCES",
        C::PresCreate => "PRES_CREATE",
        C::PresDestroy => "PRES_DESTROY",
        C::PresPlay => "PRES_PLAY",
        C::PresPause => "PRES_PAUSE",
        C::PresFlush => "PRES_FLUSH",
        C::PresSetRate => "PRES_SET_RATE",
        C::PresSetGeometry => "PRES_SET_GEOMETRY",
        C::PresQueryPosition => "PRES_QUERY_POSITION",
        C::StreamCreate => "STREAM_CREATE",
        C::StreamDestroy => "STREAM_DESTROY",
        C::StreamSetVolume => "STREAM_SET_VOLUME",
        C::StreamStart => "STREAM_START",
        C::StreamStop => "STREAM_STOP",
        C::StreamRequestKeyframe => "STREAM_REQUEST_KEYFRAME",
        C::CallCreate => "CALL_CREATE",
        C::CallSetRemote => "CALL_SET_REMOTE",
        C::CallStart => "CALL_START",
        C::CallHold => "CALL_HOLD",
        C::CallDtmf => "CALL_DTMF",
        C::CallMute => "CALL_MUTE",
        C::CallStats => "CALL_STATS",
        C::CallEnd => "CALL_END",
    }
}

/// A playback stream format with everything but the codec fields zeroed
/// (a starting point for [`MediaRedir::create_stream`]): the protocol's
/// [`StreamFormat::playback`], under the name the player's users know.
pub fn playback_format(codec: mediaredir_proto::codec::Codec, txq: u32) -> StreamFormat {
    StreamFormat::playback(codec, txq)
}

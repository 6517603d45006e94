//! Decoding: a received header to a validated [`Message`]. The FlatBuffers
//! verifier runs first, with bounds on depth, table count and apparent size;
//! then every enumeration value and flag bit is checked against the known
//! ones, required fields are demanded, and the result goes through
//! [`Message::validate`]. Nothing here panics on any input.

use flatbuffers::VerifierOptions;

use super::checks::{max_count, max_len, rule};
use super::{
    CallAction, CallStats, Capabilities, CaptureSource, Clip, CodecCap, CreateStream, Hello,
    MAX_CLIP_RECTS, MAX_CODEC_DATA_LEN, MAX_CODECS, MAX_SOURCES, Message, SampleHeader,
    SetGeometry, Welcome,
};
use crate::media::MediaParams;
use crate::wire::WireError;
use crate::wire::convert::{
    client_features, codec_flags, enum_of, media_mask, presentation_flags, sample_flags,
    time_from_wire,
};
use crate::wire::frame::{MAX_HEADER_LEN, MIN_HEADER_LEN};
use crate::wire::generated::mediaredir::wire as fb;
use crate::wire::types::{CallOp, Rect};

/// Verifier limits: the deepest legal nesting is Frame > Hello >
/// Capabilities > vector > CaptureSource; the most tables a legal header has
/// is 3 + `MAX_CODECS` + `MAX_SOURCES`.
const VERIFIER_MAX_DEPTH: usize = 16;
const VERIFIER_MAX_TABLES: usize = 1024;
/// The verifier counts some bytes twice (offsets, then what they point to;
/// shared vtables once per table), so a legal header of `MAX_HEADER_LEN`
/// bytes can have a slightly larger apparent size; twice the header bounds
/// what a decoded message can occupy while leaving that headroom.
const VERIFIER_MAX_APPARENT_SIZE: usize = 2 * MAX_HEADER_LEN;

fn required<T>(v: Option<T>, field: &'static str) -> Result<T, WireError> {
    v.ok_or(WireError::MissingField(field))
}

fn caps_of(c: fb::Capabilities<'_>) -> Result<Capabilities, WireError> {
    let codecs = c.codecs().unwrap_or_default();
    max_count(codecs.len(), MAX_CODECS, "Capabilities.codecs")?;
    let sources = c.sources().unwrap_or_default();
    max_count(sources.len(), MAX_SOURCES, "Capabilities.sources")?;
    Ok(Capabilities {
        codecs: codecs
            .iter()
            .map(|cc| {
                Ok(CodecCap {
                    codec: enum_of(cc.codec(), "CodecCap.codec")?,
                    flags: codec_flags(cc.flags().bits(), "CodecCap.flags")?,
                    max_width: cc.max_width(),
                    max_height: cc.max_height(),
                })
            })
            .collect::<Result<_, WireError>>()?,
        sources: sources
            .iter()
            .map(|s| {
                Ok(CaptureSource {
                    id: s.id(),
                    kind: enum_of(s.kind(), "CaptureSource.kind")?,
                    name: required(s.name(), "CaptureSource.name")?.to_owned(),
                })
            })
            .collect::<Result<_, WireError>>()?,
        features: client_features(c.features().bits(), "Capabilities.features")?,
    })
}

macro_rules! sample_of {
    ($s:expr, $table:literal) => {
        sample_of!($s, $table, |_| Clip::NONE)
    };
    ($s:expr, $table:literal, $clip:expr) => {{
        let s = $s;
        SampleHeader {
            clip: $clip(&s),
            stream: s.stream(),
            seq: s.seq(),
            pts: time_from_wire(s.pts()),
            dts: time_from_wire(s.dts()),
            duration: time_from_wire(s.duration()),
            flags: sample_flags(s.flags(), concat!($table, ".flags"))?,
        }
    }};
}

fn verifier_options() -> VerifierOptions {
    VerifierOptions {
        max_depth: VERIFIER_MAX_DEPTH,
        max_tables: VERIFIER_MAX_TABLES,
        max_apparent_size: VERIFIER_MAX_APPARENT_SIZE,
        ignore_missing_null_terminator: false,
    }
}

impl Message {
    /// Parses and validates a header received from the peer.
    ///
    /// # Errors
    /// [`WireError::HeaderLength`] for a length outside
    /// `MIN_HEADER_LEN..=MAX_HEADER_LEN`, [`WireError::BadIdentifier`],
    /// [`WireError::InvalidFlatBuffer`] when the verifier rejects it,
    /// [`WireError::MissingMessage`] / [`WireError::UnknownMessage`] for the
    /// union, and any field error of [`Message::validate`].
    pub fn decode(header: &[u8]) -> Result<Self, WireError> {
        if !(MIN_HEADER_LEN..=MAX_HEADER_LEN).contains(&header.len()) {
            return Err(WireError::HeaderLength(header.len()));
        }
        if !fb::frame_buffer_has_identifier(header) {
            return Err(WireError::BadIdentifier);
        }
        let frame = fb::root_as_frame_with_opts(&verifier_options(), header)?;
        let msg = Self::parse(frame)?;
        msg.validate()?;
        Ok(msg)
    }

    fn parse(frame: fb::Frame<'_>) -> Result<Self, WireError> {
        use fb::Message as T;
        let missing = WireError::MissingMessage;
        Ok(match frame.msg_type() {
            T::NONE => return Err(missing),
            T::Hello => {
                let h = frame.msg_as_hello().ok_or(missing)?;
                Self::Hello(Hello {
                    major: h.major(),
                    minor: h.minor(),
                    name: required(h.name(), "Hello.name")?.to_owned(),
                    caps: caps_of(required(h.caps(), "Hello.caps")?)?,
                })
            }
            T::Welcome => {
                let w = frame.msg_as_welcome().ok_or(missing)?;
                Self::Welcome(Welcome {
                    major: w.major(),
                    minor: w.minor(),
                    server: required(w.server(), "Welcome.server")?.to_owned(),
                    session: w.session(),
                })
            }
            T::CapabilitiesChanged => {
                let c = frame.msg_as_capabilities_changed().ok_or(missing)?;
                Self::CapabilitiesChanged(caps_of(required(c.caps(), "CapabilitiesChanged.caps")?)?)
            }
            T::CreatePresentation => {
                let m = frame.msg_as_create_presentation().ok_or(missing)?;
                Self::CreatePresentation {
                    id: m.id(),
                    flags: presentation_flags(m.flags(), "CreatePresentation.flags")?,
                }
            }
            T::DestroyPresentation => {
                let m = frame.msg_as_destroy_presentation().ok_or(missing)?;
                Self::DestroyPresentation { id: m.id() }
            }
            T::Play => Self::Play {
                presentation: frame.msg_as_play().ok_or(missing)?.presentation(),
            },
            T::Pause => Self::Pause {
                presentation: frame.msg_as_pause().ok_or(missing)?.presentation(),
            },
            T::Flush => {
                let m = frame.msg_as_flush().ok_or(missing)?;
                Self::Flush {
                    presentation: m.presentation(),
                    position_ns: m.position_ns(),
                }
            }
            T::SetRate => {
                let m = frame.msg_as_set_rate().ok_or(missing)?;
                Self::SetRate {
                    presentation: m.presentation(),
                    rate_q16: m.rate_q16(),
                }
            }
            T::SetGeometry => {
                let m = frame.msg_as_set_geometry().ok_or(missing)?;
                let clip = m.clip().unwrap_or_default();
                max_count(clip.len(), MAX_CLIP_RECTS, "SetGeometry.clip")?;
                Self::SetGeometry(SetGeometry {
                    presentation: m.presentation(),
                    display: m.display(),
                    visible: m.visible(),
                    z: m.z(),
                    dest: Rect::from(required(m.dest(), "SetGeometry.dest")?),
                    source: m.source().map(Rect::from).unwrap_or_default(),
                    clip: clip.iter().map(Rect::from).collect(),
                    color_key: m.color_key(),
                })
            }
            T::CreateStream => {
                let m = frame.msg_as_create_stream().ok_or(missing)?;
                let codec_data = m.codec_data().map(|v| v.bytes()).unwrap_or_default();
                max_len(
                    codec_data.len(),
                    MAX_CODEC_DATA_LEN,
                    "CreateStream.codec_data",
                )?;
                Self::CreateStream(CreateStream {
                    id: m.id(),
                    presentation: m.presentation(),
                    direction: enum_of(m.direction(), "CreateStream.direction")?,
                    codec: enum_of(m.codec(), "CreateStream.codec")?,
                    media: MediaParams {
                        width: m.width(),
                        height: m.height(),
                        fps_num: m.fps_num(),
                        fps_den: m.fps_den(),
                        sample_rate: m.sample_rate(),
                        channels: m.channels(),
                        bitrate: m.bitrate(),
                    },
                    source: m.source(),
                    codec_data: codec_data.to_vec(),
                })
            }
            T::DestroyStream => Self::DestroyStream {
                id: frame.msg_as_destroy_stream().ok_or(missing)?.id(),
            },
            T::SetVolume => {
                let m = frame.msg_as_set_volume().ok_or(missing)?;
                Self::SetVolume {
                    stream: m.stream(),
                    volume_q16: m.volume_q16(),
                    mute: m.mute(),
                }
            }
            T::Sample => Self::Sample(sample_of!(
                frame.msg_as_sample().ok_or(missing)?,
                "Sample",
                |s: &fb::Sample| Clip {
                    start: s.clip_start(),
                    end: s.clip_end(),
                }
            )),
            T::Ack => {
                let m = frame.msg_as_ack().ok_or(missing)?;
                Self::Ack {
                    stream: m.stream(),
                    seq: m.seq(),
                    status: enum_of(m.status(), "Ack.status")?,
                }
            }
            T::StartCapture => Self::StartCapture {
                stream: frame.msg_as_start_capture().ok_or(missing)?.stream(),
            },
            T::StopCapture => Self::StopCapture {
                stream: frame.msg_as_stop_capture().ok_or(missing)?.stream(),
            },
            T::CaptureSample => Self::CaptureSample(sample_of!(
                frame.msg_as_capture_sample().ok_or(missing)?,
                "CaptureSample"
            )),
            T::RequestKeyframe => Self::RequestKeyframe {
                stream: frame.msg_as_request_keyframe().ok_or(missing)?.stream(),
            },
            T::EndOfStream => Self::EndOfStream {
                stream: frame.msg_as_end_of_stream().ok_or(missing)?.stream(),
            },
            T::Position => {
                let m = frame.msg_as_position().ok_or(missing)?;
                Self::Position {
                    presentation: m.presentation(),
                    position_ns: m.position_ns(),
                }
            }
            T::StateChanged => {
                let m = frame.msg_as_state_changed().ok_or(missing)?;
                Self::StateChanged {
                    presentation: m.presentation(),
                    state: enum_of(m.state(), "StateChanged.state")?,
                }
            }
            T::StreamError => {
                let m = frame.msg_as_stream_error().ok_or(missing)?;
                Self::StreamError {
                    stream: m.stream(),
                    status: enum_of(m.status(), "StreamError.status")?,
                    message: m.message().unwrap_or_default().to_owned(),
                }
            }
            T::Qos => {
                let m = frame.msg_as_qos().ok_or(missing)?;
                Self::Qos {
                    stream: m.stream(),
                    rendered: m.rendered(),
                    dropped: m.dropped(),
                    jitter_ns: m.jitter_ns(),
                }
            }
            T::CallCreate => {
                let m = frame.msg_as_call_create().ok_or(missing)?;
                Self::CallCreate {
                    session: m.session(),
                    sdp: m.sdp().unwrap_or_default().to_owned(),
                }
            }
            T::CallLocalSdp => {
                let m = frame.msg_as_call_local_sdp().ok_or(missing)?;
                Self::CallLocalSdp {
                    session: m.session(),
                    sdp: required(m.sdp(), "CallLocalSdp.sdp")?.to_owned(),
                }
            }
            T::CallRemoteSdp => {
                let m = frame.msg_as_call_remote_sdp().ok_or(missing)?;
                Self::CallRemoteSdp {
                    session: m.session(),
                    sdp: required(m.sdp(), "CallRemoteSdp.sdp")?.to_owned(),
                }
            }
            T::CallControl => {
                let m = frame.msg_as_call_control().ok_or(missing)?;
                let (arg, duration_ms) = (m.arg(), m.duration_ms());
                let unused = |ok: bool| {
                    rule(
                        ok,
                        "CallControl.arg",
                        "arg and duration_ms must be 0 unless the operation uses them",
                    )
                };
                let plain =
                    |action: CallAction| unused(arg == 0 && duration_ms == 0).map(|()| action);
                let action = match enum_of(m.op(), "CallControl.op")? {
                    CallOp::Start => plain(CallAction::Start)?,
                    CallOp::Hold => plain(CallAction::Hold)?,
                    CallOp::Resume => plain(CallAction::Resume)?,
                    CallOp::End => plain(CallAction::End)?,
                    CallOp::Mute => {
                        unused(duration_ms == 0)?;
                        CallAction::Mute(media_mask(arg, "CallControl.arg")?)
                    }
                    CallOp::Unmute => {
                        unused(duration_ms == 0)?;
                        CallAction::Unmute(media_mask(arg, "CallControl.arg")?)
                    }
                    CallOp::Dtmf => CallAction::Dtmf {
                        event: arg,
                        duration_ms,
                    },
                };
                Self::CallControl {
                    session: m.session(),
                    action,
                }
            }
            T::CallStats => {
                let m = frame.msg_as_call_stats().ok_or(missing)?;
                Self::CallStats(CallStats {
                    session: m.session(),
                    jitter_us: m.jitter_us(),
                    packets_lost: m.packets_lost(),
                    packets_received: m.packets_received(),
                    rtt_us: m.rtt_us(),
                    mos_x100: m.mos_x100(),
                })
            }
            T::CallEnded => {
                let m = frame.msg_as_call_ended().ok_or(missing)?;
                Self::CallEnded {
                    session: m.session(),
                    status: enum_of(m.status(), "CallEnded.status")?,
                    reason: m.reason().unwrap_or_default().to_owned(),
                }
            }
            T::CallDtmfReceived => {
                let m = frame.msg_as_call_dtmf_received().ok_or(missing)?;
                Self::CallDtmfReceived {
                    session: m.session(),
                    event: m.event(),
                }
            }
            T::Ping => Self::Ping {
                nonce: frame.msg_as_ping().ok_or(missing)?.nonce(),
            },
            T::Pong => Self::Pong {
                nonce: frame.msg_as_pong().ok_or(missing)?.nonce(),
            },
            T::ProtocolError => {
                let m = frame.msg_as_protocol_error().ok_or(missing)?;
                Self::ProtocolError {
                    status: enum_of(m.status(), "ProtocolError.status")?,
                    fatal: m.fatal(),
                    message: m.message().unwrap_or_default().to_owned(),
                }
            }
            other => return Err(WireError::UnknownMessage(other.0)),
        })
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;

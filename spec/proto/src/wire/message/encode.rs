//! Encoding: a [`Message`] as a FlatBuffers header (root `Frame`, file
//! identifier `"MRW1"`), built with the generated builders. Empty optional
//! strings and vectors are left out of the buffer, and absent times are
//! written as [`TIME_NONE`](crate::wire::TIME_NONE). Enumerations, flags
//! and rectangles go through `convert`.

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use super::{CallAction, Capabilities, CreateStream, Message, SampleHeader};
use crate::wire::convert::{Generated, time_to_wire};
use crate::wire::generated::mediaredir::wire as fb;

impl CallAction {
    /// The wire's `(arg, duration_ms)`.
    const fn args(self) -> (u32, u32) {
        match self {
            Self::Mute(m) | Self::Unmute(m) => (m.bits(), 0),
            Self::Dtmf { event, duration_ms } => (event, duration_ms),
            Self::Start | Self::Hold | Self::Resume | Self::End => (0, 0),
        }
    }
}

/// A string that is omitted from the buffer when empty.
fn opt_string<'f>(fbb: &mut FlatBufferBuilder<'f>, s: &str) -> Option<WIPOffset<&'f str>> {
    (!s.is_empty()).then(|| fbb.create_string(s))
}

fn build_caps<'f>(
    fbb: &mut FlatBufferBuilder<'f>,
    caps: &Capabilities,
) -> WIPOffset<fb::Capabilities<'f>> {
    let codecs: Vec<_> = caps
        .codecs
        .iter()
        .map(|c| {
            fb::CodecCap::create(
                fbb,
                &fb::CodecCapArgs {
                    codec: c.codec.to_fb(),
                    flags: c.flags.into(),
                    max_width: c.max_width,
                    max_height: c.max_height,
                },
            )
        })
        .collect();
    let sources: Vec<_> = caps
        .sources
        .iter()
        .map(|s| {
            let name = fbb.create_string(&s.name);
            fb::CaptureSource::create(
                fbb,
                &fb::CaptureSourceArgs {
                    id: s.id,
                    kind: s.kind.to_fb(),
                    name: Some(name),
                },
            )
        })
        .collect();
    let codecs = fbb.create_vector(&codecs);
    let sources = fbb.create_vector(&sources);
    fb::Capabilities::create(
        fbb,
        &fb::CapabilitiesArgs {
            codecs: Some(codecs),
            sources: Some(sources),
            features: caps.features.into(),
        },
    )
}

fn sample_args(s: &SampleHeader) -> fb::SampleArgs {
    fb::SampleArgs {
        stream: s.stream,
        seq: s.seq,
        pts: time_to_wire(s.pts),
        dts: time_to_wire(s.dts),
        duration: time_to_wire(s.duration),
        flags: s.flags.bits(),
        clip_start: s.clip.start,
        clip_end: s.clip.end,
    }
}

/// The generated arguments of a `CreateStream` with `codec_data` already
/// in the buffer (the decoder's tests build malformed ones from these).
pub(super) fn stream_args<'f>(
    c: &CreateStream,
    codec_data: Option<WIPOffset<flatbuffers::Vector<'f, u8>>>,
) -> fb::CreateStreamArgs<'f> {
    fb::CreateStreamArgs {
        id: c.id,
        presentation: c.presentation,
        direction: c.direction.to_fb(),
        codec: c.codec.to_fb(),
        width: c.media.width,
        height: c.media.height,
        fps_num: c.media.fps_num,
        fps_den: c.media.fps_den,
        sample_rate: c.media.sample_rate,
        channels: c.media.channels,
        bitrate: c.media.bitrate,
        source: c.source,
        codec_data,
    }
}

impl Message {
    /// Encodes the message as a FlatBuffers header (root `Frame`, file
    /// identifier `"MRW1"`) in `fbb`, which is reset first, and returns the
    /// header's bytes.
    ///
    /// This does not validate the message and does not bound the header's
    /// size: [`encode_frame`](crate::wire::encode_frame) does both.
    pub fn encode<'b>(&self, fbb: &'b mut FlatBufferBuilder<'_>) -> &'b [u8] {
        fbb.reset();
        let (msg_type, msg) = self.build(fbb);
        let frame = fb::Frame::create(
            fbb,
            &fb::FrameArgs {
                msg_type,
                msg: Some(msg),
            },
        );
        fb::finish_frame_buffer(fbb, frame);
        fbb.finished_data()
    }

    /// Encodes the message into a new vector (see [`Message::encode`]).
    pub fn to_header_bytes(&self) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        self.encode(&mut fbb).to_vec()
    }

    fn build<'f>(
        &self,
        fbb: &mut FlatBufferBuilder<'f>,
    ) -> (fb::Message, WIPOffset<UnionWIPOffset>) {
        use fb::Message as T;
        match self {
            Self::Hello(h) => {
                let name = fbb.create_string(&h.name);
                let caps = build_caps(fbb, &h.caps);
                let args = fb::HelloArgs {
                    major: h.major,
                    minor: h.minor,
                    name: Some(name),
                    caps: Some(caps),
                };
                (T::Hello, fb::Hello::create(fbb, &args).as_union_value())
            }
            Self::Welcome(w) => {
                let server = fbb.create_string(&w.server);
                let args = fb::WelcomeArgs {
                    major: w.major,
                    minor: w.minor,
                    server: Some(server),
                    session: w.session,
                };
                (T::Welcome, fb::Welcome::create(fbb, &args).as_union_value())
            }
            Self::CapabilitiesChanged(caps) => {
                let caps = build_caps(fbb, caps);
                let args = fb::CapabilitiesChangedArgs { caps: Some(caps) };
                (
                    T::CapabilitiesChanged,
                    fb::CapabilitiesChanged::create(fbb, &args).as_union_value(),
                )
            }
            Self::CreatePresentation { id, flags } => {
                let args = fb::CreatePresentationArgs {
                    id: *id,
                    flags: flags.bits(),
                };
                (
                    T::CreatePresentation,
                    fb::CreatePresentation::create(fbb, &args).as_union_value(),
                )
            }
            Self::DestroyPresentation { id } => {
                let args = fb::DestroyPresentationArgs { id: *id };
                (
                    T::DestroyPresentation,
                    fb::DestroyPresentation::create(fbb, &args).as_union_value(),
                )
            }
            Self::Play { presentation } => {
                let args = fb::PlayArgs {
                    presentation: *presentation,
                };
                (T::Play, fb::Play::create(fbb, &args).as_union_value())
            }
            Self::Pause { presentation } => {
                let args = fb::PauseArgs {
                    presentation: *presentation,
                };
                (T::Pause, fb::Pause::create(fbb, &args).as_union_value())
            }
            Self::Flush {
                presentation,
                position_ns,
            } => {
                let args = fb::FlushArgs {
                    presentation: *presentation,
                    position_ns: *position_ns,
                };
                (T::Flush, fb::Flush::create(fbb, &args).as_union_value())
            }
            Self::SetRate {
                presentation,
                rate_q16,
            } => {
                let args = fb::SetRateArgs {
                    presentation: *presentation,
                    rate_q16: *rate_q16,
                };
                (T::SetRate, fb::SetRate::create(fbb, &args).as_union_value())
            }
            Self::SetGeometry(g) => {
                let clip: Vec<fb::Rect> = g.clip.iter().map(fb::Rect::from).collect();
                let clip = (!clip.is_empty()).then(|| fbb.create_vector(&clip));
                let dest = fb::Rect::from(&g.dest);
                let source = fb::Rect::from(&g.source);
                let args = fb::SetGeometryArgs {
                    presentation: g.presentation,
                    display: g.display,
                    visible: g.visible,
                    z: g.z,
                    dest: Some(&dest),
                    source: Some(&source),
                    clip,
                    color_key: g.color_key,
                };
                (
                    T::SetGeometry,
                    fb::SetGeometry::create(fbb, &args).as_union_value(),
                )
            }
            Self::CreateStream(c) => {
                let codec_data =
                    (!c.codec_data.is_empty()).then(|| fbb.create_vector(&c.codec_data));
                let args = stream_args(c, codec_data);
                (
                    T::CreateStream,
                    fb::CreateStream::create(fbb, &args).as_union_value(),
                )
            }
            Self::DestroyStream { id } => {
                let args = fb::DestroyStreamArgs { id: *id };
                (
                    T::DestroyStream,
                    fb::DestroyStream::create(fbb, &args).as_union_value(),
                )
            }
            Self::SetVolume {
                stream,
                volume_q16,
                mute,
            } => {
                let args = fb::SetVolumeArgs {
                    stream: *stream,
                    volume_q16: *volume_q16,
                    mute: *mute,
                };
                (
                    T::SetVolume,
                    fb::SetVolume::create(fbb, &args).as_union_value(),
                )
            }
            Self::Sample(s) => (
                T::Sample,
                fb::Sample::create(fbb, &sample_args(s)).as_union_value(),
            ),
            Self::Ack {
                stream,
                seq,
                status,
            } => {
                let args = fb::AckArgs {
                    stream: *stream,
                    seq: *seq,
                    status: status.to_fb(),
                };
                (T::Ack, fb::Ack::create(fbb, &args).as_union_value())
            }
            Self::StartCapture { stream } => {
                let args = fb::StartCaptureArgs { stream: *stream };
                (
                    T::StartCapture,
                    fb::StartCapture::create(fbb, &args).as_union_value(),
                )
            }
            Self::StopCapture { stream } => {
                let args = fb::StopCaptureArgs { stream: *stream };
                (
                    T::StopCapture,
                    fb::StopCapture::create(fbb, &args).as_union_value(),
                )
            }
            Self::CaptureSample(s) => {
                let a = sample_args(s);
                let args = fb::CaptureSampleArgs {
                    stream: a.stream,
                    seq: a.seq,
                    pts: a.pts,
                    dts: a.dts,
                    duration: a.duration,
                    flags: a.flags,
                };
                (
                    T::CaptureSample,
                    fb::CaptureSample::create(fbb, &args).as_union_value(),
                )
            }
            Self::RequestKeyframe { stream } => {
                let args = fb::RequestKeyframeArgs { stream: *stream };
                (
                    T::RequestKeyframe,
                    fb::RequestKeyframe::create(fbb, &args).as_union_value(),
                )
            }
            Self::EndOfStream { stream } => {
                let args = fb::EndOfStreamArgs { stream: *stream };
                (
                    T::EndOfStream,
                    fb::EndOfStream::create(fbb, &args).as_union_value(),
                )
            }
            Self::Position {
                presentation,
                position_ns,
            } => {
                let args = fb::PositionArgs {
                    presentation: *presentation,
                    position_ns: *position_ns,
                };
                (
                    T::Position,
                    fb::Position::create(fbb, &args).as_union_value(),
                )
            }
            Self::StateChanged {
                presentation,
                state,
            } => {
                let args = fb::StateChangedArgs {
                    presentation: *presentation,
                    state: state.to_fb(),
                };
                (
                    T::StateChanged,
                    fb::StateChanged::create(fbb, &args).as_union_value(),
                )
            }
            Self::StreamError {
                stream,
                status,
                message,
            } => {
                let message = opt_string(fbb, message);
                let args = fb::StreamErrorArgs {
                    stream: *stream,
                    status: status.to_fb(),
                    message,
                };
                (
                    T::StreamError,
                    fb::StreamError::create(fbb, &args).as_union_value(),
                )
            }
            Self::Qos {
                stream,
                rendered,
                dropped,
                jitter_ns,
            } => {
                let args = fb::QosArgs {
                    stream: *stream,
                    rendered: *rendered,
                    dropped: *dropped,
                    jitter_ns: *jitter_ns,
                };
                (T::Qos, fb::Qos::create(fbb, &args).as_union_value())
            }
            Self::CallCreate { session, sdp } => {
                let sdp = opt_string(fbb, sdp);
                let args = fb::CallCreateArgs {
                    session: *session,
                    sdp,
                };
                (
                    T::CallCreate,
                    fb::CallCreate::create(fbb, &args).as_union_value(),
                )
            }
            Self::CallLocalSdp { session, sdp } => {
                let sdp = Some(fbb.create_string(sdp));
                let args = fb::CallLocalSdpArgs {
                    session: *session,
                    sdp,
                };
                (
                    T::CallLocalSdp,
                    fb::CallLocalSdp::create(fbb, &args).as_union_value(),
                )
            }
            Self::CallRemoteSdp { session, sdp } => {
                let sdp = Some(fbb.create_string(sdp));
                let args = fb::CallRemoteSdpArgs {
                    session: *session,
                    sdp,
                };
                (
                    T::CallRemoteSdp,
                    fb::CallRemoteSdp::create(fbb, &args).as_union_value(),
                )
            }
            Self::CallControl { session, action } => {
                let (arg, duration_ms) = action.args();
                let args = fb::CallControlArgs {
                    session: *session,
                    op: action.op().to_fb(),
                    arg,
                    duration_ms,
                };
                (
                    T::CallControl,
                    fb::CallControl::create(fbb, &args).as_union_value(),
                )
            }
            Self::CallStats(s) => {
                let args = fb::CallStatsArgs {
                    session: s.session,
                    jitter_us: s.jitter_us,
                    packets_lost: s.packets_lost,
                    packets_received: s.packets_received,
                    rtt_us: s.rtt_us,
                    mos_x100: s.mos_x100,
                };
                (
                    T::CallStats,
                    fb::CallStats::create(fbb, &args).as_union_value(),
                )
            }
            Self::CallEnded {
                session,
                status,
                reason,
            } => {
                let reason = opt_string(fbb, reason);
                let args = fb::CallEndedArgs {
                    session: *session,
                    status: status.to_fb(),
                    reason,
                };
                (
                    T::CallEnded,
                    fb::CallEnded::create(fbb, &args).as_union_value(),
                )
            }
            Self::CallDtmfReceived { session, event } => {
                let args = fb::CallDtmfReceivedArgs {
                    session: *session,
                    event: *event,
                };
                (
                    T::CallDtmfReceived,
                    fb::CallDtmfReceived::create(fbb, &args).as_union_value(),
                )
            }
            Self::Ping { nonce } => (
                T::Ping,
                fb::Ping::create(fbb, &fb::PingArgs { nonce: *nonce }).as_union_value(),
            ),
            Self::Pong { nonce } => (
                T::Pong,
                fb::Pong::create(fbb, &fb::PongArgs { nonce: *nonce }).as_union_value(),
            ),
            Self::ProtocolError {
                status,
                fatal,
                message,
            } => {
                let message = opt_string(fbb, message);
                let args = fb::ProtocolErrorArgs {
                    status: status.to_fb(),
                    fatal: *fatal,
                    message,
                };
                (
                    T::ProtocolError,
                    fb::ProtocolError::create(fbb, &args).as_union_value(),
                )
            }
        }
    }
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;

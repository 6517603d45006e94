//! Control requests (spec, "Control requests"): the generation check, the
//! routing of each request to the handler of its object kind
//! (presentations, streams, capture, calls), and the device-level requests
//! that answer from the connected client's capabilities (`GET_CAPS`,
//! `CHECK_FORMAT`, `ENUM_SOURCES`).

use std::time::Instant;

use mediaredir_proto::control::{ControlRequest, Direction, Request, StreamFormat};
use mediaredir_proto::response::{CapsInfo, CodecCap, ResponseBody, Source};
use mediaredir_proto::status::Status;
use mediaredir_proto::wire;

use super::{Action, DeviceModel, Reply};

impl DeviceModel {
    /// Handles a control request (spec, "Control requests" and the state
    /// tables). Returns the reply and what the uplink must do.
    pub fn handle(&mut self, request: ControlRequest, now: Instant) -> (Reply, Vec<Action>) {
        let target = request.target;
        if request.generation != self.generation {
            return (Reply::error(Status::Stale, target), Vec::new());
        }
        let mut actions = Vec::new();
        // A failed create answers id 0 (spec 7.4); others echo the target.
        let creates = matches!(
            request.request,
            Request::StreamCreate(_) | Request::CallCreate { .. }
        );
        let result = self.dispatch(request.request, target, now, &mut actions);
        let reply = match result {
            Ok(reply) => reply,
            Err(status) => {
                actions.clear();
                Reply::error(status, if creates { 0 } else { target })
            }
        };
        if self.client.is_none() {
            actions.retain(|a| !matches!(a, Action::Send(_)));
        }
        (reply, actions)
    }

    fn dispatch(
        &mut self,
        request: Request,
        target: u32,
        now: Instant,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        match request {
            Request::GetCaps => Ok(Reply::ok(0, ResponseBody::Caps(self.caps_info()))),
            Request::CheckFormat(format) => {
                self.check_client_format(&format)?;
                Ok(Reply::ok(0, ResponseBody::None))
            }
            Request::EnumSources
            | Request::StreamStart
            | Request::StreamStop
            | Request::StreamRequestKeyframe
                if !self.features.capture =>
            {
                // DEV-INIT-1: a request of a feature not negotiated is unknown.
                Err(Status::UnknownRequest)
            }
            Request::EnumSources => {
                let caps = self.client.as_ref().ok_or(Status::NoClient)?;
                let sources: Vec<Source> = caps.sources.iter().map(source_of).collect();
                let total = u32::try_from(sources.len()).unwrap_or(u32::MAX);
                Ok(Reply::ok(0, ResponseBody::Sources(sources, total)))
            }
            Request::PresCreate { live } => self.create_presentation(live, actions),
            Request::PresDestroy => self.destroy_presentation(target, actions),
            Request::PresPlay => self.play_or_pause(target, true, now, actions),
            Request::PresPause => self.play_or_pause(target, false, now, actions),
            Request::PresFlush { position_ns } => self.flush(target, position_ns, now, actions),
            Request::PresSetRate { rate_q16 } => self.set_rate(target, rate_q16, now, actions),
            Request::PresSetGeometry(geometry) => self.set_geometry(target, geometry, actions),
            Request::PresQueryPosition => self.query_position(target, now),
            Request::StreamCreate(format) => self.create_stream(target, format, actions),
            Request::StreamDestroy => self.destroy_stream(target, actions),
            Request::StreamSetVolume { volume_q16, mute } => {
                self.set_volume(target, volume_q16, mute, actions)
            }
            Request::StreamStart | Request::StreamStop | Request::StreamRequestKeyframe => {
                self.capture_request(&request, target, actions)
            }
            Request::CallCreate { .. }
            | Request::CallSetRemote { .. }
            | Request::CallStart
            | Request::CallHold { .. }
            | Request::CallDtmf { .. }
            | Request::CallMute { .. }
            | Request::CallStats
            | Request::CallEnd => self.call_request(request, target, actions),
        }
    }

    fn caps_info(&self) -> CapsInfo {
        match &self.client {
            None => CapsInfo {
                client_connected: false,
                client_features: 0,
                codecs: vec![],
                total_codecs: 0,
            },
            Some(caps) => {
                let codecs: Vec<CodecCap> = caps
                    .codecs
                    .iter()
                    .map(|c| CodecCap {
                        codec: c.codec,
                        flags: c.flags.bits(),
                        max_width: c.max_width,
                        max_height: c.max_height,
                    })
                    .collect();
                CapsInfo {
                    client_connected: true,
                    client_features: caps.features.bits(),
                    total_codecs: u32::try_from(codecs.len()).unwrap_or(u32::MAX),
                    codecs,
                }
            }
        }
    }

    /// Whether the connected client handles `format` (spec, CHECK_FORMAT).
    pub(super) fn check_client_format(&self, format: &StreamFormat) -> Result<(), Status> {
        let caps = self.client.as_ref().ok_or(Status::NoClient)?;
        let needed = match format.direction {
            Direction::Playback => wire::CodecFlags::DECODE,
            Direction::Capture => wire::CodecFlags::ENCODE,
        };
        let fits = |limit: u32, value: u32| limit == 0 || value <= limit;
        let supported = caps.codecs.iter().any(|c| {
            c.codec == format.codec
                && c.flags.contains(needed)
                && fits(c.max_width, format.media.width)
                && fits(c.max_height, format.media.height)
        });
        if supported {
            Ok(())
        } else {
            Err(Status::Unsupported)
        }
    }
}

fn source_of(source: &wire::CaptureSource) -> Source {
    Source {
        id: source.id,
        kind: source.kind,
        name: source.name.clone(),
    }
}

//! Capture streams (spec 7.10): their start/stop/keyframe requests, and
//! what happens to each compressed sample the client captured before it is
//! written into a buffer the driver posted on capq.
//!
//! The model decides (deliver with which header, or drop) and counts; the
//! bytes themselves never enter it: the core keeps the samples waiting for
//! capq buffers and writes them.

use mediaredir_proto::control::Request;
use mediaredir_proto::data::{DataHeader, FLAG_CODEC_CONFIG, FLAG_DISCONT, FLAG_KEYFRAME};
use mediaredir_proto::event::Event;
use mediaredir_proto::response::ResponseBody;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire;

use super::{Action, DeviceModel, Reply, Stream, StreamState};

impl DeviceModel {
    /// `STREAM_START`, `STREAM_STOP`, `STREAM_REQUEST_KEYFRAME` on stream
    /// `target`, which must be a capture stream.
    pub(super) fn capture_request(
        &mut self,
        request: &Request,
        target: u32,
        actions: &mut Vec<Action>,
    ) -> Result<Reply, Status> {
        let connected = self.client.is_some();
        let stream = self.streams.get_mut(&target).ok_or(Status::NoEntity)?;
        if stream.is_playback() {
            return Err(Status::Invalid);
        }
        control(stream, request, connected, actions)?;
        Ok(Reply::ok(target, ResponseBody::None))
    }
}

/// `STREAM_START`, `STREAM_STOP`, `STREAM_REQUEST_KEYFRAME` on capture
/// stream `stream` (spec 7.7 state table).
fn control(
    stream: &mut Stream,
    request: &Request,
    connected: bool,
    actions: &mut Vec<Action>,
) -> Result<(), Status> {
    let id = stream.id;
    match (request, stream.state) {
        (_, StreamState::Failed(_)) => Err(Status::BadState),
        (Request::StreamStart, StreamState::Capturing) => Ok(()),
        (Request::StreamStart, _) => {
            if !connected {
                return Err(Status::NoClient);
            }
            stream.state = StreamState::Capturing;
            stream.discont = true;
            actions.push(Action::Send(wire::Message::StartCapture { stream: id }));
            Ok(())
        }
        (Request::StreamStop, StreamState::Capturing) => {
            stream.state = StreamState::Stopped;
            actions.push(Action::Send(wire::Message::StopCapture { stream: id }));
            Ok(())
        }
        (Request::StreamStop, _) => Ok(()),
        (Request::StreamRequestKeyframe, StreamState::Capturing) => {
            actions.push(Action::Send(wire::Message::RequestKeyframe { stream: id }));
            Ok(())
        }
        (Request::StreamRequestKeyframe, _) => Err(Status::BadState),
        _ => Err(Status::Invalid),
    }
}

/// What to do with a sample the client captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureVerdict {
    /// Write it into a capq buffer with this header.
    Deliver(DataHeader),
    /// Acknowledge it to the client with this status and discard it
    /// (stream stopped or gone: `CANCELLED`; waiting for a keyframe:
    /// `DROPPED`).
    Discard(Status),
}

impl DeviceModel {
    /// Checks a captured sample of `payload_len` bytes (spec 7.10).
    pub fn capture_sample(
        &mut self,
        sample: &wire::SampleHeader,
        payload_len: u32,
    ) -> CaptureVerdict {
        let generation = self.generation;
        let Some(stream) = self.streams.get_mut(&sample.stream) else {
            return CaptureVerdict::Discard(Status::Cancelled);
        };
        if stream.is_playback() || stream.state != StreamState::Capturing {
            return CaptureVerdict::Discard(Status::Cancelled);
        }
        let keyframe = sample.flags.bits() & FLAG_KEYFRAME != 0;
        if stream.keyframe_needed {
            if !keyframe {
                stream.capture_dropped += 1;
                let event = Event::Qos {
                    stream: stream.id,
                    rendered: stream.captured,
                    dropped: stream.capture_dropped,
                    jitter_ns: 0,
                };
                self.push_event(event);
                return CaptureVerdict::Discard(Status::Dropped);
            }
            stream.keyframe_needed = false;
        }
        let mut flags = sample.flags.bits() & (FLAG_KEYFRAME | FLAG_CODEC_CONFIG);
        if std::mem::take(&mut stream.discont) {
            flags |= FLAG_DISCONT;
        }
        CaptureVerdict::Deliver(DataHeader {
            clip: Default::default(),
            stream_id: sample.stream,
            generation,
            flags,
            payload_len,
            pts: sample.pts,
            dts: sample.dts,
            duration: sample.duration,
        })
    }

    /// A sample of `stream` reached the driver.
    pub fn capture_delivered(&mut self, stream: u32) {
        if let Some(s) = self.streams.get_mut(&stream) {
            s.captured += 1;
        }
    }

    /// A sample of `stream` was dropped (no room): counts it, reports it in
    /// `QOS`, and for video drops the following non-keyframes and asks the
    /// client for a keyframe (spec 7.10).
    pub fn capture_dropped(&mut self, stream: u32) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(s) = self.streams.get_mut(&stream) else {
            return actions;
        };
        s.capture_dropped += 1;
        s.discont = true;
        let event = Event::Qos {
            stream,
            rendered: s.captured,
            dropped: s.capture_dropped,
            jitter_ns: 0,
        };
        if s.is_video() && !s.keyframe_needed {
            s.keyframe_needed = true;
            actions.push(Action::Send(wire::Message::RequestKeyframe { stream }));
        }
        self.push_event(event);
        actions
    }

    /// Byte and time budget of samples of one capture stream waiting for
    /// capq buffers (`max_inflight_bytes`, `max_inflight_ms`).
    pub fn capture_budget(&self) -> (u64, u64) {
        (
            u64::from(self.limits.device.max_inflight_bytes),
            u64::from(self.limits.device.max_inflight_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use mediaredir_proto::codec::Codec;
    use mediaredir_proto::control::{ControlRequest, MediaParams, StreamFormat};

    use super::*;
    use crate::limits::Limits;

    fn capture_format(codec: Codec) -> StreamFormat {
        StreamFormat {
            media: MediaParams {
                sample_rate: 48_000,
                channels: 2,
                bitrate: 64_000,
                ..MediaParams::video(320, 240, 30, 1)
            },
            ..StreamFormat::playback(codec, 0)
        }
        .captured_from(1)
    }

    fn client() -> wire::Capabilities {
        wire::Capabilities {
            features: wire::ClientFeatures::CAPTURE,
            codecs: [Codec::Opus, Codec::Vp8]
                .into_iter()
                .map(|codec| wire::CodecCap {
                    codec,
                    flags: wire::CodecFlags::ENCODE | wire::CodecFlags::DECODE,
                    max_width: 0,
                    max_height: 0,
                })
                .collect(),
            sources: Vec::new(),
        }
    }

    fn model() -> DeviceModel {
        let mut m = DeviceModel::new(7, Limits::default());
        m.set_features(super::super::Features {
            capture: true,
            ..Default::default()
        });
        m.client_connected(client());
        m
    }

    fn req(m: &mut DeviceModel, target: u32, request: Request) -> (Status, u32, Vec<Action>) {
        let (reply, actions) = m.handle(
            ControlRequest {
                generation: 7,
                target,
                request,
            },
            Instant::now(),
        );
        (reply.status, reply.id, actions)
    }

    fn sample(stream: u32, keyframe: bool) -> wire::SampleHeader {
        wire::SampleHeader {
            clip: Default::default(),
            stream,
            seq: 1,
            pts: Some(0),
            dts: None,
            duration: Some(20_000_000),
            flags: if keyframe {
                wire::SampleFlags::KEYFRAME
            } else {
                wire::SampleFlags::empty()
            },
        }
    }

    #[test]
    fn start_stop_and_samples() {
        let mut m = model();
        let (_, pres, _) = req(&mut m, 0, Request::PresCreate { live: true });
        let (status, id, actions) = req(
            &mut m,
            pres,
            Request::StreamCreate(capture_format(Codec::Opus)),
        );
        assert_eq!(status, Status::Ok);
        assert!(
            matches!(&actions[..], [Action::Send(wire::Message::CreateStream(c))] if c.id == id)
        );
        // Not capturing yet: samples are cancelled.
        assert_eq!(
            m.capture_sample(&sample(id, true), 10),
            CaptureVerdict::Discard(Status::Cancelled)
        );
        let (status, _, actions) = req(&mut m, id, Request::StreamStart);
        assert_eq!(status, Status::Ok);
        assert_eq!(
            actions,
            vec![Action::Send(wire::Message::StartCapture { stream: id })]
        );
        let CaptureVerdict::Deliver(first) = m.capture_sample(&sample(id, true), 10) else {
            panic!("capturing stream refuses a sample");
        };
        assert_eq!(
            first.flags & FLAG_DISCONT,
            FLAG_DISCONT,
            "first sample after start"
        );
        assert_eq!((first.generation, first.payload_len), (7, 10));
        let CaptureVerdict::Deliver(second) = m.capture_sample(&sample(id, false), 10) else {
            panic!("second sample refused");
        };
        assert_eq!(second.flags & FLAG_DISCONT, 0);
        let (status, _, actions) = req(&mut m, id, Request::StreamStop);
        assert_eq!(status, Status::Ok);
        assert_eq!(
            actions,
            vec![Action::Send(wire::Message::StopCapture { stream: id })]
        );
        assert_eq!(
            m.capture_sample(&sample(id, true), 10),
            CaptureVerdict::Discard(Status::Cancelled)
        );
        assert_eq!(
            req(&mut m, id, Request::StreamRequestKeyframe).0,
            Status::BadState
        );
    }

    #[test]
    fn a_dropped_video_sample_waits_for_a_keyframe() {
        let mut m = model();
        let (_, pres, _) = req(&mut m, 0, Request::PresCreate { live: true });
        let (_, id, _) = req(
            &mut m,
            pres,
            Request::StreamCreate(capture_format(Codec::Vp8)),
        );
        req(&mut m, id, Request::StreamStart);
        let _ = m.capture_sample(&sample(id, true), 10);
        let actions = m.capture_dropped(id);
        assert_eq!(
            actions,
            vec![Action::Send(wire::Message::RequestKeyframe { stream: id })]
        );
        assert_eq!(
            m.capture_sample(&sample(id, false), 10),
            CaptureVerdict::Discard(Status::Dropped)
        );
        let CaptureVerdict::Deliver(h) = m.capture_sample(&sample(id, true), 10) else {
            panic!("keyframe refused");
        };
        assert_eq!(h.flags & FLAG_DISCONT, FLAG_DISCONT, "after a drop");
        let events: Vec<Event> = std::iter::from_fn(|| m.events.pop()).collect();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Qos { stream, dropped: 2, .. } if *stream == id))
        );
    }

    #[test]
    fn capture_needs_the_feature_and_a_client() {
        let mut m = DeviceModel::new(7, Limits::default());
        m.client_connected(client());
        let (_, pres, _) = req(&mut m, 0, Request::PresCreate { live: true });
        assert_eq!(
            req(
                &mut m,
                pres,
                Request::StreamCreate(capture_format(Codec::Opus))
            )
            .0,
            Status::Invalid
        );
        assert_eq!(
            req(&mut m, 5, Request::StreamStart).0,
            Status::UnknownRequest
        );
    }
}

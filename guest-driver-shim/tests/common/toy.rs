//! The toy media device the driver and broker tests run against: a fixed
//! configuration (generation [`GENERATION`], two txqs), a few control
//! requests answered from nothing (`PRES_CREATE` creates 7, `PRES_PAUSE` is
//! never answered unless a test answers it with
//! [`TestBackend::answer_held`]), events on demand, data completed `OK`
//! when the header checks out.

use std::time::Duration;

use guest_driver_shim::driver::{DriverOptions, FEATURE_CAPTURE};
use guest_driver_shim::vhost_user::{VhostUserOptions, VhostUserTransport};
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::{ControlRequest, Limits, Request, ResponseHeader};
use mediaredir_proto::data::{DATA_HDR_SIZE, DataHeader, status_bytes};
use mediaredir_proto::device::{CONFIG_SIZE, DeviceConfig, DeviceLimits};
use mediaredir_proto::response::{
    CODEC_FLAG_DECODE, CapsInfo, CodecCap, PositionInfo, PresentationState, ResponseBody,
};
use mediaredir_proto::status::Status;

use super::{Reply, STANDARD_FEATURES, TestBackend};

/// The device's generation.
pub(crate) const GENERATION: u32 = 0x5eed_0001;

/// The device's configuration.
pub(crate) fn config() -> DeviceConfig {
    DeviceConfig {
        generation: GENERATION,
        client_connected: true,
        limits: DeviceLimits {
            num_txqs: 2,
            max_presentations: 4,
            max_streams: 8,
            max_buffer_bytes: 1 << 20,
            max_inflight_bytes: 8 << 20,
            max_inflight_ms: 2000,
            max_codec_data: 4096,
            max_sdp: 4096,
            max_call_sessions: 1,
        },
    }
}

/// What `GET_CAPS` answers.
pub(crate) fn caps() -> CapsInfo {
    CapsInfo {
        client_connected: true,
        client_features: 1,
        codecs: vec![CodecCap {
            codec: Codec::H264,
            flags: CODEC_FLAG_DECODE,
            max_width: 1920,
            max_height: 1080,
        }],
        total_codecs: 1,
    }
}

/// A bare response header.
pub(crate) fn answer(status: Status, id: u32) -> Vec<u8> {
    ResponseHeader { status, id }.to_bytes().to_vec()
}

fn response(status: Status, id: u32, body: Option<ResponseBody>, capacity: usize) -> Reply {
    let mut out = answer(status, id);
    if let Some(body) = body {
        out.extend(body.encode(capacity - ResponseHeader::SIZE).unwrap());
    }
    Reply::Write(out)
}

/// The toy device: a few requests, events on demand, data completed OK
/// when the header checks out.
pub(crate) fn toy_device(features: u64) -> TestBackend {
    toy_device_with(features, config())
}

/// The toy device with another configuration (a restarted device).
pub(crate) fn toy_device_with(features: u64, config: DeviceConfig) -> TestBackend {
    let generation = config.generation;
    let mut bytes = config.to_bytes().to_vec();
    assert_eq!(bytes.len(), CONFIG_SIZE);
    bytes.resize(CONFIG_SIZE, 0);
    TestBackend::new(
        features,
        5,
        bytes,
        move |queue, readable, capacity| match queue {
            0 => match ControlRequest::decode(readable, &Limits::from(&config)) {
                Err(e) => response(e.status(), 0, None, capacity),
                Ok(req) if req.generation != generation => {
                    response(Status::Stale, req.target, None, capacity)
                }
                Ok(req) => match req.request {
                    Request::GetCaps => {
                        response(Status::Ok, 0, Some(ResponseBody::Caps(caps())), capacity)
                    }
                    Request::PresCreate { .. } => response(Status::Ok, 7, None, capacity),
                    Request::PresPause => Reply::Hold,
                    Request::PresQueryPosition => response(
                        Status::Ok,
                        req.target,
                        Some(ResponseBody::Position(PositionInfo {
                            position_ns: 1_000_000,
                            buffered_ns: 500_000,
                            state: PresentationState::Playing,
                        })),
                        capacity,
                    ),
                    _ => response(Status::Ok, req.target, None, capacity),
                },
            },
            1 | 2 => Reply::Hold,
            _ => {
                let status = match DataHeader::decode(readable, config.limits.max_buffer_bytes) {
                    Ok(h) if h.generation != generation => Status::Stale,
                    Ok(h) if h.payload_len as usize + DATA_HDR_SIZE != readable.len() => {
                        Status::Invalid
                    }
                    Ok(_) => Status::Ok,
                    Err(e) => e.status(),
                };
                Reply::Write(status_bytes(status).to_vec())
            }
        },
    )
}

/// Offered features: the standard ones plus F_CAPTURE (not F_CALL).
pub(crate) fn device_features() -> u64 {
    STANDARD_FEATURES | FEATURE_CAPTURE
}

/// The transport to the device on `sock`, as a guest would see it.
pub(crate) fn connect(sock: &std::path::Path) -> VhostUserTransport {
    let options = VhostUserOptions {
        memory_size: 8 << 20,
        ..VhostUserOptions::default()
    };
    VhostUserTransport::connect_new(sock, options).unwrap()
}

/// Driver settings: answers within 500 ms.
pub(crate) fn driver_options() -> DriverOptions {
    DriverOptions {
        timeout: Duration::from_millis(500),
        ..DriverOptions::default()
    }
}

//! Test values shared by the control tests and the crate's property tests:
//! one valid example of every request, and a decode of an encoded request.

use super::{
    CALL_MEDIA_AUDIO, ControlRequest, Geometry, Limits, Rect, Request, StreamFormat, TargetKind,
    UNITY_Q16,
};
use crate::ProtoError;
use crate::codec::Codec;

pub(super) fn video_format() -> StreamFormat {
    let mut format = StreamFormat {
        codec_data: vec![1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 0],
        ..StreamFormat::video(Codec::H264, 1, 642, 362, 30, 1)
    };
    format.media.bitrate = 5_000_000;
    format
}

pub(super) fn audio_format() -> StreamFormat {
    StreamFormat::audio(Codec::Opus, 0, 48000, 2)
}

/// One example of every request, with a target of the right kind.
pub(crate) fn every_request() -> Vec<ControlRequest> {
    let geometry = Geometry {
        display_id: 1,
        visible: true,
        color_key: true,
        z: -3,
        dest: Rect {
            x: -10,
            y: 20,
            width: 640,
            height: 360,
        },
        source: Rect::default(),
        clip: vec![
            Rect {
                x: 0,
                y: 0,
                width: 100,
                height: 50
            };
            3
        ],
    };
    let requests = vec![
        Request::GetCaps,
        Request::CheckFormat(video_format()),
        Request::EnumSources,
        Request::PresCreate { live: true },
        Request::PresDestroy,
        Request::PresPlay,
        Request::PresPause,
        Request::PresFlush {
            position_ns: 5_000_000_000,
        },
        Request::PresSetRate {
            rate_q16: 2 * UNITY_Q16,
        },
        Request::PresSetGeometry(geometry),
        Request::PresQueryPosition,
        Request::StreamCreate(audio_format()),
        Request::StreamDestroy,
        Request::StreamSetVolume {
            volume_q16: UNITY_Q16 / 2,
            mute: true,
        },
        Request::StreamStart,
        Request::StreamStop,
        Request::StreamRequestKeyframe,
        Request::CallCreate { sdp: None },
        Request::CallSetRemote {
            sdp: "v=0\r\n".into(),
        },
        Request::CallStart,
        Request::CallHold { hold: true },
        Request::CallDtmf {
            event: 11,
            duration_ms: 160,
        },
        Request::CallMute {
            media: CALL_MEDIA_AUDIO,
            mute: true,
        },
        Request::CallStats,
        Request::CallEnd,
    ];
    requests
        .into_iter()
        .map(|request| ControlRequest {
            generation: 7,
            target: if request.code().target_kind() == TargetKind::None {
                0
            } else {
                42
            },
            request,
        })
        .collect()
}

pub(super) fn decode(request: &Request, target: u32) -> Result<ControlRequest, ProtoError> {
    let bytes = ControlRequest {
        generation: 1,
        target,
        request: request.clone(),
    }
    .encode();
    ControlRequest::decode(&bytes, &Limits::default())
}

//! Encoding a [`ControlRequest`] as the readable part of a control chain:
//! what the guest driver writes, and what the tests decode back.

use zerocopy::IntoBytes;

use super::bytes::len_u32;
use super::{CALL_FLAG_OFFER, ControlRequest, RawCtrlHdr, RawFlush, RawPair, Request};

impl ControlRequest {
    /// Encodes the readable part of a control chain (the driver's side).
    pub fn encode(&self) -> Vec<u8> {
        let hdr = RawCtrlHdr {
            code: (self.request.code() as u32).into(),
            generation: self.generation.into(),
            target: self.target.into(),
            reserved: 0.into(),
        };
        let mut out = hdr.as_bytes().to_vec();
        let pair = |out: &mut Vec<u8>, a: u32, b: u32| {
            out.extend_from_slice(
                RawPair {
                    a: a.into(),
                    b: b.into(),
                }
                .as_bytes(),
            );
        };
        match &self.request {
            Request::GetCaps
            | Request::EnumSources
            | Request::PresDestroy
            | Request::PresPlay
            | Request::PresPause
            | Request::PresQueryPosition
            | Request::StreamDestroy
            | Request::StreamStart
            | Request::StreamStop
            | Request::StreamRequestKeyframe
            | Request::CallStart
            | Request::CallStats
            | Request::CallEnd => {}
            Request::CheckFormat(format) | Request::StreamCreate(format) => {
                format.encode_into(&mut out)
            }
            Request::PresCreate { live } => pair(&mut out, u32::from(*live), 0),
            Request::PresFlush { position_ns } => {
                let body = RawFlush {
                    position_ns: (*position_ns).into(),
                    flags: 0.into(),
                    reserved: 0.into(),
                };
                out.extend_from_slice(body.as_bytes());
            }
            Request::PresSetRate { rate_q16 } => pair(&mut out, *rate_q16, 0),
            Request::PresSetGeometry(geometry) => geometry.encode_into(&mut out),
            Request::StreamSetVolume { volume_q16, mute } => {
                pair(&mut out, *volume_q16, u32::from(*mute))
            }
            Request::CallCreate { sdp } => {
                let text = sdp.as_deref().unwrap_or("");
                let flags = if sdp.is_none() { CALL_FLAG_OFFER } else { 0 };
                pair(&mut out, flags, len_u32(text.len()));
                out.extend_from_slice(text.as_bytes());
            }
            Request::CallSetRemote { sdp } => {
                pair(&mut out, len_u32(sdp.len()), 0);
                out.extend_from_slice(sdp.as_bytes());
            }
            Request::CallHold { hold } => pair(&mut out, u32::from(*hold), 0),
            Request::CallDtmf { event, duration_ms } => pair(&mut out, *event, *duration_ms),
            Request::CallMute { media, mute } => pair(&mut out, *media, u32::from(*mute)),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::control::fixtures::every_request;
    use crate::control::{ControlRequest, Limits, Request, RequestCode};

    #[test]
    fn every_request_round_trips() {
        let all = every_request();
        let codes: std::collections::HashSet<_> = all.iter().map(|r| r.request.code()).collect();
        assert_eq!(
            codes.len(),
            RequestCode::ALL.len(),
            "a request code has no example"
        );
        for request in all {
            let bytes = request.encode();
            assert_eq!(
                ControlRequest::decode(&bytes, &Limits::default()),
                Ok(request)
            );
        }
        let offer = ControlRequest {
            generation: 1,
            target: 0,
            request: Request::CallCreate {
                sdp: Some("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n".into()),
            },
        };
        assert_eq!(
            ControlRequest::decode(&offer.encode(), &Limits::default()),
            Ok(offer)
        );
    }
}

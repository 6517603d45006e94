//! Decoding the readable part of a control chain: header, request code,
//! target, then the body each code defines, with every per-field rule of the
//! spec. Errors are [`ProtoError`]s whose status the device answers.

use super::bytes::{bool_field, expect_end, invalid, read_prefix, sdp_text, take_exact};
use super::{
    CALL_FLAG_OFFER, CALL_MEDIA_AUDIO, CALL_MEDIA_VIDEO, ControlRequest, Geometry, Limits,
    MAX_RATE_Q16, MAX_VOLUME_Q16, MIN_RATE_Q16, PRES_FLAG_LIVE, RawCtrlHdr, RawFlush, RawPair,
    Request, RequestCode, StreamFormat, TargetKind,
};
use crate::ProtoError;

impl ControlRequest {
    /// Decodes the readable part of a control chain.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<ControlRequest, ProtoError> {
        let (hdr, rest): (RawCtrlHdr, _) = read_prefix(bytes, "control header")?;
        let code = RequestCode::from_u32(hdr.code.get())?;
        let target = hdr.target.get();
        match (code.target_kind(), target) {
            (TargetKind::None, 0) => {}
            (TargetKind::None, other) => {
                return Err(invalid("target", other, "must be 0 for this request"));
            }
            (_, 0) => return Err(invalid("target", 0u32, "this request needs an id")),
            _ => {}
        }
        let request = Self::decode_body(code, rest, limits)?;
        Ok(ControlRequest {
            generation: hdr.generation.get(),
            target,
            request,
        })
    }

    fn decode_body(code: RequestCode, rest: &[u8], limits: &Limits) -> Result<Request, ProtoError> {
        let pair = |what| -> Result<RawPair, ProtoError> {
            let (pair, tail): (RawPair, _) = read_prefix(rest, what)?;
            expect_end(tail, what)?;
            Ok(pair)
        };
        let empty = |request| expect_end(rest, "request body").map(|()| request);
        Ok(match code {
            RequestCode::GetCaps => empty(Request::GetCaps)?,
            RequestCode::CheckFormat => Request::CheckFormat(StreamFormat::decode(rest, limits)?),
            RequestCode::EnumSources => empty(Request::EnumSources)?,
            RequestCode::PresCreate => {
                let body = pair("presentation create")?;
                let flags = body.a.get();
                if flags & !PRES_FLAG_LIVE != 0 {
                    return Err(invalid("flags", flags, "unknown presentation flag"));
                }
                Request::PresCreate {
                    live: flags & PRES_FLAG_LIVE != 0,
                }
            }
            RequestCode::PresDestroy => empty(Request::PresDestroy)?,
            RequestCode::PresPlay => empty(Request::PresPlay)?,
            RequestCode::PresPause => empty(Request::PresPause)?,
            RequestCode::PresFlush => {
                let (body, tail): (RawFlush, _) = read_prefix(rest, "flush")?;
                expect_end(tail, "flush")?;
                let position_ns = body.position_ns.get();
                if position_ns == crate::time::TIME_NONE {
                    return Err(invalid("position_ns", position_ns, "must be a time"));
                }
                if body.flags.get() != 0 {
                    return Err(invalid(
                        "flags",
                        body.flags.get(),
                        "no flush flag is defined",
                    ));
                }
                Request::PresFlush { position_ns }
            }
            RequestCode::PresSetRate => {
                let rate_q16 = pair("rate")?.a.get();
                if !(MIN_RATE_Q16..=MAX_RATE_Q16).contains(&rate_q16) {
                    return Err(invalid("rate_q16", rate_q16, "must be 8192..=524288"));
                }
                Request::PresSetRate { rate_q16 }
            }
            RequestCode::PresSetGeometry => Request::PresSetGeometry(Geometry::decode(rest)?),
            RequestCode::PresQueryPosition => empty(Request::PresQueryPosition)?,
            RequestCode::StreamCreate => Request::StreamCreate(StreamFormat::decode(rest, limits)?),
            RequestCode::StreamDestroy => empty(Request::StreamDestroy)?,
            RequestCode::StreamSetVolume => {
                let body = pair("volume")?;
                let volume_q16 = body.a.get();
                if volume_q16 > MAX_VOLUME_Q16 {
                    return Err(invalid("volume_q16", volume_q16, "must be <= 262144"));
                }
                Request::StreamSetVolume {
                    volume_q16,
                    mute: bool_field("mute", body.b.get())?,
                }
            }
            RequestCode::StreamStart => empty(Request::StreamStart)?,
            RequestCode::StreamStop => empty(Request::StreamStop)?,
            RequestCode::StreamRequestKeyframe => empty(Request::StreamRequestKeyframe)?,
            RequestCode::CallCreate => {
                let (body, tail): (RawPair, _) = read_prefix(rest, "call create")?;
                let flags = body.a.get();
                if flags & !CALL_FLAG_OFFER != 0 {
                    return Err(invalid("flags", flags, "unknown call flag"));
                }
                let sdp = take_exact(tail, body.b.get(), limits.max_sdp, "sdp")?;
                let offer = flags & CALL_FLAG_OFFER != 0;
                match (offer, sdp.is_empty()) {
                    (true, true) => Request::CallCreate { sdp: None },
                    (false, false) => Request::CallCreate {
                        sdp: Some(sdp_text(sdp)?),
                    },
                    (true, false) => {
                        return Err(invalid("sdp_len", body.b.get(), "must be 0 with OFFER"));
                    }
                    (false, true) => {
                        return Err(invalid(
                            "sdp_len",
                            0u32,
                            "a remote offer is required without OFFER",
                        ));
                    }
                }
            }
            RequestCode::CallSetRemote => {
                let (body, tail): (RawPair, _) = read_prefix(rest, "call remote")?;
                let sdp = take_exact(tail, body.a.get(), limits.max_sdp, "sdp")?;
                if sdp.is_empty() {
                    return Err(invalid("sdp_len", 0u32, "must not be 0"));
                }
                Request::CallSetRemote {
                    sdp: sdp_text(sdp)?,
                }
            }
            RequestCode::CallStart => empty(Request::CallStart)?,
            RequestCode::CallHold => Request::CallHold {
                hold: bool_field("hold", pair("hold")?.a.get())?,
            },
            RequestCode::CallDtmf => {
                let body = pair("dtmf")?;
                let (event, duration_ms) = (body.a.get(), body.b.get());
                if event > 15 {
                    return Err(invalid("event", event, "RFC 4733 DTMF events are 0..=15"));
                }
                if !(40..=5000).contains(&duration_ms) {
                    return Err(invalid("duration_ms", duration_ms, "must be 40..=5000"));
                }
                Request::CallDtmf { event, duration_ms }
            }
            RequestCode::CallMute => {
                let body = pair("mute")?;
                let media = body.a.get();
                if media == 0 || media & !(CALL_MEDIA_AUDIO | CALL_MEDIA_VIDEO) != 0 {
                    return Err(invalid("media", media, "must be a nonzero mask of 1|2"));
                }
                Request::CallMute {
                    media,
                    mute: bool_field("mute", body.b.get())?,
                }
            }
            RequestCode::CallStats => empty(Request::CallStats)?,
            RequestCode::CallEnd => empty(Request::CallEnd)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ProtoError;
    use crate::control::fixtures::{decode, every_request};
    use crate::control::{ControlRequest, Limits, Request};
    use crate::status::Status;

    #[test]
    fn unknown_code_and_targets() {
        let mut bytes = every_request()[0].encode();
        bytes[0] = 0x99;
        let err = ControlRequest::decode(&bytes, &Limits::default()).unwrap_err();
        assert_eq!(err.status(), Status::UnknownRequest);
        assert!(decode(&Request::GetCaps, 3).is_err());
        assert!(decode(&Request::PresPlay, 0).is_err());
    }

    #[test]
    fn truncated_and_trailing_bodies() {
        let bytes = every_request()[7].encode();
        for cut in 0..bytes.len() {
            assert!(ControlRequest::decode(&bytes[..cut], &Limits::default()).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            ControlRequest::decode(&long, &Limits::default()),
            Err(ProtoError::TrailingBytes { .. })
        ));
    }
}

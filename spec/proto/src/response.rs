//! Response bodies of the control queue (spec, "Control requests": the
//! response column of each request).
//!
//! The device writes them into the writable part of the chain, which the
//! driver sized; lists are truncated to what fits and say how many entries
//! exist in total, so a driver can retry with a larger buffer.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::ProtoError;
use crate::codec::Codec;
use crate::control::{
    MAX_CODECS, MAX_SOURCES, expect_end, invalid, len_u32, read_prefix, sdp_text,
};
pub use crate::enums::{PresentationState, SourceKind};
use crate::layout::virtio_struct;

/// Capability flag: the client decodes this codec.
pub const CODEC_FLAG_DECODE: u32 = 1;
/// Capability flag: the client encodes this codec (capture).
pub const CODEC_FLAG_ENCODE: u32 = 2;
/// Capability flag: the client carries this codec over RTP (calls).
pub const CODEC_FLAG_RTP: u32 = 4;
/// Client feature: renders overlays.
pub const CLIENT_FEATURE_OVERLAY: u32 = 1;
/// Client feature: captures.
pub const CLIENT_FEATURE_CAPTURE: u32 = 2;
/// Client feature: runs call media.
pub const CLIENT_FEATURE_CALL: u32 = 4;
/// Bytes of a source name.
pub const SOURCE_NAME_LEN: usize = 56;

virtio_struct! {
    /// `struct virtio_media_redir_caps_hdr` (16 bytes).
    pub struct RawCapsHdr {
        /// 0 no client, 1 connected.
        pub client_state: U32,
        /// Client feature bits.
        pub client_features: U32,
        /// Entries written after this header.
        pub num_codecs: U32,
        /// Entries the client has.
        pub total_codecs: U32,
    }
}

virtio_struct! {
    /// `struct virtio_media_redir_codec_cap` (16 bytes).
    pub struct RawCodecCap {
        /// Codec number.
        pub codec: U32,
        /// Decode/encode/RTP flags.
        pub flags: U32,
        /// Largest width (0: not stated).
        pub max_width: U32,
        /// Largest height (0: not stated).
        pub max_height: U32,
    }
}

/// `struct virtio_media_redir_source` (64 bytes).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct RawSource {
    /// Source id.
    pub id: U32,
    /// 0 microphone, 1 camera, 2 screen.
    pub kind: U32,
    /// UTF-8 name, NUL-padded.
    pub name: [u8; SOURCE_NAME_LEN],
}

virtio_struct! {
    /// `struct virtio_media_redir_position` (24 bytes).
    pub struct RawPosition {
        /// Stream time being shown.
        pub position_ns: U64,
        /// Media buffered at the client ahead of the position.
        pub buffered_ns: U64,
        /// 0 idle, 1 playing, 2 paused.
        pub state: U32,
        /// Reserved, zero.
        pub reserved: U32,
    }
}

virtio_struct! {
    /// `struct virtio_media_redir_call_stats` (32 bytes).
    pub struct RawCallStats {
        /// Interarrival jitter (RFC 3550), microseconds.
        pub jitter_us: U32,
        /// Round-trip time from RTCP, microseconds.
        pub rtt_us: U32,
        /// Packets lost.
        pub packets_lost: U64,
        /// Packets received.
        pub packets_received: U64,
        /// Estimated MOS times 100.
        pub mos_x100: U32,
        /// Reserved, zero.
        pub reserved: U32,
    }
}

/// One codec the client handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecCap {
    /// The codec.
    pub codec: Codec,
    /// `CODEC_FLAG_*` bits.
    pub flags: u32,
    /// Largest width (0: not stated).
    pub max_width: u32,
    /// Largest height (0: not stated).
    pub max_height: u32,
}

/// A capture source of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Source id.
    pub id: u32,
    /// Kind.
    pub kind: SourceKind,
    /// Name (at most 56 bytes of UTF-8).
    pub name: String,
}

/// Position of a presentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionInfo {
    /// Stream time being shown.
    pub position_ns: u64,
    /// Media buffered at the client.
    pub buffered_ns: u64,
    /// State.
    pub state: PresentationState,
}

/// Call statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStatsInfo {
    /// Jitter, microseconds.
    pub jitter_us: u32,
    /// Round-trip time, microseconds.
    pub rtt_us: u32,
    /// Packets lost.
    pub packets_lost: u64,
    /// Packets received.
    pub packets_received: u64,
    /// MOS estimate times 100 (100..=500).
    pub mos_x100: u32,
}

/// What the client can do, as `GET_CAPS` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapsInfo {
    /// Whether a client is connected.
    pub client_connected: bool,
    /// `CLIENT_FEATURE_*` bits.
    pub client_features: u32,
    /// Codec entries (possibly truncated).
    pub codecs: Vec<CodecCap>,
    /// How many entries the client has.
    pub total_codecs: u32,
}

/// A response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body.
    None,
    /// `GET_CAPS`.
    Caps(CapsInfo),
    /// `ENUM_SOURCES`: entries and total.
    Sources(Vec<Source>, u32),
    /// `PRES_QUERY_POSITION`.
    Position(PositionInfo),
    /// `CALL_CREATE`: the local SDP.
    CallSdp(String),
    /// `CALL_STATS`.
    CallStats(CallStatsInfo),
}

fn fitting(capacity: usize, header: usize, entry: usize, available: usize, cap: usize) -> usize {
    (capacity.saturating_sub(header) / entry)
        .min(available)
        .min(cap)
}

impl ResponseBody {
    /// Encodes the body into at most `capacity` bytes, truncating lists to
    /// whole entries that fit. Returns `None` when not even the fixed part
    /// fits (the device then answers `INVALID` with no body).
    pub fn encode(&self, capacity: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            ResponseBody::None => {}
            ResponseBody::Caps(caps) => {
                let n = fitting(capacity, 16, 16, caps.codecs.len(), MAX_CODECS);
                let hdr = RawCapsHdr {
                    client_state: u32::from(caps.client_connected).into(),
                    client_features: caps.client_features.into(),
                    num_codecs: len_u32(n).into(),
                    total_codecs: caps.total_codecs.into(),
                };
                out.extend_from_slice(hdr.as_bytes());
                for cap in &caps.codecs[..n] {
                    let raw = RawCodecCap {
                        codec: cap.codec.as_u32().into(),
                        flags: cap.flags.into(),
                        max_width: cap.max_width.into(),
                        max_height: cap.max_height.into(),
                    };
                    out.extend_from_slice(raw.as_bytes());
                }
            }
            ResponseBody::Sources(sources, total) => {
                let n = fitting(capacity, 8, 64, sources.len(), MAX_SOURCES);
                out.extend_from_slice(&len_u32(n).to_le_bytes());
                out.extend_from_slice(&total.to_le_bytes());
                for source in &sources[..n] {
                    let mut name = [0u8; SOURCE_NAME_LEN];
                    let len = truncate_utf8(&source.name, SOURCE_NAME_LEN);
                    name[..len].copy_from_slice(&source.name.as_bytes()[..len]);
                    let raw = RawSource {
                        id: source.id.into(),
                        kind: source.kind.as_u32().into(),
                        name,
                    };
                    out.extend_from_slice(raw.as_bytes());
                }
            }
            ResponseBody::Position(pos) => {
                let raw = RawPosition {
                    position_ns: pos.position_ns.into(),
                    buffered_ns: pos.buffered_ns.into(),
                    state: pos.state.as_u32().into(),
                    reserved: 0.into(),
                };
                out.extend_from_slice(raw.as_bytes());
            }
            ResponseBody::CallSdp(sdp) => {
                out.extend_from_slice(&len_u32(sdp.len()).to_le_bytes());
                out.extend_from_slice(&0u32.to_le_bytes());
                out.extend_from_slice(sdp.as_bytes());
            }
            ResponseBody::CallStats(stats) => {
                let raw = RawCallStats {
                    jitter_us: stats.jitter_us.into(),
                    rtt_us: stats.rtt_us.into(),
                    packets_lost: stats.packets_lost.into(),
                    packets_received: stats.packets_received.into(),
                    mos_x100: stats.mos_x100.into(),
                    reserved: 0.into(),
                };
                out.extend_from_slice(raw.as_bytes());
            }
        }
        (out.len() <= capacity).then_some(out)
    }

    /// Decodes the body of a successful response to `code` (the driver's
    /// side).
    pub fn decode(
        code: crate::control::RequestCode,
        bytes: &[u8],
    ) -> Result<ResponseBody, ProtoError> {
        use crate::control::RequestCode as C;
        match code {
            C::GetCaps => {
                let (hdr, mut rest): (RawCapsHdr, _) = read_prefix(bytes, "caps header")?;
                let n = hdr.num_codecs.get();
                if n as usize > MAX_CODECS || n > hdr.total_codecs.get() {
                    return Err(invalid(
                        "num_codecs",
                        n,
                        "at most 64 and at most total_codecs",
                    ));
                }
                let mut codecs = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let (raw, next): (RawCodecCap, _) = read_prefix(rest, "codec cap")?;
                    codecs.push(CodecCap {
                        codec: Codec::from_u32(raw.codec.get())?,
                        flags: raw.flags.get(),
                        max_width: raw.max_width.get(),
                        max_height: raw.max_height.get(),
                    });
                    rest = next;
                }
                expect_end(rest, "caps")?;
                Ok(ResponseBody::Caps(CapsInfo {
                    client_connected: match hdr.client_state.get() {
                        0 => false,
                        1 => true,
                        other => return Err(invalid("client_state", other, "must be 0 or 1")),
                    },
                    client_features: hdr.client_features.get(),
                    codecs,
                    total_codecs: hdr.total_codecs.get(),
                }))
            }
            C::EnumSources => {
                let (counts, mut rest): ([U32; 2], _) = read_prefix(bytes, "sources header")?;
                let n = counts[0].get();
                if n as usize > MAX_SOURCES || n > counts[1].get() {
                    return Err(invalid("num_sources", n, "at most 32 and at most total"));
                }
                let mut sources = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let (raw, next): (RawSource, _) = read_prefix(rest, "source")?;
                    let end = raw
                        .name
                        .iter()
                        .position(|b| *b == 0)
                        .unwrap_or(SOURCE_NAME_LEN);
                    let name = std::str::from_utf8(&raw.name[..end])
                        .map_err(|_| ProtoError::BadText("source name"))?;
                    sources.push(Source {
                        id: raw.id.get(),
                        kind: SourceKind::from_u32(raw.kind.get())?,
                        name: name.to_owned(),
                    });
                    rest = next;
                }
                expect_end(rest, "sources")?;
                Ok(ResponseBody::Sources(sources, counts[1].get()))
            }
            C::PresQueryPosition => {
                let (raw, rest): (RawPosition, _) = read_prefix(bytes, "position")?;
                expect_end(rest, "position")?;
                Ok(ResponseBody::Position(PositionInfo {
                    position_ns: raw.position_ns.get(),
                    buffered_ns: raw.buffered_ns.get(),
                    state: PresentationState::from_u32(raw.state.get())?,
                }))
            }
            C::CallCreate => {
                let (counts, rest): ([U32; 2], _) = read_prefix(bytes, "call sdp")?;
                let len = counts[0].get() as usize;
                if rest.len() != len {
                    return Err(invalid(
                        "sdp_len",
                        counts[0].get(),
                        "must equal the bytes that follow",
                    ));
                }
                Ok(ResponseBody::CallSdp(sdp_text(rest)?))
            }
            C::CallStats => {
                let (raw, rest): (RawCallStats, _) = read_prefix(bytes, "call stats")?;
                expect_end(rest, "call stats")?;
                Ok(ResponseBody::CallStats(CallStatsInfo {
                    jitter_us: raw.jitter_us.get(),
                    rtt_us: raw.rtt_us.get(),
                    packets_lost: raw.packets_lost.get(),
                    packets_received: raw.packets_received.get(),
                    mos_x100: raw.mos_x100.get(),
                }))
            }
            _ => expect_end(bytes, "response body").map(|()| ResponseBody::None),
        }
    }
}

/// Longest prefix of `text` of at most `max` bytes that ends on a character
/// boundary.
fn truncate_utf8(text: &str, max: usize) -> usize {
    let mut len = text.len().min(max);
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::RequestCode;

    fn caps(n: usize) -> CapsInfo {
        CapsInfo {
            client_connected: true,
            client_features: CLIENT_FEATURE_OVERLAY,
            codecs: (0..n)
                .map(|i| CodecCap {
                    codec: Codec::ALL[i % Codec::ALL.len()],
                    flags: CODEC_FLAG_DECODE,
                    max_width: 3840,
                    max_height: 2160,
                })
                .collect(),
            total_codecs: u32::try_from(n).unwrap(),
        }
    }

    #[test]
    fn every_body_round_trips() {
        let bodies = [
            (RequestCode::GetCaps, ResponseBody::Caps(caps(5))),
            (
                RequestCode::EnumSources,
                ResponseBody::Sources(
                    vec![Source {
                        id: 3,
                        kind: SourceKind::Camera,
                        name: "Webcam C920".into(),
                    }],
                    1,
                ),
            ),
            (
                RequestCode::PresQueryPosition,
                ResponseBody::Position(PositionInfo {
                    position_ns: 1_500_000_000,
                    buffered_ns: 800_000_000,
                    state: PresentationState::Playing,
                }),
            ),
            (
                RequestCode::CallCreate,
                ResponseBody::CallSdp("v=0\r\n".into()),
            ),
            (
                RequestCode::CallStats,
                ResponseBody::CallStats(CallStatsInfo {
                    jitter_us: 1200,
                    rtt_us: 30_000,
                    packets_lost: 2,
                    packets_received: 500,
                    mos_x100: 430,
                }),
            ),
            (RequestCode::PresPlay, ResponseBody::None),
        ];
        for (code, body) in bodies {
            let bytes = body.encode(4096).unwrap();
            assert_eq!(ResponseBody::decode(code, &bytes), Ok(body));
        }
    }

    #[test]
    fn lists_truncate_to_capacity() {
        let bytes = ResponseBody::Caps(caps(10))
            .encode(16 + 3 * 16 + 15)
            .unwrap();
        match ResponseBody::decode(RequestCode::GetCaps, &bytes).unwrap() {
            ResponseBody::Caps(c) => {
                assert_eq!(c.codecs.len(), 3);
                assert_eq!(c.total_codecs, 10);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ResponseBody::Caps(caps(1)).encode(15), None);
    }

    #[test]
    fn long_source_names_truncate_on_char_boundary() {
        let name = "é".repeat(40);
        let body = ResponseBody::Sources(
            vec![Source {
                id: 1,
                kind: SourceKind::Microphone,
                name,
            }],
            1,
        );
        match ResponseBody::decode(RequestCode::EnumSources, &body.encode(1000).unwrap()).unwrap() {
            ResponseBody::Sources(s, _) => assert_eq!(s[0].name, "é".repeat(28)),
            other => panic!("{other:?}"),
        }
    }
}

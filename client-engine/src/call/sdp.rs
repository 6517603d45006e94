//! SDP of call media sessions (spec 7.12): the client's offers and answers
//! (RFC 3264 offer/answer, plain RTP/AVP over UDP, no ICE, no SRTP), and the
//! parsing of the remote peer's SDP with `gstreamer-sdp`. The remote SDP is
//! untrusted: anything malformed is an [`SdpError`], never a panic.
//!
//! What the client produces:
//!
//! ```text
//! v=0
//! o=- <session id> 1 IN IP4 <address>
//! s=vhost-device-media
//! c=IN IP4 <address>
//! t=0 0
//! m=audio <port> RTP/AVP 96 101
//! a=rtpmap:96 opus/48000/2
//! a=fmtp:96 minptime=10;useinbandfec=1
//! a=rtpmap:101 telephone-event/48000
//! a=fmtp:101 0-15
//! a=ptime:20
//! a=rtcp:<port + 1>
//! a=sendrecv
//! m=video <port> RTP/AVP 97        (offers with video; answers to a VP8 line)
//! a=rtpmap:97 VP8/90000
//! a=rtcp:<port + 1>
//! a=sendrecv
//! ```
//!
//! An answer keeps the offer's payload type numbers, answers every m-line in
//! order, and rejects (port 0) the lines it cannot carry.

use std::fmt::Write as _;
use std::net::IpAddr;

use gstreamer_sdp as gst_sdp;
use mediaredir_proto::wire::MAX_SDP_LEN;

/// Payload type of Opus in the client's offers.
pub const OPUS_PT: u8 = 96;
/// Payload type of VP8 in the client's offers.
pub const VP8_PT: u8 = 97;
/// Payload type of RFC 4733 telephone events in the client's offers.
pub const DTMF_PT: u8 = 101;

/// Why a remote SDP was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Not parseable, or a required field is missing or malformed.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// Well-formed, but nothing the client can carry (no Opus audio over
    /// plain RTP).
    #[error("unsupported SDP: {0}")]
    Unsupported(String),
    /// Longer than the protocol allows.
    #[error("SDP longer than {MAX_SDP_LEN} bytes")]
    TooLong,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Opus audio (and telephone events).
    Audio,
    /// VP8 video.
    Video,
}

/// One usable media line of the remote SDP: where to send and with which
/// payload types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Audio or video.
    pub kind: Kind,
    /// Where the peer receives RTP.
    pub address: IpAddr,
    /// RTP port.
    pub rtp_port: u16,
    /// RTCP port (`a=rtcp` or RTP + 1).
    pub rtcp_port: u16,
    /// Payload type of Opus or VP8.
    pub pt: u8,
    /// Payload type and clock rate of telephone events (audio).
    pub dtmf: Option<(u8, u32)>,
}

/// One m-line of the remote SDP as the answer must echo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The media name (`audio`, `video`, `application`, ...).
    pub media: String,
    /// The transport protocol.
    pub proto: String,
    /// The formats (payload types).
    pub formats: Vec<String>,
    /// What the client uses of it, or `None`: rejected in the answer.
    pub usable: Option<RemoteMedia>,
}

/// A parsed remote SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Every m-line, in order.
    pub lines: Vec<Line>,
}

impl Remote {
    /// The first usable line of `kind`.
    pub fn media(&self, kind: Kind) -> Option<&RemoteMedia> {
        self.lines
            .iter()
            .filter_map(|l| l.usable.as_ref())
            .find(|m| m.kind == kind)
    }
}

/// `pt name/clock[/channels]` of an `a=rtpmap` value.
fn rtpmap(value: &str) -> Option<(u8, String, u32)> {
    let (pt, rest) = value.trim().split_once(' ')?;
    let pt: u8 = pt.parse().ok()?;
    let mut parts = rest.trim().split('/');
    let name = parts.next()?.to_ascii_lowercase();
    let clock: u32 = parts.next()?.parse().ok()?;
    Some((pt, name, clock))
}

fn address(nettype: Option<&str>, addrtype: Option<&str>, addr: Option<&str>) -> Option<IpAddr> {
    if nettype? != "IN" {
        return None;
    }
    let addr = addr?;
    // Multicast "addr/ttl" forms are not supported: the whole field must be
    // an address.
    let ip: IpAddr = addr.parse().ok()?;
    match (addrtype?, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Some(ip),
        _ => None,
    }
}

/// The line structure `gstreamer-sdp` is lenient about: `v=0` first, every
/// line `<letter>=<value>`, `o=`, `s=` and `t=` present, `m=` lines with a
/// numeric port (`port` or `port/count`), a protocol and formats.
fn check_lines(sdp: &str) -> Result<(), SdpError> {
    let bad = |what: &str| Err(SdpError::Malformed(what.into()));
    let mut lines = sdp.lines().map(|l| l.trim_end_matches('\r'));
    if lines.next() != Some("v=0") {
        return bad("does not start with v=0");
    }
    let (mut o, mut s, mut t) = (false, false, false);
    for l in lines {
        if l.is_empty() {
            continue;
        }
        let b = l.as_bytes();
        if b.len() < 2 || b[1] != b'=' || !b[0].is_ascii_lowercase() {
            return bad(&format!("line {l:?}"));
        }
        match b[0] {
            b'o' => o = true,
            b's' => s = true,
            b't' => t = true,
            b'm' => {
                let f: Vec<&str> = l[2..].split_whitespace().collect();
                let port = f.get(1).and_then(|p| p.split('/').next());
                if f.len() < 4 || port.and_then(|p| p.parse::<u16>().ok()).is_none() {
                    return bad(&format!("media line {l:?}"));
                }
            }
            _ => {}
        }
    }
    if !(o && s && t) {
        return bad("o=, s= or t= missing");
    }
    Ok(())
}

/// Lowest port the client sends media to: the SDP comes from the untrusted
/// guest, which must not turn the client into a packet source aimed at
/// well-known services.
pub const MIN_REMOTE_PORT: u16 = 1024;

/// Where the client may send: a unicast address (not unspecified,
/// multicast or broadcast) and unprivileged ports.
fn check_destination(addr: IpAddr, rtp: u16, rtcp: u16) -> Result<(), SdpError> {
    let broadcast = matches!(addr, IpAddr::V4(a) if a.is_broadcast());
    if addr.is_unspecified() || addr.is_multicast() || broadcast {
        return Err(SdpError::Unsupported(format!(
            "media address {addr}: only unicast"
        )));
    }
    if rtp < MIN_REMOTE_PORT || rtcp < MIN_REMOTE_PORT {
        return Err(SdpError::Unsupported(format!(
            "media ports {rtp}/{rtcp}: below {MIN_REMOTE_PORT}"
        )));
    }
    Ok(())
}

/// Parses a remote offer or answer; `video` says whether VP8 video lines
/// are taken.
///
/// # Errors
/// [`SdpError::Malformed`] for what does not parse, [`SdpError::Unsupported`]
/// when no line carries Opus audio over RTP/AVP(F), [`SdpError::TooLong`].
pub fn parse(sdp: &str, video: bool) -> Result<Remote, SdpError> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(SdpError::TooLong);
    }
    if sdp.contains('\0') {
        return Err(SdpError::Malformed("NUL byte".into()));
    }
    check_lines(sdp)?;
    let msg = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes())
        .map_err(|e| SdpError::Malformed(e.to_string()))?;
    let session_addr = msg
        .connection()
        .and_then(|c| address(c.nettype(), c.addrtype(), c.address()));
    if msg.medias_len() == 0 {
        return Err(SdpError::Malformed("no m= line".into()));
    }
    let mut lines = Vec::new();
    for m in msg.medias() {
        let media = m.media().unwrap_or("").to_string();
        let proto = m.proto().unwrap_or("").to_string();
        if media.is_empty() || proto.is_empty() {
            return Err(SdpError::Malformed("m= line without media or proto".into()));
        }
        let formats: Vec<String> = m.formats().map(str::to_string).collect();
        let port = u16::try_from(m.port()).map_err(|_| SdpError::Malformed("port".into()))?;
        let kind = match media.as_str() {
            "audio" => Some(Kind::Audio),
            "video" if video => Some(Kind::Video),
            _ => None,
        };
        let plain_rtp = proto == "RTP/AVP" || proto == "RTP/AVPF";
        let usable = match kind {
            Some(kind) if plain_rtp && port != 0 => {
                let addr = m
                    .connections()
                    .next()
                    .and_then(|c| address(c.nettype(), c.addrtype(), c.address()))
                    .or(session_addr)
                    .ok_or_else(|| SdpError::Malformed(format!("no address for {media}")))?;
                let mut pt = None;
                let mut dtmf: Option<(u8, u32)> = None;
                let mut rtcp_port = None;
                for a in m.attributes() {
                    match (a.key(), a.value()) {
                        ("rtpmap", Some(v)) => {
                            let Some((p, name, clock)) = rtpmap(v) else {
                                return Err(SdpError::Malformed(format!("a=rtpmap:{v}")));
                            };
                            if !formats.iter().any(|f| f == &p.to_string()) {
                                continue;
                            }
                            match (kind, name.as_str(), clock) {
                                (Kind::Audio, "opus", 48000) | (Kind::Video, "vp8", 90000) => {
                                    pt.get_or_insert(p);
                                }
                                // Prefer the clock of Opus (48 kHz).
                                (Kind::Audio, "telephone-event", c)
                                    if dtmf.is_none_or(|(_, old)| old != 48000) =>
                                {
                                    dtmf = Some((p, c));
                                }
                                _ => {}
                            }
                        }
                        ("rtcp", Some(v)) => {
                            let first = v.split_whitespace().next().unwrap_or("");
                            rtcp_port = Some(
                                first
                                    .parse::<u16>()
                                    .map_err(|_| SdpError::Malformed(format!("a=rtcp:{v}")))?,
                            );
                        }
                        _ => {}
                    }
                }
                let rtcp_port = rtcp_port.unwrap_or_else(|| port.saturating_add(1));
                check_destination(addr, port, rtcp_port)?;
                pt.map(|pt| RemoteMedia {
                    kind,
                    address: addr,
                    rtp_port: port,
                    rtcp_port,
                    pt,
                    dtmf,
                })
            }
            _ => None,
        };
        lines.push(Line {
            media,
            proto,
            formats,
            usable,
        });
    }
    let remote = Remote { lines };
    if remote.media(Kind::Audio).is_none() {
        return Err(SdpError::Unsupported(
            "no Opus/48000 audio over RTP/AVP".into(),
        ));
    }
    Ok(remote)
}

/// The local ports of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPorts {
    /// Audio RTP port (RTCP: + 1).
    pub audio: u16,
    /// Video RTP port (RTCP: + 1), if the session has video.
    pub video: Option<u16>,
}

fn header(out: &mut String, address: IpAddr, session_id: u64) {
    let ip = if address.is_ipv4() { "IP4" } else { "IP6" };
    let _ = write!(
        out,
        "v=0\r\no=- {session_id} 1 IN {ip} {address}\r\ns=vhost-device-media\r\nc=IN {ip} {address}\r\nt=0 0\r\n"
    );
}

fn audio_lines(out: &mut String, port: u16, pt: u8, dtmf: Option<(u8, u32)>) {
    let _ = write!(out, "m=audio {port} RTP/AVP {pt}");
    if let Some((d, _)) = dtmf {
        let _ = write!(out, " {d}");
    }
    let _ = write!(
        out,
        "\r\na=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} minptime=10;useinbandfec=1\r\n"
    );
    if let Some((d, clock)) = dtmf {
        let _ = write!(
            out,
            "a=rtpmap:{d} telephone-event/{clock}\r\na=fmtp:{d} 0-15\r\n"
        );
    }
    let _ = write!(
        out,
        "a=ptime:20\r\na=rtcp:{}\r\na=sendrecv\r\n",
        port.saturating_add(1)
    );
}

fn video_lines(out: &mut String, port: u16, pt: u8) {
    let _ = write!(
        out,
        "m=video {port} RTP/AVP {pt}\r\na=rtpmap:{pt} VP8/90000\r\na=rtcp:{}\r\na=sendrecv\r\n",
        port.saturating_add(1)
    );
}

/// The client's offer.
pub fn offer(address: IpAddr, session_id: u64, ports: LocalPorts) -> String {
    let mut out = String::new();
    header(&mut out, address, session_id);
    audio_lines(&mut out, ports.audio, OPUS_PT, Some((DTMF_PT, 48000)));
    if let Some(v) = ports.video {
        video_lines(&mut out, v, VP8_PT);
    }
    out
}

/// The client's answer to `remote`: the first usable audio line and (if
/// `ports.video`) the first usable video line are accepted, every other line
/// is rejected with port 0.
pub fn answer(address: IpAddr, session_id: u64, remote: &Remote, ports: LocalPorts) -> String {
    let mut out = String::new();
    header(&mut out, address, session_id);
    let (mut audio_done, mut video_done) = (false, false);
    for line in &remote.lines {
        match &line.usable {
            Some(m) if m.kind == Kind::Audio && !audio_done => {
                audio_done = true;
                audio_lines(&mut out, ports.audio, m.pt, m.dtmf);
            }
            Some(m) if m.kind == Kind::Video && !video_done && ports.video.is_some() => {
                video_done = true;
                video_lines(&mut out, ports.video.unwrap_or(0), m.pt);
            }
            _ => {
                let fmts = if line.formats.is_empty() {
                    "0".to_string()
                } else {
                    line.formats.join(" ")
                };
                let _ = write!(out, "m={} 0 {} {fmts}\r\n", line.media, line.proto);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn init() {
        gstreamer::init().unwrap();
    }

    #[test]
    fn offer_parses_back() {
        init();
        let o = offer(
            LO,
            7,
            LocalPorts {
                audio: 40000,
                video: Some(40002),
            },
        );
        let r = parse(&o, true).unwrap();
        let a = r.media(Kind::Audio).unwrap();
        assert_eq!((a.rtp_port, a.rtcp_port, a.pt), (40000, 40001, OPUS_PT));
        assert_eq!(a.dtmf, Some((DTMF_PT, 48000)));
        assert_eq!(r.media(Kind::Video).unwrap().pt, VP8_PT);
        // Without video accepted, the video line is kept but unusable.
        let r = parse(&o, false).unwrap();
        assert!(r.media(Kind::Video).is_none());
        assert_eq!(r.lines.len(), 2);
    }

    #[test]
    fn answer_keeps_offer_pts_and_rejects_the_rest() {
        init();
        let remote = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
            m=audio 5000 RTP/AVP 0 111 126\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:111 opus/48000/2\r\n\
            a=rtpmap:126 telephone-event/8000\r\n\
            m=application 6000 UDP/BFCP *\r\n";
        let r = parse(remote, true).unwrap();
        let a = r.media(Kind::Audio).unwrap();
        assert_eq!(a.pt, 111);
        assert_eq!(a.dtmf, Some((126, 8000)));
        assert_eq!(a.address, "10.0.0.1".parse::<IpAddr>().unwrap());
        let ans = answer(
            LO,
            1,
            &r,
            LocalPorts {
                audio: 40000,
                video: None,
            },
        );
        assert!(ans.contains("m=audio 40000 RTP/AVP 111 126\r\n"), "{ans}");
        assert!(ans.contains("a=rtpmap:126 telephone-event/8000"), "{ans}");
        assert!(ans.contains("m=application 0 UDP/BFCP *\r\n"), "{ans}");
    }

    #[test]
    fn refuses_bad_input() {
        init();
        for bad in [
            "",
            "hello",
            "v=0\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\nm=audio x RTP/AVP 111\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\nc=IN IP4 999.1.1.1\r\nm=audio 5000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=rtcp:abc\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5000 RTP/AVP 111\r\na=rtpmap:x\r\n",
        ] {
            assert!(
                matches!(parse(bad, true), Err(SdpError::Malformed(_))),
                "{bad:?}: {:?}",
                parse(bad, true)
            );
        }
        let pcmu = "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        assert!(matches!(parse(pcmu, true), Err(SdpError::Unsupported(_))));
        let srtp = "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5000 RTP/SAVP 111\r\na=rtpmap:111 opus/48000/2\r\n";
        assert!(matches!(parse(srtp, true), Err(SdpError::Unsupported(_))));
        assert_eq!(parse(&"v=0\n".repeat(20000), true), Err(SdpError::TooLong));
        let ok = "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\nc=IN IP4 ADDR\r\nm=audio PORT RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n";
        assert!(parse(&ok.replace("ADDR", "1.1.1.1").replace("PORT", "5000"), true).is_ok());
        for (addr, port) in [
            ("0.0.0.0", "5000"),
            ("224.0.0.1", "5000"),
            ("255.255.255.255", "5000"),
            ("1.1.1.1", "53"),
            ("1.1.1.1", "1023"),
        ] {
            let sdp = ok.replace("ADDR", addr).replace("PORT", port);
            assert!(
                matches!(parse(&sdp, true), Err(SdpError::Unsupported(_))),
                "{addr}:{port}"
            );
        }
    }
}

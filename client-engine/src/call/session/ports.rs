//! The session's UDP ports: an RTP/RTCP `udpsrc` pair per media line,
//! bound (READY) when the session is created, before its SDP goes out, so
//! the ports the SDP announces stay ours until the pipeline takes them.

use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::error::EngineError;

/// The bound UDP sources of one media line.
pub(super) struct Sockets {
    pub(super) rtp: gst::Element,
    pub(super) rtcp: gst::Element,
    pub(super) port: u16,
}

/// Binds an RTP/RTCP `udpsrc` pair on `address`, trying even ports from
/// the shared cursor.
pub(super) fn bind_pair(
    address: IpAddr,
    range: &std::ops::RangeInclusive<u16>,
) -> Result<Sockets, EngineError> {
    static CURSOR: AtomicU64 = AtomicU64::new(0);
    let start = u32::from(*range.start() & !1);
    let end = u32::from(*range.end());
    if end <= start {
        return Err(EngineError::Pipeline("empty call port range".into()));
    }
    let pairs = u64::from((end - start).div_ceil(2));
    let seed = u64::from(std::process::id()) * 7;
    for _ in 0..pairs.min(512) {
        let n = (CURSOR.fetch_add(1, Ordering::Relaxed) + seed) % pairs;
        let Ok(port) = u16::try_from(u64::from(start) + 2 * n) else {
            continue;
        };
        if u32::from(port) + 1 > end {
            continue;
        }
        // Probe without GStreamer first (cheap), then bind for real.
        let free = UdpSocket::bind((address, port)).is_ok()
            && UdpSocket::bind((address, port + 1)).is_ok();
        if !free {
            continue;
        }
        let mk = |p: u16| -> Result<gst::Element, EngineError> {
            let e = gst::ElementFactory::make("udpsrc")
                .property("address", address.to_string())
                .property("port", i32::from(p))
                .property("reuse", false)
                .build()
                .map_err(|_| EngineError::MissingElement("udpsrc".into()))?;
            e.set_state(gst::State::Ready)
                .map_err(|_| EngineError::Pipeline(format!("cannot bind {address}:{p}")))?;
            Ok(e)
        };
        let Ok(rtp) = mk(port) else { continue };
        match mk(port + 1) {
            Ok(rtcp) => return Ok(Sockets { rtp, rtcp, port }),
            Err(_) => {
                let _ = rtp.set_state(gst::State::Null);
            }
        }
    }
    Err(EngineError::Pipeline(
        "no free UDP port pair for the call".into(),
    ))
}

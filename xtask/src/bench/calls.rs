//! The per-call figures: what the server carries and spends for a video
//! call's media when the guest softphone runs it (media through the VM)
//! against call-media offload (the client engine exchanges RTP with the
//! peer; the guest keeps the signalling).
//!
//! Bytes are DERIVED from the codec rates, not captured: a typical
//! softphone call, Opus at 32 kbit/s in 20 ms packets and VP8 camera video
//! at 1.5 Mbit/s in packets of about 1200 bytes, both ways, each packet with
//! 40 bytes of RTP (12) + UDP (8) + IPv4 (20) headers. With offload none
//! of it passes the server; what does is control messages at call set-up
//! and on events (a few hundred bytes per call, not per second).
//!
//! CPU is MEASURED for media through the VM: a `gst-launch-1.0` child does
//! what the guest's softphone does each second of a call (encodes the
//! outgoing camera video and microphone audio, packetises them in RTP,
//! depacketises and decodes the incoming ones: one encode and one decode
//! per medium), minus the same sources into fakesink (the test sources
//! stand in for frames that come from elsewhere). With offload the server
//! spends nothing on the media (the guest's vCPUs and the host do no
//! encode, decode or RTP), so that side is 0 by construction.

use anyhow::{Context, Result};

use super::measure::run_measured;
use test_support::clips::gst_launch_command as gst;

/// Opus bits per second of a call.
pub(crate) const OPUS_BPS: u64 = 32_000;
/// Opus packets per second (20 ms).
pub(crate) const OPUS_PPS: u64 = 50;
/// VP8 camera bits per second.
pub(crate) const VP8_BPS: u64 = 1_500_000;
/// VP8 RTP payload bytes per packet.
pub(crate) const VP8_PACKET: u64 = 1200;
/// RTP + UDP + IPv4 header bytes per packet.
pub(crate) const RTP_OVERHEAD: u64 = 40;

/// The call figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Calls {
    /// Derived: bytes per second of RTP media through the server, both ways.
    pub(crate) through_vm_bytes_per_s: f64,
    /// Derived: bytes per second through the server with offload.
    pub(crate) offload_bytes_per_s: f64,
    /// Measured: CPU seconds per call second of the guest's media work.
    pub(crate) through_vm_cpu_s_per_s: f64,
    /// With offload (0 by construction: no media work on the server).
    pub(crate) offload_cpu_s_per_s: f64,
}

/// Bytes per second of one direction of a call's RTP media.
pub(crate) fn one_way_bytes_per_s() -> f64 {
    let audio = OPUS_BPS / 8 + OPUS_PPS * RTP_OVERHEAD;
    let video_payload = VP8_BPS / 8;
    let video_packets = video_payload.div_ceil(VP8_PACKET);
    (audio + video_payload + video_packets * RTP_OVERHEAD) as f64
}

fn sources(seconds: u32, smoke: bool) -> (String, String) {
    let (w, h) = if smoke { (320, 240) } else { (1280, 720) };
    (
        format!(
            "videotestsrc num-buffers={} pattern=zone-plate kx2=6 ky2=6 kt=1 \
             ! video/x-raw,format=I420,width={w},height={h},framerate=30/1",
            seconds * 30
        ),
        format!(
            "audiotestsrc num-buffers={} samplesperbuffer=960 wave=pink-noise \
             ! audio/x-raw,rate=48000,channels=2",
            seconds * 50
        ),
    )
}

/// Measures (CPU) and derives (bytes) the call figures over `seconds`.
pub(crate) fn measure(seconds: u32, smoke: bool) -> Result<Calls> {
    let (video, audio) = sources(seconds, smoke);
    let media = format!(
        "{video} ! vp8enc deadline=1 end-usage=cbr target-bitrate={VP8_BPS} \
         ! rtpvp8pay mtu={} ! rtpvp8depay ! vp8dec ! fakesink \
         {audio} ! opusenc bitrate={OPUS_BPS} frame-size=20 ! rtpopuspay ! rtpopusdepay \
         ! opusdec ! fakesink",
        VP8_PACKET + 12
    );
    let with_media = run_measured(&mut gst(&media)).context("the call media pipeline")?;
    let only_sources = run_measured(&mut gst(&format!("{video} ! fakesink {audio} ! fakesink")))
        .context("the call sources")?;
    Ok(Calls {
        through_vm_bytes_per_s: 2.0 * one_way_bytes_per_s(),
        offload_bytes_per_s: 0.0,
        through_vm_cpu_s_per_s: (with_media.cpu_s - only_sources.cpu_s).max(0.0)
            / f64::from(seconds),
        offload_cpu_s_per_s: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_bytes_add_up() {
        // Opus: 4000 + 50 * 40 = 6000 B/s; VP8: 187500 + 157 * 40 = 193780.
        assert_eq!(one_way_bytes_per_s(), 6000.0 + 187_500.0 + 157.0 * 40.0);
        let (v, a) = sources(2, true);
        assert!(v.contains("num-buffers=60") && a.contains("num-buffers=100"));
    }
}

//! Command-line arguments of the daemon.

use std::path::PathBuf;

use clap::Parser;

use crate::daemon::{DaemonConfig, UplinkSpec};
use crate::limits::Limits;

/// vhost-user backend of the media-redirection virtio device: serves the
/// device to QEMU and forwards the guest's compressed media, uncopied, to a
/// client that decodes it on the user's device.
#[derive(Debug, Parser)]
#[command(name = "vhost-device-media", version)]
pub struct Args {
    /// vhost-user socket QEMU connects to (`-chardev socket,path=...`).
    #[arg(long, value_name = "PATH")]
    pub socket_path: PathBuf,

    /// Where media goes: `null` (no client: players fall back to local
    /// decoding), `unix:PATH` or `tcp:HOST:PORT` (the wire protocol of
    /// spec/README.md on a listening socket; plain TCP on loopback only).
    #[arg(long, value_name = "SPEC", default_value = "null")]
    pub uplink: String,

    /// Playback data queues (the device has 3 + this many virtqueues; give
    /// QEMU the same count).
    #[arg(long, default_value_t = Limits::default().num_txqs)]
    pub num_txqs: u32,

    /// Most presentations at once.
    #[arg(long, default_value_t = Limits::default().max_presentations)]
    pub max_presentations: u32,

    /// Most streams at once, over all presentations.
    #[arg(long, default_value_t = Limits::default().max_streams)]
    pub max_streams: u32,

    /// Largest payload of one data buffer, in bytes (at most 16 MiB).
    #[arg(long, default_value_t = Limits::default().max_buffer_bytes)]
    pub max_buffer_bytes: u32,

    /// Payload bytes one stream may have in flight before the device stops
    /// taking its buffers (at least --max-buffer-bytes).
    #[arg(long, default_value_t = Limits::default().max_inflight_bytes)]
    pub max_inflight_bytes: u32,

    /// Media duration, in milliseconds, one stream may have in flight.
    #[arg(long, default_value_t = Limits::default().max_inflight_ms)]
    pub max_inflight_ms: u32,

    /// Largest codec data (avcC, OpusHead, ...) in bytes (at most 64 KiB).
    #[arg(long, default_value_t = Limits::default().max_codec_data)]
    pub max_codec_data: u32,

    /// Largest SDP of a call session, in bytes (at most 64 KiB).
    #[arg(long, default_value_t = Limits::default().max_sdp)]
    pub max_sdp: u32,

    /// Largest virtqueue size accepted (a power of two).
    #[arg(long, default_value_t = Limits::default().queue_size)]
    pub queue_size: u16,

    /// Log level: error, warn, info, debug or trace (RUST_LOG, when set,
    /// takes precedence).
    #[arg(long, default_value = "info")]
    pub log_level: log::LevelFilter,
}

impl Args {
    /// The daemon configuration these arguments describe.
    pub fn config(&self) -> Result<DaemonConfig, crate::uplink::socket::SocketUplinkError> {
        Ok(DaemonConfig {
            socket_path: self.socket_path.clone(),
            uplink: UplinkSpec::parse(&self.uplink)?,
            limits: Limits {
                num_txqs: self.num_txqs,
                max_presentations: self.max_presentations,
                max_streams: self.max_streams,
                max_buffer_bytes: self.max_buffer_bytes,
                max_inflight_bytes: self.max_inflight_bytes,
                max_inflight_ms: self.max_inflight_ms,
                max_codec_data: self.max_codec_data,
                max_sdp: self.max_sdp,
                max_call_sessions: Limits::default().max_call_sessions,
                queue_size: self.queue_size,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn help_documents_every_flag() {
        Args::command().debug_assert();
        let help = Args::command().render_long_help().to_string();
        for flag in [
            "--socket-path",
            "--uplink",
            "--num-txqs",
            "--max-streams",
            "--max-buffer-bytes",
            "--max-inflight-bytes",
            "--max-inflight-ms",
            "--log-level",
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
        }
    }

    #[test]
    fn parses_into_a_config() {
        let args = Args::parse_from([
            "x",
            "--socket-path",
            "/tmp/s",
            "--uplink",
            "unix:/tmp/u",
            "--max-streams",
            "5",
        ]);
        let config = args.config().unwrap();
        assert_eq!(config.limits.max_streams, 5);
        assert!(matches!(config.uplink, UplinkSpec::Socket(_)));
        let args = Args::parse_from(["x", "--socket-path", "/tmp/s", "--uplink", "tcp:10.0.0.1:9"]);
        assert!(args.config().is_err(), "plain TCP off loopback is refused");
    }
}

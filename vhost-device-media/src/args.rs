//! Command-line arguments of the daemon.

use std::path::PathBuf;

use clap::Parser;
use mediaredir_proto::device::DeviceLimits;

use crate::daemon::{DaemonConfig, UplinkSpec};
use crate::limits::Limits;
use crate::uplink::socket::SocketUplinkError;
use crate::uplink::tls::TlsFiles;

/// The uplink used when none is named.
#[cfg(feature = "local")]
pub const DEFAULT_UPLINK: &str = "local";
/// The uplink used when none is named.
#[cfg(not(feature = "local"))]
pub const DEFAULT_UPLINK: &str = "null";

/// vhost-user backend of the media-redirection virtio device: serves the
/// device to QEMU and forwards the guest's compressed media, uncopied, to a
/// client that decodes it on the user's device.
#[derive(Debug, Parser)]
#[command(name = "vhost-user-mediaredir", version)]
pub struct Args {
    /// vhost-user socket QEMU connects to (`-chardev socket,path=...`).
    #[arg(long, value_name = "PATH")]
    pub socket_path: PathBuf,

    /// Where media goes: `local` (the client engine in this process: audio
    /// on the sound card, video decoded but shown nowhere, as only the
    /// viewer shows video; `local:headless` discards audio too, on the clock,
    /// `local:verify`, in a build with the `verify` feature, hashes every
    /// decoded frame), `null` (no client: players fall back to local
    /// decoding), `unix:PATH` or `tcp:HOST:PORT` (the wire
    /// protocol of spec/wire.md on a listening socket), or
    /// `spice:OPTIONS` (the same protocol on the media port of the daemon's
    /// own Spice server; OPTIONS as QEMU's -spice: `port=N`, `addr=A`,
    /// `unix=on` with `addr=PATH`, `password-file=F` or
    /// `disable-ticketing=on` (loopback or Unix only), `tls-port=N` with
    /// `x509-dir=D`). TCP off loopback needs TLS (--tls-cert, --tls-key,
    /// --tls-client-ca); plain TCP is loopback only. The default is
    /// `local`, or `null` in a build without the `local` feature.
    #[arg(long, value_name = "SPEC", default_value = DEFAULT_UPLINK)]
    pub uplink: String,

    /// TLS for a `tcp:` uplink: the daemon's certificate chain (PEM, leaf
    /// first). With --tls-key and --tls-client-ca the uplink speaks TLS 1.3
    /// and requires a client certificate (mutual TLS). TLS copies the
    /// payload to encrypt it; plain sockets do not.
    #[arg(long, value_name = "PEM", requires_all = ["tls_key", "tls_client_ca"])]
    pub tls_cert: Option<PathBuf>,

    /// TLS: the private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires_all = ["tls_cert", "tls_client_ca"])]
    pub tls_key: Option<PathBuf>,

    /// TLS: the CA certificate(s) (PEM) that client certificates must chain
    /// to. A client with no certificate, or one from another CA, is refused
    /// during the handshake.
    #[arg(long, value_name = "PEM", requires_all = ["tls_cert", "tls_key"])]
    pub tls_client_ca: Option<PathBuf>,

    /// Playback data queues (the device has 3 + this many virtqueues; give
    /// QEMU the same count).
    #[arg(long, default_value_t = Limits::default().device.num_txqs)]
    pub num_txqs: u32,

    /// Most presentations at once.
    #[arg(long, default_value_t = Limits::default().device.max_presentations)]
    pub max_presentations: u32,

    /// Most streams at once, over all presentations.
    #[arg(long, default_value_t = Limits::default().device.max_streams)]
    pub max_streams: u32,

    /// Largest payload of one data buffer, in bytes (at most 16 MiB).
    #[arg(long, default_value_t = Limits::default().device.max_buffer_bytes)]
    pub max_buffer_bytes: u32,

    /// Payload bytes one stream may have in flight before the device stops
    /// taking its buffers (at least --max-buffer-bytes).
    #[arg(long, default_value_t = Limits::default().device.max_inflight_bytes)]
    pub max_inflight_bytes: u32,

    /// Media duration, in milliseconds, one stream may have in flight.
    #[arg(long, default_value_t = Limits::default().device.max_inflight_ms)]
    pub max_inflight_ms: u32,

    /// Largest codec data (avcC, OpusHead, ...) in bytes (at most 64 KiB).
    #[arg(long, default_value_t = Limits::default().device.max_codec_data)]
    pub max_codec_data: u32,

    /// Largest SDP of a call session, in bytes (at most 64 KiB).
    #[arg(long, default_value_t = Limits::default().device.max_sdp)]
    pub max_sdp: u32,

    /// Largest virtqueue size accepted (a power of two).
    #[arg(long, default_value_t = Limits::default().queue_size)]
    pub queue_size: u16,

    /// With `--uplink local:verify`: write the in-process engine's
    /// verification report (hashes of every decoded frame and sample, the
    /// `mediaredir-verify 1` text format) to PATH on SIGUSR1, SIGTERM and
    /// SIGINT, before the `counters:` line. Without local:verify nothing is
    /// written (a warning is logged).
    #[arg(long, value_name = "PATH")]
    pub verify_report: Option<PathBuf>,

    /// Log level: error, warn, info, debug or trace (RUST_LOG, when set,
    /// takes precedence).
    #[arg(long, default_value = "info")]
    pub log_level: log::LevelFilter,
}

impl Args {
    /// The daemon configuration these arguments describe.
    pub fn config(&self) -> Result<DaemonConfig, SocketUplinkError> {
        Ok(DaemonConfig {
            socket_path: self.socket_path.clone(),
            uplink: UplinkSpec::parse_with_tls(&self.uplink, self.tls()?)?,
            limits: Limits {
                device: DeviceLimits {
                    num_txqs: self.num_txqs,
                    max_presentations: self.max_presentations,
                    max_streams: self.max_streams,
                    max_buffer_bytes: self.max_buffer_bytes,
                    max_inflight_bytes: self.max_inflight_bytes,
                    max_inflight_ms: self.max_inflight_ms,
                    max_codec_data: self.max_codec_data,
                    max_sdp: self.max_sdp,
                    max_call_sessions: Limits::default().device.max_call_sessions,
                },
                queue_size: self.queue_size,
            },
        })
    }

    /// The TLS files, when the TLS flags were given (all or none).
    fn tls(&self) -> Result<Option<TlsFiles>, SocketUplinkError> {
        match (&self.tls_cert, &self.tls_key, &self.tls_client_ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(client_ca)) => Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: client_ca.clone(),
            })),
            _ => Err(SocketUplinkError::TlsIncomplete),
        }
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
            "--tls-cert",
            "--tls-key",
            "--tls-client-ca",
            "--verify-report",
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
        assert_eq!(config.limits.device.max_streams, 5);
        assert!(matches!(config.uplink, UplinkSpec::Socket(_)));
        let args = Args::parse_from(["x", "--socket-path", "/tmp/s", "--uplink", "tcp:10.0.0.1:9"]);
        assert!(args.config().is_err(), "plain TCP off loopback is refused");
        let spice = "spice:port=5930,addr=127.0.0.1,disable-ticketing=on";
        let args = Args::parse_from(["x", "--socket-path", "/tmp/s", "--uplink", spice]);
        #[cfg(feature = "spice")]
        assert!(matches!(
            args.config().unwrap().uplink,
            UplinkSpec::Socket(crate::uplink::addr::ListenAddr::Spice(_))
        ));
        #[cfg(not(feature = "spice"))]
        assert!(args.config().is_err(), "no Spice in this build");
    }
}

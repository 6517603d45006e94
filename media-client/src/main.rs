//! `media-client`: the client engine as a process. It connects to the
//! daemon's socket uplink (`--connect unix:PATH` or `tcp:HOST:PORT`; TCP
//! with TLS 1.3 and a client certificate given `--tls-ca`, `--tls-cert` and
//! `--tls-key`, plain TCP only to a loopback address) or, as a Spice
//! client, to the media port of the daemon's Spice server (`--spice
//! HOST:PORT`, with `--password-file` and, for Spice TLS, `--tls-ca`), says
//! `Hello` with the codecs this machine decodes, plays what the daemon
//! sends, reconnects with back-off when the connection drops, and prints
//! per-stream statistics periodically and at exit. `--verify-report PATH`
//! hashes every decoded frame and sample (the engine's Verify mode) and
//! writes the report when every stream has ended, so a test can prove the
//! output bit-exact.
//!
//! It shows no video: video is decoded and discarded on the clock
//! (`fakesink sync=true`, so clock, pause and QoS behave as with real
//! output), for verification, the bench and tests; only the viewer
//! (`mediaredir-viewer`) puts redirected video on a screen. Audio goes to
//! the sound device, or with `--headless` to `fakesink` as well.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use client_engine::{CaptureSources, EngineConfig, OutputMode};
use media_client::{Addr, connection, parse_addr, spice, tls};
use mediaredir_peer::{Backoff, reconnect_loop};

/// Client of the vhost-device-media daemon: decodes the guest's
/// redirected media and plays its audio. Video is decoded, never shown
/// (mediaredir-viewer shows it).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Daemon address: unix:PATH or tcp:HOST:PORT.
    #[arg(long, required_unless_present = "spice", conflicts_with = "spice")]
    connect: Option<String>,
    /// The daemon's Spice server (`--uplink spice:...`), HOST:PORT or
    /// unix:PATH: connect as a Spice client and open its media port channel. With --tls-ca,
    /// PORT is the Spice TLS port and the server certificate must chain to
    /// that CA and name HOST.
    #[arg(long, value_name = "HOST:PORT|unix:PATH")]
    spice: Option<String>,
    /// Spice: a file holding the Spice password (ticket).
    #[arg(long, value_name = "FILE", requires = "spice")]
    password_file: Option<PathBuf>,
    /// No sound device: audio goes to fakesink sync=true too (video always
    /// does: media-client shows no video).
    #[arg(long)]
    headless: bool,
    /// Seconds between statistics lines (0: only at disconnect/exit).
    #[arg(long, default_value_t = 5)]
    stats_interval: u64,
    /// Exit after the first connection ends instead of reconnecting, and
    /// end that connection once every stream has ended (EOS or error).
    #[arg(long)]
    once: bool,
    /// Client name sent in Hello.
    #[arg(long, default_value = "media-client")]
    name: String,
    /// Verification: hash every decoded frame and sample (no output
    /// device) and write the per-stream report to PATH when every stream
    /// has ended and when the connection ends.
    #[arg(long, value_name = "PATH")]
    verify_report: Option<PathBuf>,
    /// TLS: the CA certificate(s) (PEM) the daemon's certificate must chain
    /// to; makes a tcp: connection TLS 1.3, or a --spice connection use
    /// Spice TLS.
    #[arg(long, value_name = "PEM")]
    tls_ca: Option<PathBuf>,
    /// TLS: this client's certificate chain (PEM, leaf first).
    #[arg(long, value_name = "PEM", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// TLS: the private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires_all = ["tls_cert", "tls_ca"])]
    tls_key: Option<PathBuf>,
    /// Capture sources: devices (microphones and cameras), test (a 440 Hz
    /// test microphone and a test camera), none. Default: devices, or test
    /// with --headless.
    #[arg(long, value_name = "KIND")]
    sources: Option<String>,
    /// Calls: the address of this machine the remote peer reaches; the RTP
    /// sockets bind to it and the SDP announces it.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    call_address: std::net::IpAddr,
    /// Calls: offer VP8 video in the client's own offers.
    #[arg(long)]
    call_video: bool,
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let (addr, shown) = match (&args.connect, &args.spice) {
        (Some(connect), _) => (parse_addr(connect)?, connect.clone()),
        (None, Some(target)) => (
            Addr::Spice(spice::SpiceTarget::parse(
                target,
                args.password_file.as_ref(),
                args.tls_ca.clone(),
            )?),
            format!("spice:{target}"),
        ),
        (None, None) => bail!("give --connect or --spice"),
    };
    let output = if args.verify_report.is_some() {
        OutputMode::Verify
    } else if args.headless {
        OutputMode::Headless
    } else {
        OutputMode::Auto
    };
    let tls = match (&args.tls_ca, &args.tls_cert, &args.tls_key) {
        (None, _, _) => None,
        // Spice TLS: the CA is the session's (see `spice`).
        (Some(_), None, None) if matches!(addr, Addr::Spice(_)) => None,
        (Some(ca), cert, key) => {
            if !matches!(addr, Addr::Tcp(_)) {
                bail!("--tls-ca needs --connect tcp:HOST:PORT or --spice (without --tls-cert)");
            }
            Some(tls::TlsOptions {
                ca: ca.clone(),
                identity: cert.clone().zip(key.clone()),
            })
        }
    };
    let opts = connection::RunOptions {
        name: args.name.clone(),
        stats_interval: args.stats_interval,
        tls,
        verify_report: args.verify_report.clone(),
        once: args.once,
    };
    let sources = match args.sources.as_deref() {
        None => None,
        Some("devices") => Some(CaptureSources::Devices),
        Some("test") => Some(CaptureSources::Test),
        Some("none") => Some(CaptureSources::None),
        Some(other) => bail!("--sources {other}: expected devices, test or none"),
    };
    let config = || {
        let mut config = EngineConfig::with_output(output);
        if let Some(s) = sources {
            config.capture_sources = s;
        }
        config.call.address = args.call_address;
        config.call.offer_video = args.call_video;
        config
    };
    reconnect_loop(
        Backoff::new(Duration::from_millis(500), Duration::from_secs(5)),
        || {
            connection::run(&addr, config(), &opts)
                .with_context(|| format!("connection to {shown}"))
        },
        || !args.once,
    );
    Ok(())
}

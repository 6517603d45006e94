//! `media-client`: the client engine as a process. It connects to the
//! daemon's socket uplink (`--connect unix:PATH` or `tcp:HOST:PORT`, plain
//! TCP only to a loopback address: TLS is not implemented here yet), says
//! `Hello` with the codecs this machine decodes, plays what the daemon
//! sends with real sinks (or `--headless`: `fakesink sync=true`, so clock,
//! pause and QoS behave as with real output), reconnects with back-off when
//! the connection drops, and prints per-stream statistics periodically and
//! at exit.

mod connection;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use client_engine::{EngineConfig, OutputMode};

/// Where the daemon listens.
#[derive(Debug, Clone)]
pub(crate) enum Addr {
    /// A Unix stream socket.
    Unix(PathBuf),
    /// A TCP address (`host:port`).
    Tcp(String),
}

fn parse_addr(s: &str) -> anyhow::Result<Addr> {
    if let Some(p) = s.strip_prefix("unix:") {
        Ok(Addr::Unix(PathBuf::from(p)))
    } else if let Some(a) = s.strip_prefix("tcp:") {
        Ok(Addr::Tcp(a.to_owned()))
    } else {
        bail!("address must be unix:PATH or tcp:HOST:PORT, got {s}")
    }
}

/// Client of the vhost-device-media daemon: decodes and renders the
/// guest's redirected media.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Daemon address: unix:PATH or tcp:HOST:PORT.
    #[arg(long)]
    connect: String,
    /// No display or sound device: fakesink sync=true.
    #[arg(long)]
    headless: bool,
    /// Seconds between statistics lines (0: only at disconnect/exit).
    #[arg(long, default_value_t = 5)]
    stats_interval: u64,
    /// Exit after the first connection ends instead of reconnecting.
    #[arg(long)]
    once: bool,
    /// Client name sent in Hello.
    #[arg(long, default_value = "media-client")]
    name: String,
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let addr = parse_addr(&args.connect)?;
    let output = if args.headless {
        OutputMode::Headless
    } else {
        OutputMode::Auto
    };
    let mut backoff = Duration::from_millis(500);
    loop {
        let config = EngineConfig::with_output(output);
        match connection::run(&addr, config, &args.name, args.stats_interval)
            .with_context(|| format!("connection to {}", args.connect))
        {
            Ok(()) => {
                log::info!("connection closed");
                backoff = Duration::from_millis(500);
            }
            Err(e) => log::warn!("{e:#}"),
        }
        if args.once {
            return Ok(());
        }
        log::info!("reconnecting in {backoff:?}");
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

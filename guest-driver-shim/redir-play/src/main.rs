//! `redir-play`: the guest's media player. Demuxes a file with the pure-Rust
//! demuxers of `redir-demux` (no GStreamer in the guest) and plays every
//! track through the media-redirection device, so that the client decodes
//! and renders it.
//!
//! It is a player of the broker (spec §9) through the V4L2-style API of
//! `guest-driver-shim`: each sample is demuxed into a buffer of the
//! broker's shared DMA memory and queued from there, so nothing copies it
//! again on its way to the client. With `--vhost-user` it starts a broker
//! in its own process (a host test rig, where the vhost-user transport
//! plays the guest's part).

mod commands;
mod device;
mod session;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use mediaredir_proto::broker::DEFAULT_SOCKET;

use commands::Scheduled;
use session::Settings;

/// Plays a media file through the media-redirection device.
///
/// Commands on standard input (one per line) and with `--at`: pause, play,
/// seek=SECONDS, volume=GAIN, mute, unmute, rate=RATE, status, sleep=SECONDS,
/// quit.
#[derive(Debug, Parser)]
#[command(name = "redir-play", version)]
struct Args {
    /// The broker's socket (in a guest where `mediaredir-broker` runs).
    #[arg(long, value_name = "SOCKET", default_value = DEFAULT_SOCKET, conflicts_with = "vhost_user")]
    broker: PathBuf,

    /// Reach the daemon's vhost-user socket directly, with a broker in this
    /// process (a host test rig; `vhost-device-media --socket-path`).
    #[arg(long, value_name = "SOCKET")]
    vhost_user: Option<PathBuf>,

    /// The file to play (WebM/Matroska, MP4, Ogg, IVF or Annex-B).
    file: PathBuf,

    /// Run COMMAND when the file reaches SECONDS of media time
    /// (`--at 1.5:pause --at 1.5:sleep=2 --at 1.5:play`); repeatable.
    #[arg(long, value_name = "SECONDS:COMMAND", value_parser = commands::parse_scheduled)]
    at: Vec<Scheduled>,

    /// Read commands from standard input.
    #[arg(long)]
    stdin: bool,

    /// Buffers per stream.
    #[arg(long, default_value_t = 32)]
    buffers: u32,

    /// Seconds to wait for a client to connect to the device.
    #[arg(long, default_value_t = 20)]
    wait_client: u64,

    /// Seconds to wait for every stream's end of stream after the last
    /// buffer.
    #[arg(long, default_value_t = 60)]
    eos_timeout: u64,

    /// Seconds between progress lines.
    #[arg(long, default_value_t = 1.0)]
    progress: f64,
}

fn run(args: &Args) -> anyhow::Result<()> {
    let t0 = Instant::now();
    // The file first: a bad file is reported as such, device or not.
    let probe = redir_demux::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    if probe.tracks().is_empty() {
        anyhow::bail!("{}: no playable track", args.file.display());
    }
    drop(probe);
    let mut opened = match &args.vhost_user {
        Some(socket) => device::over_vhost_user(socket)?,
        None => device::through_broker(&args.broker)?,
    };
    let settings = Settings {
        file: args.file.clone(),
        buffers: args.buffers.max(2),
        video_buffer_bytes: 1 << 20,
        audio_buffer_bytes: 64 << 10,
        wait_client: Duration::from_secs(args.wait_client),
        eos_timeout: Duration::from_secs(args.eos_timeout),
        stall_timeout: Duration::from_secs(30),
        schedule: args.at.clone(),
        progress: Duration::try_from_secs_f64(args.progress).unwrap_or(Duration::from_secs(1)),
    };
    let stdin = args.stdin.then(commands::stdin_commands);
    let outcome = session::play(&mut opened.redir, &settings, stdin)?;
    println!(
        "redir-play: played {} ({} streams, {} samples, {} bytes) in {} ms",
        args.file.display(),
        outcome.streams,
        outcome.samples,
        outcome.bytes,
        t0.elapsed().as_millis()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    env_logger::Builder::new()
        .parse_filters("warn")
        .parse_env("RUST_LOG")
        .init();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redir-play: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Args::command().debug_assert();
        let args = Args::parse_from(["redir-play", "--vhost-user", "/tmp/s", "clip.webm"]);
        assert_eq!(args.vhost_user, Some(PathBuf::from("/tmp/s")));
        let args = Args::parse_from(["redir-play", "--at", "1:pause", "clip.webm"]);
        assert_eq!(args.broker, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(args.at.len(), 1);
        assert!(
            Args::try_parse_from(["redir-play", "--broker", "/b", "--vhost-user", "/v", "f"])
                .is_err()
        );
    }
}

//! `redir-play`: the guest's media player. Demuxes a file with the pure-Rust
//! demuxers of `redir-demux` (no GStreamer in the guest) and plays every
//! track through the media-redirection device, so that the client decodes
//! and renders it.
//!
//! It is a player of the broker (spec §9) through the V4L2-style API of
//! `guest-driver-shim`: each sample is demuxed into a buffer of the
//! broker's shared DMA memory and queued from there, so nothing copies it
//! again on its way to the client. With `--pci` (a guest where it is the
//! only player) or `--vhost-user` (a host test rig, where the vhost-user
//! transport plays the guest's part) it starts a broker in its own process.
//!
//! When the client leaves mid-stream (buffers complete `NO_CLIENT`, spec
//! DRV-DATA-5) it stops sending, waits up to `--wait-client` for the client
//! to come back and goes on from the keyframe before where it was.
//!
//! `--recover N` survives a device that restarted (its host daemon: STALE
//! answers, DEVICE_STARTED) by saying HELLO again and playing the file from
//! the start; `--reset-after N` has the in-process broker reset the device
//! after N samples, which the player survives the same way.

mod commands;
mod session;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use guest_driver_shim::connect::{Connection, DeviceArgs};

use commands::Scheduled;
use session::Settings;

/// Plays a media file through the media-redirection device.
///
/// Commands on standard input (one per line) and with `--at`: pause, play,
/// seek=SECONDS, volume=GAIN, mute, unmute, rate=RATE, status, sleep=SECONDS,
/// quit, geometry=X:Y:W:H[,z=N][,hidden][,colorkey][,clip=X:Y:W:H]... (where
/// the client shows the video; colorkey: only where the desktop shows the key
/// colour #FF00FF).
#[derive(Debug, Parser)]
#[command(name = "redir-play", version)]
struct Args {
    #[command(flatten)]
    device: DeviceArgs,

    /// When the device restarts mid-stream (the host daemon restarted:
    /// STALE, DEVICE_STARTED), start over and play the file again from the
    /// start, at most this many times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    recover: u32,

    /// Have the in-process broker (`--pci`, `--vhost-user`) reset the
    /// device after this many samples, then play the file again from the
    /// start (tests that the device keeps serving after a driver reset).
    #[arg(long, value_name = "SAMPLES")]
    reset_after: Option<u64>,

    /// The file to play (MP4, Matroska/WebM, Ogg, MPEG-TS, MP3, ...); several
    /// files are read one after another as one (a DASH init segment and its
    /// media segments: `init.m4s chunk-1.m4s chunk-2.m4s ...`).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,

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
    let name = input_name(&args.files);
    let probe =
        redir_demux::open_files(&args.files).with_context(|| format!("cannot open {name}"))?;
    if probe.tracks().is_empty() {
        anyhow::bail!("{name}: no playable track");
    }
    drop(probe);
    let target = args.device.target();
    let mut connection = Connection::open(&target)?;
    let reset = match args.reset_after {
        Some(after) => Some((
            after,
            connection.reset_handle().context(
                "--reset-after needs the broker in this process (--pci or --vhost-user)",
            )?,
        )),
        None => None,
    };
    let mut settings = Settings {
        files: args.files.clone(),
        buffers: args.buffers.max(2),
        video_buffer_bytes: 1 << 20,
        audio_buffer_bytes: 64 << 10,
        wait_client: Duration::from_secs(args.wait_client),
        eos_timeout: Duration::from_secs(args.eos_timeout),
        stall_timeout: Duration::from_secs(30),
        schedule: args.at.clone(),
        progress: Duration::try_from_secs_f64(args.progress).unwrap_or(Duration::from_secs(1)),
        reset_after: reset.clone(),
    };
    let mut stdin = args.stdin.then(commands::stdin_commands);
    let mut recovered = 0u32;
    let outcome = loop {
        let asked = reset.as_ref().map_or(0, |(_, h)| h.asked());
        match session::play(&mut connection.redir, &settings, stdin.take()) {
            Ok(outcome) => break outcome,
            Err(e) => {
                let reset_by_us = reset.as_ref().is_some_and(|(_, h)| h.asked() > asked);
                if !reset_by_us && recovered >= args.recover {
                    return Err(e);
                }
                if reset_by_us {
                    eprintln!("redir-play: {e:#}; the device was reset: playing again");
                    // Once: the next playback goes to the end.
                    settings.reset_after = None;
                } else {
                    recovered += 1;
                    eprintln!("redir-play: {e:#}; the device went away: playing again");
                }
                let generation = connection
                    .redir
                    .recover(RECOVER_TIMEOUT)
                    .context("starting over with the device")?;
                eprintln!("redir-play: device generation {generation:#x}");
            }
        }
    };
    println!(
        "redir-play: played {name} ({} streams, {} samples, {} bytes) in {} ms",
        outcome.streams,
        outcome.samples,
        outcome.bytes,
        t0.elapsed().as_millis()
    );
    let asked = reset.as_ref().map_or(0, |(_, h)| h.asked());
    if asked + recovered > 0 {
        println!("redir-play: device resets: {asked} asked, {recovered} recovered");
    }
    Ok(())
}

/// The input as the user named it: the first file, and how many follow.
fn input_name(files: &[PathBuf]) -> String {
    match files {
        [] => String::new(),
        [one] => one.display().to_string(),
        [first, rest @ ..] => format!("{} (+{} files)", first.display(), rest.len()),
    }
}

/// Longest wait for the broker to give back the buffers of a device that
/// restarted (it may still be resetting a device whose daemon is not up).
const RECOVER_TIMEOUT: Duration = Duration::from_secs(90);

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    guest_driver_shim::connect::tool_main("redir-play", || run(&args).map(|()| true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use guest_driver_shim::connect::parse_checked;
    use mediaredir_proto::broker::DEFAULT_SOCKET;

    #[test]
    fn cli_is_well_formed() {
        let args: Args = parse_checked(["redir-play", "--vhost-user", "/tmp/s", "clip.webm"]);
        assert_eq!(args.device.vhost_user, Some(PathBuf::from("/tmp/s")));
        let args = Args::parse_from(["redir-play", "--at", "1:pause", "clip.webm"]);
        assert_eq!(args.device.broker, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(args.at.len(), 1);
        let args = Args::parse_from(["redir-play", "init.m4s", "c1.m4s", "c2.m4s"]);
        assert_eq!(args.files.len(), 3);
        assert_eq!(input_name(&args.files), "init.m4s (+2 files)");
        assert!(
            Args::try_parse_from(["redir-play"]).is_err(),
            "a file is needed"
        );
        assert!(
            Args::try_parse_from(["redir-play", "--broker", "/b", "--vhost-user", "/v", "f"])
                .is_err()
        );
        let args = Args::parse_from([
            "redir-play",
            "--pci",
            "auto",
            "--pci-poll",
            "--recover",
            "2",
            "--reset-after",
            "40",
            "c.webm",
        ]);
        assert_eq!(args.device.pci.as_deref(), Some("auto"));
        assert!(args.device.pci_poll);
        assert_eq!((args.recover, args.reset_after), (2, Some(40)));
        assert!(
            Args::try_parse_from(["redir-play", "--pci", "auto", "--vhost-user", "/v", "f"])
                .is_err(),
            "one device only"
        );
        assert!(
            Args::try_parse_from(["redir-play", "--pci-poll", "f"]).is_err(),
            "--pci-poll needs --pci"
        );
        assert!(
            Args::try_parse_from(["redir-play", "--vhost-user", "/v", "--pci-poll", "f"]).is_err()
        );
    }
}

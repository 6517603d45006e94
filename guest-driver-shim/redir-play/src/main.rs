//! `redir-play`: the guest's media player. Demuxes a file with the pure-Rust
//! demuxers of `redir-demux` and plays every track through the
//! media-redirection device: the client decodes and renders it.
//!
//! It drives the device directly, over vhost-user (`--vhost-user SOCKET`:
//! the vhost-user transport of `guest-driver-shim` plays the guest's part on
//! the host, so the player runs next to the daemon without a VM) or, in a
//! guest, over virtio-pci (`--pci BDF`, the function bound to
//! `uio_pci_generic`); see `device.rs`. Later the player will go through
//! the broker instead, which owns the device.
//!
//! `--recover N` survives a device that went away (a restarted daemon:
//! STALE completions, timeouts) by resetting it and playing the file again
//! from the start; `--reset-after N` resets the device itself after N
//! samples and plays again (tests of both).
//!
//! Payloads are copied into DMA memory (`submit_data_copy`), one
//! allocation per sample; the device itself forwards them uncopied.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use guest_driver_shim::{DmaError, DriverError, MediaDevice};
use mediaredir_proto::control::{Direction, Request, StreamFormat};
use mediaredir_proto::data::{DataHeader, FLAG_EOS, FLAG_KEYFRAME};
use mediaredir_proto::event::Event;
use mediaredir_proto::response::ResponseBody;
use mediaredir_proto::status::Status;
use redir_demux::Track;

mod device;

type Device = MediaDevice<device::AnyTransport>;

/// Plays a media file through the media-redirection device.
///
/// In this first version the player drives the device directly over
/// vhost-user (the transport plays the guest's part on the host); in a
/// real guest it will go through the broker.
#[derive(Debug, Parser)]
#[command(name = "redir-play", version)]
#[command(group(clap::ArgGroup::new("device").required(true).args(["vhost_user", "pci"])))]
struct Args {
    /// The daemon's vhost-user socket (`vhost-device-media --socket-path`).
    #[arg(long, value_name = "SOCKET")]
    vhost_user: Option<PathBuf>,

    /// The device's PCI function in a guest (`0000:00:03.0`, or `auto`: the
    /// first 1af4:1079); bound to uio_pci_generic if it is not yet.
    #[arg(long, value_name = "BDF")]
    pci: Option<String>,

    /// With `--pci`: poll the rings instead of waiting for interrupts.
    #[arg(long, conflicts_with = "vhost_user")]
    pci_poll: bool,

    /// Reset the device after this many samples and play again from the
    /// start (tests that the device keeps serving after a driver reset).
    #[arg(long, value_name = "SAMPLES")]
    reset_after: Option<u64>,

    /// When the device fails mid-stream (e.g. the daemon restarted: STALE,
    /// timeouts), reset it and play again from the start, at most this many
    /// times.
    #[arg(long, default_value_t = 0)]
    recover: u32,

    /// The file to play (WebM/Matroska, MP4, Ogg, IVF or Annex-B).
    file: PathBuf,

    /// Most buffers in flight per playback queue.
    #[arg(long, default_value_t = 64)]
    max_in_flight: usize,

    /// Seconds to wait for a client to connect to the device.
    #[arg(long, default_value_t = 20)]
    wait_client: u64,

    /// Seconds to wait for every stream's end of stream after the last
    /// buffer.
    #[arg(long, default_value_t = 60)]
    eos_timeout: u64,
}

/// The stream format of `track` on `txq`.
fn format(track: &Track, txq: u32) -> StreamFormat {
    let (fps_num, fps_den) = track.fps.unwrap_or((0, 0));
    StreamFormat {
        codec: track.codec,
        direction: Direction::Playback,
        txq,
        source_id: 0,
        width: track.width,
        height: track.height,
        fps_num,
        fps_den,
        sample_rate: track.sample_rate,
        channels: track.channels,
        bitrate: 0,
        codec_data: track.codec_data.clone(),
    }
}

/// Sends `request`; returns the status, id and body.
fn call(
    dev: &mut Device,
    target: u32,
    request: Request,
) -> anyhow::Result<(Status, u32, ResponseBody)> {
    let what = format!("{:?}", request.code());
    let (hdr, body) = dev
        .control(request, target)
        .with_context(|| format!("{what} request"))?;
    Ok((hdr.status, hdr.id, body))
}

/// Sends `request`, which must succeed; returns the id.
fn ok(dev: &mut Device, target: u32, request: Request) -> anyhow::Result<u32> {
    let what = format!("{:?}", request.code());
    let (status, id, _) = call(dev, target, request)?;
    if status != Status::Ok {
        bail!("{what} failed: {status:?}");
    }
    Ok(id)
}

/// Waits until a client is connected to the device.
fn wait_client(dev: &mut Device, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let (Status::Ok, _, ResponseBody::Caps(caps)) = call(dev, 0, Request::GetCaps)?
            && caps.client_connected
        {
            eprintln!(
                "redir-play: client connected ({} codecs)",
                caps.codecs.len()
            );
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("no client connected to the device within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Per playback queue: buffers submitted and completed.
#[derive(Debug, Default, Clone, Copy)]
struct QueueCount {
    submitted: u64,
    completed: u64,
}

/// Collects the completions of `txq` (waiting up to `wait`); a buffer that
/// did not complete OK is an error.
fn drain(
    dev: &mut Device,
    counts: &mut [QueueCount],
    txq: u16,
    wait: Duration,
) -> anyhow::Result<()> {
    for done in dev.wait_data_completions(txq, wait)? {
        match done.status {
            Ok(Status::Ok) => counts[usize::from(txq)].completed += 1,
            other => bail!("a buffer of txq {txq} completed with {other:?}"),
        }
    }
    Ok(())
}

/// Submits one buffer on `txq`, waiting for completions while the queue
/// is full or `max` buffers are in flight.
fn submit(
    dev: &mut Device,
    counts: &mut [QueueCount],
    txq: u16,
    max: usize,
    header: &DataHeader,
    payload: &[u8],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if Instant::now() >= deadline {
            bail!("txq {txq}: no buffer completed for 30 s");
        }
        if dev.data_in_flight(txq)? >= max {
            drain(dev, counts, txq, Duration::from_millis(20))?;
            continue;
        }
        match dev.submit_data_copy(txq, header, payload) {
            Ok(_) => {
                counts[usize::from(txq)].submitted += 1;
                return Ok(());
            }
            Err(DriverError::QueueFull(_) | DriverError::Dma(DmaError::OutOfMemory { .. })) => {
                drain(dev, counts, txq, Duration::from_millis(20))?;
            }
            Err(e) => return Err(e).with_context(|| format!("submitting on txq {txq}")),
        }
    }
}

/// How one playback attempt ended.
enum Played {
    /// Every stream reached EOS: (streams, samples, bytes).
    Done(usize, u64, u64),
    /// Stopped after `--reset-after` samples.
    Interrupted,
}

/// The device's target from the arguments.
fn target(args: &Args) -> device::Target {
    match (&args.vhost_user, &args.pci) {
        (Some(socket), _) => device::Target::VhostUser(socket.clone()),
        (None, bdf) => device::Target::Pci {
            bdf: bdf.clone().filter(|b| b != "auto"),
            poll: args.pci_poll,
        },
    }
}

/// Resets the device until it initialises again (the daemon may still be
/// restarting), for up to 60 s.
fn reset_until_ready(dev: &mut Device) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match dev.reset() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                eprintln!("redir-play: device not ready yet ({e}); retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e).context("resetting the device"),
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let t0 = Instant::now();
    // A file that cannot be played fails before the device is touched.
    redir_demux::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let mut dev = device::open(&target(args))?;
    let mut reset_after = args.reset_after;
    let mut resets = 0u32;
    let mut recovered = 0u32;
    loop {
        match play(&mut dev, args, reset_after.take()) {
            Ok(Played::Done(streams, samples, bytes)) => {
                println!(
                    "redir-play: played {} ({streams} streams, {samples} samples, {bytes} bytes) in {} ms",
                    args.file.display(),
                    t0.elapsed().as_millis()
                );
                if resets + recovered > 0 {
                    println!("redir-play: device resets: {resets} asked, {recovered} recovered");
                }
                return Ok(());
            }
            Ok(Played::Interrupted) => {
                eprintln!("redir-play: resetting the device mid-stream");
                resets += 1;
                dev.reset().context("resetting the device")?;
            }
            Err(e) if recovered < args.recover => {
                recovered += 1;
                eprintln!("redir-play: {e:#}; resetting the device and playing again");
                reset_until_ready(&mut dev)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One playback of the whole file (or of `stop_after` samples).
fn play(dev: &mut Device, args: &Args, stop_after: Option<u64>) -> anyhow::Result<Played> {
    let mut demuxer = redir_demux::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let tracks: Vec<Track> = demuxer.tracks().to_vec();
    if tracks.is_empty() {
        bail!("{}: no playable track", args.file.display());
    }
    for (i, t) in tracks.iter().enumerate() {
        eprintln!(
            "redir-play: track {i}: {} {}x{} {} Hz {} ch, {} bytes of codec data",
            t.codec,
            t.width,
            t.height,
            t.sample_rate,
            t.channels,
            t.codec_data.len()
        );
    }
    wait_client(dev, Duration::from_secs(args.wait_client))?;
    for (i, t) in tracks.iter().enumerate() {
        let txq = u32::try_from(i)?;
        let (status, _, _) = call(dev, 0, Request::CheckFormat(format(t, txq)))?;
        match status {
            Status::Ok => {}
            Status::Unsupported | Status::NoClient => {
                bail!("client cannot decode {} ({status:?})", t.codec)
            }
            other => bail!("CHECK_FORMAT of {} failed: {other:?}", t.codec),
        }
    }
    let pres = ok(dev, 0, Request::PresCreate { live: false })?;
    let mut ids = Vec::new();
    let mut txq_of: HashMap<u32, u16> = HashMap::new();
    for (i, t) in tracks.iter().enumerate() {
        let txq = u16::try_from(i)?;
        ids.push(ok(
            dev,
            pres,
            Request::StreamCreate(format(t, u32::from(txq))),
        )?);
        txq_of.insert(t.id, txq);
    }
    ok(dev, pres, Request::PresPlay)?;
    eprintln!("redir-play: presentation {pres}, streams {ids:?}; playing");
    let mut counts = vec![QueueCount::default(); tracks.len()];
    let mut bytes = 0u64;
    let mut samples = 0u64;
    while let Some(s) = demuxer.next_sample().context("demuxing")? {
        let Some(&txq) = txq_of.get(&s.track) else {
            continue;
        };
        let header = DataHeader {
            stream_id: ids[usize::from(txq)],
            generation: 0,
            flags: if s.keyframe { FLAG_KEYFRAME } else { 0 },
            payload_len: 0,
            pts: s.pts,
            // Matroska has no DTS: it stays None.
            dts: s.dts,
            duration: s.duration,
        };
        submit(dev, &mut counts, txq, args.max_in_flight, &header, &s.data)?;
        bytes += s.data.len() as u64;
        samples += 1;
        if stop_after == Some(samples) {
            eprintln!("redir-play: stopping after {samples} samples");
            return Ok(Played::Interrupted);
        }
        if samples.is_multiple_of(100) {
            eprintln!("redir-play: {samples} samples, {bytes} bytes submitted");
        }
    }
    for (i, &id) in ids.iter().enumerate() {
        let eos = DataHeader {
            stream_id: id,
            generation: 0,
            flags: FLAG_EOS,
            payload_len: 0,
            pts: None,
            dts: None,
            duration: None,
        };
        submit(
            dev,
            &mut counts,
            u16::try_from(i)?,
            args.max_in_flight,
            &eos,
            &[],
        )?;
    }
    eprintln!(
        "redir-play: {samples} samples ({bytes} bytes) and {} EOS submitted; waiting for EOS",
        ids.len()
    );
    let deadline = Instant::now() + Duration::from_secs(args.eos_timeout);
    let mut eos: Vec<u32> = Vec::new();
    while eos.len() < ids.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match dev.next_event(left)? {
            Some((Event::Eos { stream }, _)) => {
                eprintln!("redir-play: stream {stream} reached end of stream");
                eos.push(stream);
            }
            Some((Event::StreamError { stream, status }, _)) => {
                bail!("stream {stream} failed: {status:?}")
            }
            Some(_) => {}
            None => bail!(
                "end of stream of {ids:?} within {:?}: only {eos:?}",
                args.eos_timeout
            ),
        }
    }
    for (i, _) in tracks.iter().enumerate() {
        let txq = u16::try_from(i)?;
        let until = Instant::now() + Duration::from_secs(10);
        while counts[i].completed < counts[i].submitted {
            if Instant::now() >= until {
                bail!(
                    "txq {txq}: {} of {} buffers completed",
                    counts[i].completed,
                    counts[i].submitted
                );
            }
            drain(dev, &mut counts, txq, Duration::from_millis(100))?;
        }
    }
    let _ = call(dev, pres, Request::PresDestroy);
    Ok(Played::Done(ids.len(), samples, bytes))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
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
        assert_eq!(args.file, PathBuf::from("clip.webm"));
        assert_eq!(args.max_in_flight, 64);
        let args = Args::parse_from(["redir-play", "--pci", "auto", "--recover", "2", "c.webm"]);
        assert!(matches!(
            target(&args),
            device::Target::Pci {
                bdf: None,
                poll: false
            }
        ));
        assert_eq!(args.recover, 2);
        assert!(
            Args::try_parse_from(["redir-play", "c.webm"]).is_err(),
            "a device is needed"
        );
        assert!(
            Args::try_parse_from(["redir-play", "--pci", "auto", "--vhost-user", "/s", "c"])
                .is_err(),
            "one device only"
        );
        assert!(
            Args::try_parse_from(["redir-play", "--vhost-user", "/s", "--pci-poll", "c"]).is_err()
        );
    }
}

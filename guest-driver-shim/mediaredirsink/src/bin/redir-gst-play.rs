//! `redir-gst-play`: plays a file in a GStreamer `playbin` whose audio and
//! video sinks are `mediaredirsink`, as a guest application with GStreamer
//! would: GStreamer's own demuxers and parsers read the file (qtdemux,
//! tsdemux, matroskademux, ... rather than `redir-demux`), and the sink
//! redirects the compressed streams to the client.
//!
//! It waits for a client first (the sink's caps are what the connected
//! client decodes), plays to the end, and fails when the pipeline errors or
//! when anything was decoded in the guest: a redirect that silently became
//! a local decode is a failure here, not a success. `cargo xtask demo
//! --player sink` runs it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use gstreamer as gst;
use gstreamer::prelude::*;
use mediaredir_player::MediaRedir;

/// Plays a file with GStreamer's playbin into mediaredirsink.
#[derive(Debug, Parser)]
#[command(name = "redir-gst-play", version)]
struct Args {
    /// The broker's socket.
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// Seconds to wait for a client to connect to the device.
    #[arg(long, default_value_t = 20)]
    wait_client: u64,
    /// Seconds the whole file may take to play.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// The file to play.
    file: PathBuf,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redir-gst-play: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    gst::init().context("initialising GStreamer")?;
    gstmediaredir::plugin_register_static().context("registering the mediaredir elements")?;
    let file = args
        .file
        .canonicalize()
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    {
        let mut redir = MediaRedir::open(&args.socket)
            .with_context(|| format!("connecting to the broker at {}", args.socket.display()))?;
        redir
            .wait_client(Duration::from_secs(args.wait_client))
            .context("no client connected to the device")?;
    }
    let sink = |what: &str| {
        gst::ElementFactory::make("mediaredirsink")
            .property("socket", args.socket.display().to_string())
            .build()
            .with_context(|| format!("making the {what} mediaredirsink"))
    };
    let playbin = gst::ElementFactory::make("playbin")
        .property("uri", format!("file://{}", file.display()))
        .property("video-sink", sink("video")?)
        .property("audio-sink", sink("audio")?)
        .build()
        .context("making playbin (gstreamer1.0-plugins-base)")?;
    // Video and audio only: no visualisation, subtitles or soft volume.
    playbin.set_property_from_str("flags", "video+audio");
    let result = play_to_eos(&playbin, Duration::from_secs(args.timeout));
    let decoders = guest_decoders(&playbin);
    playbin
        .set_state(gst::State::Null)
        .context("stopping the pipeline")?;
    result?;
    if !decoders.is_empty() {
        bail!("decoded in the guest instead of redirected: {decoders:?}");
    }
    Ok(())
}

/// Plays until end of stream, an error or `timeout`.
fn play_to_eos(playbin: &gst::Element, timeout: Duration) -> anyhow::Result<()> {
    let bus = playbin.bus().context("a pipeline has a bus")?;
    playbin
        .set_state(gst::State::Playing)
        .context("starting playback")?;
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let wait = gst::ClockTime::from_mseconds(u64::try_from(left.as_millis()).unwrap_or(1000));
        let Some(msg) =
            bus.timed_pop_filtered(wait, &[gst::MessageType::Eos, gst::MessageType::Error])
        else {
            break;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Error(e) => bail!(
                "error from {}: {} ({})",
                e.src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default(),
                e.error(),
                e.debug().map(|d| d.to_string()).unwrap_or_default()
            ),
            _ => {}
        }
    }
    bail!("no end of stream within {} s", timeout.as_secs())
}

/// The decoders playbin plugged (not the decodebins, which are bins).
fn guest_decoders(playbin: &gst::Element) -> Vec<String> {
    let Some(bin) = playbin.downcast_ref::<gst::Bin>() else {
        return Vec::new();
    };
    bin.iterate_recurse()
        .into_iter()
        .flatten()
        .filter(|element| !element.is::<gst::Bin>())
        .filter_map(|element| element.factory())
        .filter(|f| {
            f.metadata(gst::ELEMENT_METADATA_KLASS)
                .is_some_and(|k| k.contains("Decoder"))
        })
        .map(|f| f.name().to_string())
        .collect()
}

//! `redir-record`: records a capture stream of the media-redirection device
//! to a file. The client captures its microphone or camera and compresses
//! it; the samples reach the guest through capq and the broker, and are
//! written out as Ogg Opus or IVF (VP8).

mod writers;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use guest_driver_shim::connect::{Connection, DeviceArgs};
use mediaredir_player::PlayerError;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::{Direction, MediaParams, StreamFormat};
use mediaredir_proto::response::SourceKind;
use mediaredir_proto::status::Status;

use writers::{Ivf, OggOpus, SampleWriter};

/// What to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RecordCodec {
    /// Opus audio from a microphone, to Ogg Opus.
    Opus,
    /// VP8 video from a camera, to IVF.
    Vp8,
}

/// Records what the client captures (microphone or camera), compressed, to
/// a file.
#[derive(Debug, Parser)]
#[command(name = "redir-record", version)]
struct Args {
    #[command(flatten)]
    device: DeviceArgs,

    /// The codec (and so the kind of source and the file format).
    #[arg(long, value_enum, default_value = "opus")]
    codec: RecordCodec,

    /// The client's source id (default: its first source of the right kind).
    #[arg(long)]
    source: Option<u32>,

    /// Seconds of media to record.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,

    /// Encoder target bit rate.
    #[arg(long, default_value_t = 64_000)]
    bitrate: u32,

    /// Seconds to wait for a client to connect to the device.
    #[arg(long, default_value_t = 20)]
    wait_client: u64,

    /// The file to write (.ogg for Opus, .ivf for VP8).
    output: PathBuf,
}

fn run(args: &Args) -> anyhow::Result<()> {
    let target = args.device.target();
    let mut connection = Connection::open(&target)?;
    let redir = &mut connection.redir;
    let wait = Duration::from_secs(args.wait_client);
    redir
        .wait_client(wait)
        .with_context(|| format!("no client connected to the device within {wait:?}"))?;
    let (codec, kind) = match args.codec {
        RecordCodec::Opus => (Codec::Opus, SourceKind::Microphone),
        RecordCodec::Vp8 => (Codec::Vp8, SourceKind::Camera),
    };
    let sources = redir
        .enum_sources()
        .context("listing the client's sources")?;
    let source = match args.source {
        Some(id) => sources
            .iter()
            .find(|s| s.id == id)
            .with_context(|| format!("the client has no source {id}"))?,
        None => sources
            .iter()
            .find(|s| s.kind == kind)
            .with_context(|| format!("the client has no {kind:?}"))?,
    };
    eprintln!(
        "redir-record: recording {codec} from {:?} ({})",
        source.kind, source.name
    );
    let audio = codec == Codec::Opus;
    let format = StreamFormat {
        codec,
        direction: Direction::Capture,
        txq: 0,
        source_id: source.id,
        media: MediaParams {
            bitrate: args.bitrate,
            ..if audio {
                MediaParams::audio(48_000, 2)
            } else {
                MediaParams::video(320, 240, 30, 1)
            }
        },
        codec_data: Vec::new(),
    };
    match redir.try_format(&format) {
        Ok(()) => {}
        Err(PlayerError::Status {
            status: status @ (Status::Unsupported | Status::NoClient),
            ..
        }) => bail!("the client cannot capture {codec} ({status:?})"),
        Err(e) => return Err(e).context("checking the format"),
    }
    let mut writer: Box<dyn SampleWriter> = if audio {
        Box::new(OggOpus::create(&args.output, 2)?)
    } else {
        Box::new(Ivf::create(&args.output, 320, 240, 30)?)
    };
    let presentation = redir.create_presentation(true)?;
    let stream = redir.create_stream(presentation, &format)?;
    let buffers = redir.request_buffers(stream, 32, 256 << 10)?;
    for index in 0..buffers {
        redir.queue_capture_buffer(stream, index)?;
    }
    redir.start_capture(stream)?;
    let want = Duration::try_from_secs_f64(args.seconds).unwrap_or(Duration::from_secs(5));
    let want_ns = u64::try_from(want.as_nanos()).unwrap_or(u64::MAX);
    let (mut recorded_ns, mut samples, mut bytes, mut lost) = (0u64, 0u64, 0u64, 0u64);
    while recorded_ns < want_ns {
        let got = redir
            .dequeue_capture()
            .context("waiting for captured samples")?;
        match (got.status, got.header) {
            (Status::Ok, Some(header)) => {
                let len = header.payload_len as usize;
                let data = redir
                    .buffer(got.stream, got.index)
                    .and_then(|b| b.get(..len))
                    .context("a filled buffer is not readable")?
                    .to_vec();
                writer.write(&data, header.pts, header.duration)?;
                recorded_ns +=
                    header
                        .duration
                        .unwrap_or(if audio { 20_000_000 } else { 33_333_333 });
                samples += 1;
                bytes += data.len() as u64;
            }
            (status, _) => {
                lost += 1;
                log::warn!("a capture buffer came back {status:?}");
            }
        }
        redir.queue_capture_buffer(got.stream, got.index)?;
    }
    redir.stop_capture(stream)?;
    let _ = redir.destroy_presentation(presentation);
    writer.finish()?;
    println!(
        "redir-record: wrote {} ({samples} samples, {bytes} bytes, {:.2} s; {lost} buffers returned empty)",
        args.output.display(),
        Duration::from_nanos(recorded_ns).as_secs_f64()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    guest_driver_shim::connect::tool_main("redir-record", || run(&args).map(|()| true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use guest_driver_shim::connect::parse_checked;

    #[test]
    fn cli_is_well_formed() {
        let args: Args = parse_checked([
            "redir-record",
            "--vhost-user",
            "/s",
            "--seconds",
            "2",
            "out.ogg",
        ]);
        assert_eq!(args.codec, RecordCodec::Opus);
        assert_eq!(args.seconds, 2.0);
    }
}

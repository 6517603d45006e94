//! `redir-call`: what a guest softphone does with the media-redirection
//! device's call offload (spec 7.12). The softphone keeps its signalling;
//! the SDP it would have produced comes from the client, whose engine runs
//! the RTP media with the remote peer directly. This tool stands in for the
//! softphone's signalling with files: it writes the client's offer (or
//! answer) to a file and reads the peer's SDP from one.

mod script;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use guest_driver_shim::connect::{Connection, DeviceArgs};
use mediaredir_player::{MediaRedir, PlayerError};
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;

use script::{Step, parse_step};

/// Places or answers a call whose media the client handles: the guest
/// only exchanges SDP.
#[derive(Debug, Parser)]
#[command(name = "redir-call", version)]
struct Args {
    #[command(flatten)]
    device: DeviceArgs,

    /// Outgoing call: write the client's SDP offer here...
    #[arg(
        long,
        value_name = "FILE",
        requires = "remote_answer",
        conflicts_with = "remote_offer"
    )]
    offer_out: Option<PathBuf>,

    /// ...and read the peer's answer from here (waits until it exists).
    #[arg(long, value_name = "FILE")]
    remote_answer: Option<PathBuf>,

    /// Incoming call: the peer's SDP offer...
    #[arg(long, value_name = "FILE", requires = "answer_out")]
    remote_offer: Option<PathBuf>,

    /// ...and where to write the client's answer.
    #[arg(long, value_name = "FILE")]
    answer_out: Option<PathBuf>,

    /// Seconds of call after the media starts.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,

    /// Steps at SECONDS into the call: `2:dtmf=123#`, `3:hold`, `4:resume`,
    /// `1:mute`, `2:unmute`; repeatable.
    #[arg(long, value_name = "SECONDS:STEP", value_parser = parse_step)]
    at: Vec<(Duration, Step)>,

    /// Seconds between statistics lines.
    #[arg(long, default_value_t = 2.0)]
    stats_interval: f64,

    /// Seconds to wait for a client and for the peer's answer.
    #[arg(long, default_value_t = 20)]
    wait: u64,
}

fn read_when_present(path: &Path, timeout: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return Ok(text);
        }
        if Instant::now() >= deadline {
            bail!("{} did not appear within {timeout:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `text` to `path` atomically (a reader polling for it never sees
/// half of it).
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn refused(e: PlayerError, what: &str) -> anyhow::Error {
    match e.status() {
        Some(Status::Invalid | Status::Unsupported | Status::Io) => {
            anyhow::anyhow!("the client refused the {what}: {e}")
        }
        _ => anyhow::Error::new(e).context(format!("{what} failed")),
    }
}

fn print_stats(redir: &mut MediaRedir, session: u32) -> anyhow::Result<()> {
    let s = redir.call_stats(session)?;
    println!(
        "redir-call: stats jitter_us={} packets_lost={} packets_received={} rtt_us={} mos_x100={}",
        s.jitter_us, s.packets_lost, s.packets_received, s.rtt_us, s.mos_x100
    );
    Ok(())
}

fn run(args: &Args) -> anyhow::Result<bool> {
    let target = args.device.target();
    let mut connection = Connection::open(&target)?;
    let redir = &mut connection.redir;
    let wait = Duration::from_secs(args.wait);
    let caps = redir
        .wait_client(wait)
        .with_context(|| format!("no client connected to the device within {wait:?}"))?;
    // CLIENT_FEATURE_CALL (spec 10.6).
    if caps.client_features & 4 == 0 {
        bail!("the client cannot run call media (no CALL feature)");
    }
    let session = match (&args.offer_out, &args.remote_offer) {
        (Some(offer_out), _) => {
            let (session, offer) = redir.call_create(None).map_err(|e| refused(e, "call"))?;
            write_atomically(offer_out, &offer)?;
            eprintln!(
                "redir-call: call {session}: offer written to {}",
                offer_out.display()
            );
            let answer_path = args.remote_answer.as_ref().context("--remote-answer")?;
            let answer = read_when_present(answer_path, wait)?;
            redir
                .call_set_remote(session, &answer)
                .map_err(|e| refused(e, "remote answer"))?;
            session
        }
        (None, Some(offer_in)) => {
            let offer = std::fs::read_to_string(offer_in)
                .with_context(|| format!("reading {}", offer_in.display()))?;
            let (session, answer) = redir
                .call_create(Some(&offer))
                .map_err(|e| refused(e, "remote offer"))?;
            let answer_out = args.answer_out.as_ref().context("--answer-out")?;
            write_atomically(answer_out, &answer)?;
            eprintln!(
                "redir-call: call {session}: answer written to {}",
                answer_out.display()
            );
            session
        }
        (None, None) => bail!("give --offer-out/--remote-answer or --remote-offer/--answer-out"),
    };
    redir.call_start(session)?;
    eprintln!("redir-call: call {session}: media started");
    let result = converse(redir, session, args);
    let _ = print_stats(redir, session);
    redir.call_end(session)?;
    result
}

/// The call itself: scripted steps, events and statistics until the end.
/// `Ok(false)` when the call ended early for another reason than the
/// peer hanging up.
fn converse(redir: &mut MediaRedir, session: u32, args: &Args) -> anyhow::Result<bool> {
    let start = Instant::now();
    let duration = Duration::try_from_secs_f64(args.duration).unwrap_or(Duration::from_secs(5));
    let interval =
        Duration::try_from_secs_f64(args.stats_interval).unwrap_or(Duration::from_secs(2));
    let mut steps = args.at.clone();
    steps.sort_by_key(|(at, _)| *at);
    let mut next_stats = start + interval;
    while start.elapsed() < duration {
        while let Some((at, step)) = steps.first().cloned()
            && start.elapsed() >= at
        {
            steps.remove(0);
            script::apply(redir, session, &step)?;
        }
        if Instant::now() >= next_stats {
            next_stats += interval;
            print_stats(redir, session)?;
        }
        match redir.wait_event(Duration::from_millis(100))? {
            Some(Event::CallDtmf { session: s, event }) if s == session => {
                println!("redir-call: dtmf received {}", script::dtmf_char(event));
            }
            Some(Event::CallEnded { session: s, status }) if s == session => {
                println!("redir-call: call ended by the client: {status:?}");
                return Ok(status == Status::Ok);
            }
            Some(Event::ClientDisconnected) => bail!("the client went away"),
            _ => {}
        }
    }
    Ok(true)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    guest_driver_shim::connect::tool_main("redir-call", || run(&args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use guest_driver_shim::connect::parse_checked;

    #[test]
    fn cli_is_well_formed() {
        let args: Args = parse_checked([
            "redir-call",
            "--vhost-user",
            "/s",
            "--offer-out",
            "o.sdp",
            "--remote-answer",
            "a.sdp",
            "--at",
            "1:dtmf=12#",
        ]);
        assert_eq!(args.at.len(), 1);
        assert!(Args::try_parse_from(["redir-call", "--offer-out", "o.sdp"]).is_err());
    }
}

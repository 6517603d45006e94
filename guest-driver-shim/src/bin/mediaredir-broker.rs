//! `mediaredir-broker`: owns the media-redirection device in the guest and
//! serves players on `/run/mediaredir/broker.sock` (spec §9). In a guest:
//! `mediaredir-broker --pci auto` (root, hugepages reserved); players then
//! connect with `--broker`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::Parser;
use guest_driver_shim::broker::{Broker, BrokerOptions, DEFAULT_TICK};
use guest_driver_shim::{
    DriverOptions, MediaDevice, PciOptions, PciTransport, Transport, VhostUserOptions,
    VhostUserTransport,
};
use mediaredir_player::seqpacket::SeqpacketListener;
use mediaredir_proto::broker::DEFAULT_SOCKET;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Owns the media-redirection device and serves players over a Unix
/// socket: several players at once, each with its own objects and buffer
/// pools.
#[derive(Debug, Parser)]
#[command(name = "mediaredir-broker", version)]
#[command(group(clap::ArgGroup::new("device").required(true).args(["vhost_user", "pci"])))]
struct Args {
    /// Reach the device over vhost-user at this socket (a host test rig:
    /// this process plays QEMU's part with memfd "guest RAM").
    #[arg(long, value_name = "SOCKET")]
    vhost_user: Option<PathBuf>,

    /// Drive the device's PCI function (`0000:00:03.0`, or `auto`: the
    /// first 1af4:1079), bound to uio_pci_generic (a real guest; root and
    /// hugepages needed).
    #[arg(long, value_name = "BDF")]
    pci: Option<String>,

    /// With `--pci`: poll the rings instead of waiting for interrupts.
    #[arg(long, requires = "pci", conflicts_with = "vhost_user")]
    pci_poll: bool,

    /// The socket players connect to.
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,

    /// Permissions of the socket (octal).
    #[arg(long, default_value = "660", value_parser = parse_mode)]
    mode: u32,

    /// Most players at once.
    #[arg(long, default_value_t = 64)]
    max_clients: usize,

    /// Log level (error, warn, info, debug, trace); RUST_LOG overrides.
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal mode"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    env_logger::Builder::new()
        .parse_filters(&args.log_level)
        .parse_env("RUST_LOG")
        .init();
    if let Some(dir) = args.socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let listener = SeqpacketListener::bind(&args.socket, args.mode)
        .with_context(|| format!("binding {}", args.socket.display()))?;
    let options = BrokerOptions {
        max_clients: args.max_clients,
        ..BrokerOptions::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .with_context(|| format!("installing a handler for signal {signal}"))?;
    }
    match (&args.vhost_user, &args.pci) {
        (Some(socket), _) => {
            let transport = VhostUserTransport::connect_new(socket, VhostUserOptions::default())
                .with_context(|| format!("connecting to {}", socket.display()))?;
            serve(transport, listener, options, &stop)
        }
        (None, Some(bdf)) => {
            let pci = PciOptions {
                poll: args.pci_poll,
                ..PciOptions::default()
            };
            let function = (bdf != "auto").then_some(bdf.as_str());
            let transport = PciTransport::open(function, pci)
                .with_context(|| format!("opening PCI function {bdf}"))?;
            serve(transport, listener, options, &stop)
        }
        (None, None) => anyhow::bail!("--vhost-user or --pci is needed"),
    }
}

/// Initialises the device behind `transport` and serves it until `stop`.
fn serve<T: Transport>(
    transport: T,
    listener: SeqpacketListener,
    options: BrokerOptions,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let dev =
        MediaDevice::new(transport, DriverOptions::default()).context("initialising the device")?;
    let mut broker = Broker::new(dev, listener, options)?;
    broker.run(stop, DEFAULT_TICK)?;
    log::info!("broker: stopping");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use guest_driver_shim::connect::parse_checked;

    #[test]
    fn cli_needs_exactly_one_device() {
        let args: Args = parse_checked(["mediaredir-broker", "--pci", "auto", "--pci-poll"]);
        assert_eq!(args.pci.as_deref(), Some("auto"));
        assert!(args.pci_poll);
        assert_eq!(args.socket, PathBuf::from(DEFAULT_SOCKET));
        let args = Args::parse_from(["mediaredir-broker", "--vhost-user", "/tmp/v.sock"]);
        assert_eq!(args.vhost_user, Some(PathBuf::from("/tmp/v.sock")));
        assert!(Args::try_parse_from(["mediaredir-broker"]).is_err());
        assert!(
            Args::try_parse_from(["mediaredir-broker", "--pci", "auto", "--vhost-user", "/v"])
                .is_err()
        );
        assert!(
            Args::try_parse_from(["mediaredir-broker", "--pci-poll", "--vhost-user", "/v"])
                .is_err()
        );
    }
}

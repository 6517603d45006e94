//! `vhost-user-mediaredir`: parses the command line and runs the daemon.

use anyhow::Context;
use clap::Parser;
use vhost_user_mediaredir::args::Args;
use vhost_user_mediaredir::daemon::Daemon;
use vhost_user_mediaredir::signals;

fn main() -> anyhow::Result<()> {
    let caught = signals::catch().context("catching signals")?;
    let args = Args::parse();
    let mut logger = env_logger::Builder::new();
    logger.filter_level(args.log_level);
    if let Ok(filters) = std::env::var("RUST_LOG") {
        logger.parse_filters(&filters);
    }
    logger.init();
    let daemon = Daemon::new(args.config()?).context("starting the daemon")?;
    let report = args
        .verify_report
        .clone()
        .map(|path| signals::ReportOnSignal {
            path,
            source: Box::new(daemon.verification_source()),
        });
    signals::report_on_signals(caught, daemon.counters().clone(), report)
        .context("installing signal handlers")?;
    daemon.run().context("serving vhost-user")?;
    Ok(())
}

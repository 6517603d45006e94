//! `mediaredir-viewer`: parses the command line and runs the viewer.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = mediaredir_viewer::Args::parse();
    mediaredir_viewer::app::run(args)?;
    Ok(())
}

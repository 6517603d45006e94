//! `vhost-device-media`: the daemon's old name, kept for one release so that
//! scripts, units and libvirt set-ups written for it keep working.
//!
//! The daemon is `vhost-user-mediaredir` now (QEMU names its vhost-user
//! backends `vhost-user-*`, and rust-vmm's `vhost-device-media` is a different
//! device). This program prints one deprecation line and replaces itself with
//! the `vhost-user-mediaredir` installed in the same directory, with the same
//! arguments, so signals, exit status and the process id stay the daemon's.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

/// The daemon's name now.
const NEW_NAME: &str = "vhost-user-mediaredir";

fn main() -> ExitCode {
    eprintln!(
        "warning: `vhost-device-media` is deprecated and will be removed in the next release; \
         run `{NEW_NAME}` (same options)"
    );
    let daemon = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(NEW_NAME),
        Err(e) => {
            eprintln!("error: cannot find this program's directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `exec` returns only when it failed.
    let error = Command::new(&daemon)
        .arg0(NEW_NAME)
        .args(std::env::args_os().skip(1))
        .exec();
    eprintln!("error: cannot run {}: {error}", daemon.display());
    ExitCode::FAILURE
}

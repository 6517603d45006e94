//! The daemon's old name keeps working for one release (issue 17): the
//! `vhost-device-media` program warns once and runs `vhost-user-mediaredir`
//! with the same arguments.

use std::process::Command;

#[test]
fn old_name_warns_and_runs_the_renamed_daemon_with_the_same_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_vhost-device-media"))
        .arg("--version")
        .output()
        .expect("run vhost-device-media");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {stderr}",
        out.status
    );
    // clap prints the command's name and version: the renamed daemon answered.
    assert_eq!(
        stdout.trim(),
        format!("vhost-user-mediaredir {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(
        stderr.contains("`vhost-device-media` is deprecated")
            && stderr.contains("vhost-user-mediaredir"),
        "no deprecation line: {stderr}"
    );
}

#[test]
fn old_name_passes_the_daemons_errors_and_exit_status_through() {
    let out = Command::new(env!("CARGO_BIN_EXE_vhost-device-media"))
        .arg("--no-such-option")
        .output()
        .expect("run vhost-device-media");
    assert_eq!(out.status.code(), Some(2), "clap's usage error status");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--no-such-option"), "{stderr}");
}

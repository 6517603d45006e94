//! The daemon's systemd unit template
//! (`qemu-config/systemd/vhost-user-mediaredir@.service`) passes
//! `systemd-analyze verify` (from the `systemd` package, which `cargo xtask
//! setup` installs) without a word: no unknown directive, no bad value, no
//! missing program. `verify` loads the unit in a manager of its own and
//! needs no running systemd (it runs in containers whose PID 1 is not
//! systemd).
//!
//! The unit starts `/usr/local/bin/vhost-user-mediaredir`, which `verify`
//! requires to be executable: the test verifies a copy whose only change is
//! that path, pointing at a stub script.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const UNIT: &str = "vhost-user-mediaredir@.service";
const DAEMON: &str = "/usr/local/bin/vhost-user-mediaredir";

#[test]
fn unit_passes_systemd_analyze_verify() {
    if !test_support::require(
        "systemd_unit::unit_passes_systemd_analyze_verify",
        &[test_support::Tool {
            program: "systemd-analyze",
            package: "systemd",
        }],
    ) {
        return;
    }
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("systemd")
            .join(UNIT),
    )
    .expect("read the unit");
    assert_eq!(
        text.matches(DAEMON).count(),
        1,
        "the unit names the daemon once, in ExecStart"
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let stub = dir.path().join("vhost-user-mediaredir");
    std::fs::write(&stub, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.path().join(UNIT),
        text.replace(DAEMON, &stub.display().to_string()),
    )
    .unwrap();
    // A template is verified through an instance; the template file beside
    // it is found by name.
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.path().join("vhost-user-mediaredir@vm1.service"))
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify {UNIT} (status {}):\n{said}",
        output.status
    );
}

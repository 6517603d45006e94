//! What the capi tests share: where the header, the example and the built
//! library are, and compiling C against them.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conformance_tests::rig::workspace_binary;

/// The crate's directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `include/mediaredir.h`.
pub fn header() -> PathBuf {
    crate_dir().join("include/mediaredir.h")
}

/// The directory of `libmediaredir.so`: next to the test binary's target
/// directory (`cargo test -p mediaredir-capi` builds the cdylib with the
/// rlib), else built now.
pub fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    let deps = exe.parent().expect("deps dir");
    let profile = deps.parent().expect("profile dir");
    for dir in [profile, deps] {
        if dir.join("libmediaredir.so").exists() {
            return dir.to_path_buf();
        }
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", "mediaredir-capi", "--lib"]);
    if profile.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    assert!(
        build.status().expect("run cargo build").success(),
        "building libmediaredir failed"
    );
    assert!(
        profile.join("libmediaredir.so").exists(),
        "no libmediaredir.so"
    );
    profile.to_path_buf()
}

/// Compiles `source` (C11, all warnings as errors) against the header and
/// `libmediaredir.so` into `out`.
pub fn compile_c(source: &Path, out: &Path) {
    let lib = library_dir();
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let output = Command::new(cc)
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
            "-I",
        ])
        .arg(crate_dir().join("include"))
        .arg(source)
        .arg("-L")
        .arg(&lib)
        .arg("-lmediaredir")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(out)
        .output()
        .expect("run the C compiler");
    assert!(
        output.status.success(),
        "compiling {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `mediaredir-broker`: `$MEDIAREDIR_BROKER`, or built on demand.
pub fn broker_binary() -> PathBuf {
    workspace_binary(
        "MEDIAREDIR_BROKER",
        "guest-driver-shim",
        "mediaredir-broker",
    )
}

/// The broker process, killed when dropped.
pub struct Broker(Child);

impl Broker {
    /// Starts a broker on the device at `vhost_user`, serving `socket`;
    /// returns once the socket exists.
    pub fn start(vhost_user: &Path, socket: &Path) -> Broker {
        let child = Command::new(broker_binary())
            .arg("--vhost-user")
            .arg(vhost_user)
            .arg("--socket")
            .arg(socket)
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .spawn()
            .expect("start mediaredir-broker");
        let mut broker = Broker(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            if let Ok(Some(status)) = broker.0.try_wait() {
                panic!("mediaredir-broker exited early: {status}");
            }
            assert!(Instant::now() < deadline, "broker socket never appeared");
            std::thread::sleep(Duration::from_millis(10));
        }
        broker
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

//! `cargo xtask qemu`: provide a QEMU able to create the media-redirection
//! device, and the `qemu attach` test step.
//!
//! The system's `qemu-system-x86_64` is used when it can create the device
//! (its binary names virtio ID 57, and it has a user-creatable generic
//! vhost-user PCI device). Otherwise (always on Debian 12, whose QEMU is 7.2)
//! Debian's QEMU 10.0.2 source from bookworm-backports is fetched, patched with
//! `qemu-config/patches/*.patch`, configured for x86_64-softmmu with almost
//! everything off and built with ninja. The binary is cached in
//! `$XDG_CACHE_HOME/vhost-device-media/qemu-10.0.2-<hash>/bin/`, where the
//! hash covers the patches and the configure options, and a stamp file marks a
//! finished build: a second run reuses it. The build has Spice
//! (libspice-server) and the standard VGA, so that one QEMU serves both the
//! VM's Spice desktop and the media device, as on a VDI host; the `qemu
//! attach` step checks both on the same QEMU ([`desktop`]). The same
//! configure also builds the qtest of patch 0004's `chardev-relay` object,
//! installed beside the binary and run by the `qemu qtest` step ([`qtest`]).

pub(crate) mod desktop;
pub(crate) mod qtest;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use qemu_config::{
    DeviceFlavor, PATCHED_QEMU_VERSION, QemuCommand, SpiceListen, SpiceServer, VIRTIO_NAME,
};
use rustix::process::{Pid, Signal};

use test_support::Qmp;

use crate::flatc_install::project_cache;
use crate::tempdir;
use crate::{process, setup};

/// The Debian source version of QEMU 10.0.2 in bookworm-backports.
pub(crate) const DEBIAN_VERSION: &str = "1:10.0.2+ds-2+deb13u1~bpo12+1";
/// The upstream tarball `apt-get source --tar-only` downloads.
const ORIG_TARBALL: &str = "qemu_10.0.2+ds.orig.tar.xz";
/// Where the patches live, relative to the workspace root.
const PATCH_DIR: &str = "qemu-config/patches";
/// meson and the one other Python package QEMU's configure insists on.
const PIP_PACKAGES: &[&str] = &["meson==1.5.0", "pycotap==1.3.1"];
/// The sources entry this builder adds when no deb-src entry has backports.
const BACKPORTS_SOURCES: &str = "/etc/apt/sources.list.d/vhost-device-media-backports.sources";

/// Debian packages to build QEMU (and `seabios` to run it with `-L`).
pub(crate) const BUILD_PACKAGES: &[&str] = &[
    "build-essential",
    "ninja-build",
    "pkg-config",
    "python3-venv",
    "libglib2.0-dev",
    "libpixman-1-dev",
    "zlib1g-dev",
    "libfdt-dev",
    "libspice-protocol-dev",
    "libspice-server-dev",
    "patch",
    "xz-utils",
    "seabios",
];

/// The configure options: x86_64 only, every optional feature off except
/// TCG, vhost-user, system libfdt, pixman (the standard VGA needs it) and
/// Spice (libspice-server; `spice-protocol` is a feature of its own that
/// `--without-default-features` turns off too), so that one QEMU serves the
/// Spice desktop (`-vga std`) and the media device.
pub(crate) const CONFIGURE_ARGS: &[&str] = &[
    "--target-list=x86_64-softmmu",
    "--without-default-features",
    "--enable-tcg",
    "--enable-vhost-user",
    "--enable-fdt=system",
    "--enable-pixman",
    "--enable-spice-protocol",
    "--enable-spice",
    "--disable-install-blobs",
    "--disable-werror",
];

/// What ninja builds: QEMU and the relay's qtest (no configure option of
/// its own; 53 more build commands than QEMU's ~1590).
const NINJA_TARGETS: &[&str] = &["qemu-system-x86_64", qtest::NINJA_TARGET];

/// A QEMU binary and the device it offers.
#[derive(Debug, Clone)]
pub(crate) struct Qemu {
    /// The `qemu-system-x86_64` binary.
    pub(crate) binary: PathBuf,
    /// Its generic vhost-user device.
    pub(crate) flavor: DeviceFlavor,
    /// The relay's qtest built with it (not with the system's QEMU).
    pub(crate) qtest: Option<PathBuf>,
}

/// `cargo xtask qemu`: provide the QEMU and print its path.
pub(crate) fn run() -> Result<()> {
    let qemu = ensure()?;
    println!("qemu: {} ({})", qemu.binary.display(), qemu.flavor.driver());
    Ok(())
}

/// FNV-1a, 64 bits: a stable hash without a dependency.
pub(crate) fn fnv1a(data: &[u8], mut hash: u64) -> u64 {
    for &byte in data {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The FNV-1a offset basis.
const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// The patches, sorted by name.
fn patches(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join(PATCH_DIR);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "patch") {
            found.push(path);
        }
    }
    found.sort();
    if found.is_empty() {
        bail!("no patches in {}", dir.display());
    }
    Ok(found)
}

/// The cache key: a hash of the patches (names and contents) and the
/// configure options.
pub(crate) fn build_key(patches: &[(String, Vec<u8>)], configure: &[&str]) -> String {
    let mut hash = FNV_BASIS;
    for (name, content) in patches {
        hash = fnv1a(name.as_bytes(), hash);
        hash = fnv1a(&[0], hash);
        hash = fnv1a(content, hash);
        hash = fnv1a(&[0], hash);
    }
    for arg in configure {
        hash = fnv1a(arg.as_bytes(), hash);
        hash = fnv1a(&[0], hash);
    }
    format!("{hash:016x}")
}

/// Whether a QEMU binary names virtio ID 57 (the patch's string is in it).
fn binary_names_the_device(binary: &Path) -> bool {
    let Ok(bytes) = std::fs::read(binary) else {
        return false;
    };
    let needle = format!("{VIRTIO_NAME}\0");
    bytes
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The QEMU on `PATH`, if it can create the device.
fn system_qemu() -> Option<Qemu> {
    let output = process::capture(Command::new("qemu-system-x86_64").arg("--version")).ok()?;
    if !output.status.success() {
        return None;
    }
    let (major, minor, _) =
        qemu_config::parse_qemu_version(&String::from_utf8_lossy(&output.stdout))?;
    let flavor = DeviceFlavor::for_version(major, minor);
    let help = format!("{},help", flavor.driver());
    let creatable = process::succeeds(
        Command::new("timeout")
            .args(["20", "qemu-system-x86_64", "-device", &help])
            .stdin(Stdio::null()),
    );
    let binary = test_support::find_program("qemu-system-x86_64")?;
    (creatable && binary_names_the_device(&binary)).then_some(Qemu {
        binary,
        flavor,
        qtest: None,
    })
}

/// Provides a QEMU able to create the device: the system's, the cached
/// build, or a new build.
pub(crate) fn ensure() -> Result<Qemu> {
    if let Some(qemu) = system_qemu() {
        println!("qemu: the system's QEMU can create the device");
        return Ok(qemu);
    }
    let root = crate::workspace_root();
    let patch_files = patches(root)?;
    let mut named = Vec::new();
    for path in &patch_files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        named.push((name, std::fs::read(path)?));
    }
    let key = build_key(&named, &[CONFIGURE_ARGS, NINJA_TARGETS].concat());
    let cache = project_cache()?;
    let dir = cache.join(format!("qemu-{PATCHED_QEMU_VERSION}-{key}"));
    let binary = dir.join("bin").join("qemu-system-x86_64");
    let stamp = dir.join("stamp");
    let qemu = Qemu {
        binary: binary.clone(),
        flavor: DeviceFlavor::Legacy,
        qtest: Some(dir.join("bin").join(qtest::BINARY)),
    };
    // `cargo xtask setup` installs BUILD_PACKAGES (every task that gets
    // here ran it first).
    if binary.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == key) {
        println!("qemu: reusing the cached build {}", binary.display());
        return Ok(qemu);
    }
    let started = Instant::now();
    build(&cache, &dir, &patch_files)?;
    std::fs::write(&stamp, format!("{key}\n"))?;
    println!(
        "qemu: built {} in {}",
        binary.display(),
        crate::timing::format_duration(started.elapsed())
    );
    Ok(qemu)
}

/// Runs an apt command line non-interactively.
fn apt(args: &[String]) -> Result<()> {
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..])
        .env("DEBIAN_FRONTEND", "noninteractive");
    process::run(&mut cmd)
}

/// The deb822 entry for bookworm-backports sources (and binaries), on `uri`.
pub(crate) fn backports_entry(uri: &str) -> String {
    format!(
        "# Added by `cargo xtask qemu` (vhost-device-media): QEMU 10.0.2's source.\n\
         Types: deb deb-src\n\
         URIs: {uri}\n\
         Suites: bookworm-backports\n\
         Components: main\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
}

/// The Debian archive URI already configured: the first `URIs:` of a
/// deb822 stanza for `bookworm`, or of a one-line `deb URI bookworm` entry.
pub(crate) fn configured_debian_uri(sources: &str) -> Option<String> {
    for stanza in sources.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|line| line.strip_prefix(name).map(|rest| rest.trim().to_string()))
        };
        if let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:"))
            && suites.split_whitespace().any(|s| s == "bookworm")
        {
            return uris.split_whitespace().next().map(str::to_string);
        }
    }
    sources.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["deb", uri, "bookworm", ..] => Some((*uri).to_string()),
            _ => None,
        }
    })
}

/// All apt sources files' text.
fn apt_sources_text() -> String {
    let mut text = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let name = path.to_string_lossy();
            if name.ends_with(".sources") || name.ends_with(".list") {
                text.push_str("\n\n");
                text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    text
}

/// Whether apt knows the source package of QEMU 10.0.2.
fn source_known() -> bool {
    process::capture(Command::new("apt-cache").args(["showsrc", "qemu"]))
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains(&DEBIAN_VERSION[2..]))
}

/// Makes apt know QEMU 10.0.2's source: adds the backports entry if needed.
fn ensure_backports_source() -> Result<()> {
    if source_known() {
        return Ok(());
    }
    if !Path::new(BACKPORTS_SOURCES).exists() {
        let uri = configured_debian_uri(&apt_sources_text())
            .unwrap_or_else(|| "http://deb.debian.org/debian".to_string());
        if !setup::is_root()? {
            bail!(
                "apt knows no source of QEMU {DEBIAN_VERSION}; as root, write {BACKPORTS_SOURCES}:\n{}",
                backports_entry(&uri)
            );
        }
        println!("qemu: adding {BACKPORTS_SOURCES} ({uri})");
        std::fs::write(BACKPORTS_SOURCES, backports_entry(&uri))
            .with_context(|| format!("writing {BACKPORTS_SOURCES}"))?;
    }
    apt(&setup::apt_update_args())?;
    if !source_known() {
        bail!("apt still knows no source of QEMU {DEBIAN_VERSION} after adding bookworm-backports");
    }
    Ok(())
}

/// ninja's `-j`: `CARGO_BUILD_JOBS` when it is a positive number (a shared
/// machine limits cargo and the QEMU build alike); ninja's own default
/// (cores + 2) otherwise.
pub(crate) fn ninja_jobs(cargo_build_jobs: Option<&str>) -> Option<u32> {
    cargo_build_jobs
        .and_then(|jobs| jobs.trim().parse::<u32>().ok())
        .filter(|&jobs| jobs > 0)
}

/// Fetches, patches, configures and builds QEMU into `dir/bin`.
fn build(cache: &Path, dir: &Path, patches: &[PathBuf]) -> Result<()> {
    let downloads = cache.join("qemu-source");
    let tarball = downloads.join(ORIG_TARBALL);
    if !tarball.is_file() {
        ensure_backports_source()?;
        std::fs::create_dir_all(&downloads)?;
        // Only the upstream tarball: the Debian packaging is not needed.
        process::run(
            Command::new("apt-get")
                .args(["source", "--download-only", "--tar-only"])
                .arg(format!("qemu={DEBIAN_VERSION}"))
                .current_dir(&downloads),
        )?;
    }
    let venv = cache.join("qemu-meson-venv");
    let python = venv.join("bin").join("python3");
    if !venv.join("bin").join("meson").is_file() {
        process::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        process::run(
            Command::new(venv.join("bin").join("pip"))
                .args(["install", "--quiet"])
                .args(PIP_PACKAGES),
        )?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let work = dir.join("work");
    std::fs::create_dir_all(&work)?;
    process::run(
        Command::new("tar")
            .arg("xf")
            .arg(&tarball)
            .arg("-C")
            .arg(&work),
    )?;
    let src = work.join(format!("qemu-{PATCHED_QEMU_VERSION}"));
    for patch in patches {
        process::run(
            Command::new("patch")
                .args(["-p1", "--forward", "-i"])
                .arg(patch)
                .current_dir(&src),
        )?;
    }
    let build = work.join("build");
    std::fs::create_dir_all(&build)?;
    process::run(
        Command::new(src.join("configure"))
            .arg(format!("--python={}", python.display()))
            .args(CONFIGURE_ARGS)
            .current_dir(&build),
    )?;
    let mut ninja = Command::new("ninja");
    if let Some(jobs) = ninja_jobs(std::env::var("CARGO_BUILD_JOBS").ok().as_deref()) {
        ninja.arg(format!("-j{jobs}"));
    }
    process::run(ninja.args(NINJA_TARGETS).current_dir(&build))?;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy(
        build.join("qemu-system-x86_64"),
        bin.join("qemu-system-x86_64"),
    )?;
    std::fs::copy(build.join(qtest::NINJA_TARGET), bin.join(qtest::BINARY))?;
    // The source and objects (~1 GB) are not needed any more.
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

/// A child process ended (and reaped) when dropped: `SIGTERM` first, so
/// that a `timeout` wrapper passes it on to its command (a `SIGKILL` would
/// orphan the command), `SIGKILL` after [`Guard::GRACE`].
struct Guard(Child);

impl Guard {
    /// How long the child gets between `SIGTERM` and `SIGKILL`.
    const GRACE: Duration = Duration::from_secs(5);
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait()
            && let Some(pid) = i32::try_from(self.0.id()).ok().and_then(Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, Signal::TERM);
            let started = Instant::now();
            while started.elapsed() < Self::GRACE {
                if !matches!(self.0.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `path` exists.
fn wait_for(path: &Path, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > timeout {
            bail!("{} did not appear within {timeout:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// What `info pci` must show: the device's PCI IDs. (QEMU 10.0.2's
/// `x-query-virtio-status` aborts on ID 57: it has no feature names for it.)
pub(crate) fn check_info_pci(info_pci: &str) -> Result<()> {
    let pci = format!(
        "PCI device {:04x}:{:04x}",
        qemu_config::PCI_VENDOR_ID_VIRTIO,
        qemu_config::PCI_DEVICE_ID_MEDIA_REDIR
    );
    if !info_pci.contains(&pci) {
        bail!("`info pci` shows no `{pci}`: {info_pci}");
    }
    Ok(())
}

/// The `qemu attach` test step: the real QEMU creates the device on the real
/// daemon (null uplink), paused at first: realizing the device needs the
/// vhost-user handshake (features, config space); QMP shows the PCI device.
/// The same QEMU serves the Spice desktop: resumed, the firmware (no disk)
/// draws its screen and the Spice server answers ([`desktop::check`]). The
/// daemon logs the frontend's session.
pub(crate) fn attach_check() -> Result<()> {
    let qemu = ensure()?;
    let daemon_bin = crate::workspace_root().join("target/debug/vhost-user-mediaredir");
    if !daemon_bin.is_file() {
        process::run(&mut process::cargo_command(&[
            "build",
            "--locked",
            "-p",
            "vhost-user-mediaredir",
        ]))?;
    }
    let tmp = tempdir::new("qemu-attach")?;
    let socket = tmp.path().join("vdm.sock");
    let qmp_socket = tmp.path().join("qmp.sock");
    let spice_socket = tmp.path().join("spice.sock");
    let daemon_log = tmp.path().join("daemon.log");
    let log = std::fs::File::create(&daemon_log)?;
    let mut daemon_cmd = Command::new(&daemon_bin);
    daemon_cmd
        .arg("--socket-path")
        .arg(&socket)
        .args(["--uplink", "null", "--log-level", "debug"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    println!("$ {}", process::display(&daemon_cmd));
    let _daemon = Guard(daemon_cmd.spawn().context("starting the daemon")?);
    wait_for(&socket, Duration::from_secs(20))?;

    let mut cmd = QemuCommand::new(&socket)
        .with_spice_desktop(SpiceServer::new(SpiceListen::Unix(spice_socket.clone())));
    cmd.flavor = qemu.flavor;
    cmd.paused = true;
    cmd.qmp_socket = Some(qmp_socket.clone());
    let mut qemu_cmd = Command::new("timeout");
    qemu_cmd
        .args(["60"])
        .arg(&qemu.binary)
        .args(cmd.args())
        .stdin(Stdio::null());
    println!("$ {}", process::display(&qemu_cmd));
    let mut qemu_child = Guard(qemu_cmd.spawn().context("starting QEMU")?);
    let started = Instant::now();
    while !qmp_socket.exists() {
        if let Some(status) = qemu_child.0.try_wait()? {
            bail!("QEMU exited early ({status})");
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("QEMU opened no QMP socket within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut qmp = Qmp::connect(&qmp_socket).context("QMP")?;
    let info_pci = qmp
        .execute(r#"{"execute":"human-monitor-command","arguments":{"command-line":"info pci"}}"#)
        .context("QMP info pci")?;
    let checked = check_info_pci(&info_pci).and_then(|()| {
        qmp.execute(r#"{"execute":"cont"}"#).context("QMP cont")?;
        desktop::check(&mut qmp, &spice_socket, tmp.path())
    });
    let _ = qmp.execute(r#"{"execute":"quit"}"#);
    let qemu_status = qemu_child.0.wait()?;
    checked?;
    if !qemu_status.success() {
        bail!("QEMU exited with {qemu_status}");
    }
    // The daemon notes the end of the frontend's session.
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&daemon_log)?;
        if text.contains("frontend disconnected") {
            println!("qemu attach: QEMU created {VIRTIO_NAME} on the daemon; daemon log:");
            print!("{text}");
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("the daemon did not log the frontend's session:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_the_reference_function() {
        assert_eq!(fnv1a(b"", FNV_BASIS), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a", FNV_BASIS), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn key_follows_patches_and_options() {
        let a = vec![("0001.patch".to_string(), b"x".to_vec())];
        let b = vec![("0001.patch".to_string(), b"y".to_vec())];
        assert_eq!(build_key(&a, CONFIGURE_ARGS), build_key(&a, CONFIGURE_ARGS));
        assert_ne!(build_key(&a, CONFIGURE_ARGS), build_key(&b, CONFIGURE_ARGS));
        assert_ne!(build_key(&a, CONFIGURE_ARGS), build_key(&a, &[]));
        assert_eq!(build_key(&a, &[]).len(), 16);
    }

    #[test]
    fn ninja_jobs_follow_cargo_build_jobs() {
        assert_eq!(ninja_jobs(Some("1")), Some(1));
        assert_eq!(ninja_jobs(Some(" 2 ")), Some(2));
        assert_eq!(ninja_jobs(Some("0")), None);
        assert_eq!(ninja_jobs(Some("default")), None);
        assert_eq!(ninja_jobs(None), None);
    }

    #[test]
    fn the_repository_has_the_patches() {
        let found = patches(crate::workspace_root()).unwrap();
        assert!(found[0].ends_with("0001-virtio-media-redir.patch"));
    }

    #[test]
    fn debian_uri_is_found() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
                      Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            configured_debian_uri(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let one_line = "deb http://ftp.example/debian bookworm main\n";
        assert_eq!(
            configured_debian_uri(one_line).as_deref(),
            Some("http://ftp.example/debian")
        );
        assert_eq!(configured_debian_uri("Suites: sid\nURIs: x\n"), None);
        let entry = backports_entry("http://m/debian");
        assert!(entry.contains("Types: deb deb-src\n"));
        assert!(entry.contains("Suites: bookworm-backports\n"));
        assert!(entry.contains("URIs: http://m/debian\n"));
    }

    #[test]
    fn info_pci_is_checked() {
        check_info_pci("Class 1920: PCI device 1af4:1079\\r\\n").unwrap();
        assert!(check_info_pci("PCI device 1af4:1041").is_err());
    }
}

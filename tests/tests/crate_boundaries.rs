//! Crate boundaries (issue 17): what a library must not pull in, read from
//! `cargo tree` (normal edges only: what a build of the library links, not
//! its tests).
//!
//! - `client-engine` is the GStreamer engine library only: no Spice client,
//!   no TLS, no command line, no `anyhow`/`env_logger` (binary-only crates).
//!   Those belong to `media-client`, the engine as a process.
//! - `mediaredir-gst-caps`, the codec <-> caps mapping that the engine and
//!   the guest's GStreamer plugin share, links neither of them, no driver
//!   code and nothing the engine must not link.
//! - The bit-exact oracle (`client-engine`'s `verify` feature) is not in the
//!   daemon's default build.
//! - `mediaredir-timer`, shared by the daemon and the engine, is std only.
//!
//! Each check runs once more on a tree that does have what it looks for, so
//! a check that cannot fail (a changed `cargo tree` output, a wrong package
//! name) fails here instead.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// What the engine library must not depend on, directly or not.
const NOT_IN_THE_ENGINE: &[&str] = &[
    "spice-client-glib",
    "rustls",
    "clap",
    "anyhow",
    "env_logger",
];

/// `cargo tree --prefix none --offline` of `args`, one line per entry.
fn tree(args: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let out = Command::new(env!("CARGO"))
        .arg("tree")
        .args(args)
        .args(["--prefix", "none", "--offline"])
        .current_dir(root)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(!lines.is_empty(), "cargo tree {args:?} printed nothing");
    lines
}

/// The crate names of a `cargo tree -e normal` listing.
fn crates(package: &str) -> BTreeSet<String> {
    tree(&["-e", "normal", "-p", package])
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Which of `forbidden` the normal dependency tree of `package` holds.
fn forbidden_in(package: &str, forbidden: &[&str]) -> Vec<String> {
    let crates = crates(package);
    assert!(crates.contains(package), "{package} is not in its own tree");
    forbidden
        .iter()
        .filter(|f| crates.contains(**f))
        .map(|f| f.to_string())
        .collect()
}

/// Asserts that the tree of `package` holds none of `forbidden` (`why`
/// says why not), and that the trees of `carriers` hold each of them: a
/// check that cannot fail (a misspelt name) fails instead.
fn assert_links_none(package: &str, forbidden: &[&str], carriers: &[&str], why: &str) {
    let found = forbidden_in(package, forbidden);
    assert!(found.is_empty(), "{package} depends on {found:?}: {why}");
    let carried: BTreeSet<String> = carriers.iter().copied().flat_map(crates).collect();
    for name in forbidden {
        assert!(
            carried.contains(*name),
            "no tree of {carriers:?} has {name}: the check cannot fail"
        );
    }
}

#[test]
fn the_engine_library_links_no_spice_client_tls_or_cli() {
    assert_links_none(
        "client-engine",
        NOT_IN_THE_ENGINE,
        &["media-client"],
        "transports and the CLI belong to media-client",
    );
}

/// What the codec <-> caps mapping shared by the engine and the guest's
/// GStreamer plugin must not depend on: either of its users, driver code
/// (the plugin's `.so` holds none), and what the engine must not link.
const NOT_IN_THE_CAPS_MAPPING: &[&str] = &[
    "client-engine",
    "gst-plugin-mediaredir",
    "guest-driver-shim",
    "vhost",
    "vm-memory",
    "spice-client-glib",
    "rustls",
    "clap",
    "anyhow",
];

#[test]
fn the_shared_caps_mapping_links_neither_user_driver_spice_nor_tls() {
    assert_links_none(
        "mediaredir-gst-caps",
        NOT_IN_THE_CAPS_MAPPING,
        &[
            "vhost-user-mediaredir",
            "media-client",
            "gst-plugin-mediaredir",
            "redir-play",
        ],
        "it is shared by the engine and the guest's plugin",
    );
}

/// Whether the daemon's build (with `extra` arguments) turns on
/// `client-engine`'s `verify` feature.
fn daemon_enables_verify(extra: &[&str]) -> bool {
    let mut args = vec![
        "-e",
        "normal,features",
        "-i",
        "client-engine",
        "-p",
        "vhost-user-mediaredir",
    ];
    args.extend(extra);
    tree(&args)
        .iter()
        .any(|l| l.starts_with("client-engine feature \"verify\""))
}

#[test]
fn the_daemons_default_build_has_no_verification_oracle() {
    assert!(
        !daemon_enables_verify(&[]),
        "the daemon's default build enables client-engine/verify"
    );
    assert!(
        daemon_enables_verify(&["--features", "verify"]),
        "the daemon's `verify` feature does not reach client-engine: the check cannot fail"
    );
}

#[test]
fn the_timer_depends_on_std_and_thiserror_only() {
    // thiserror and the crates its derive is built with; nothing a
    // process linking the timer would not already have.
    const ALLOWED: &[&str] = &[
        "mediaredir-timer",
        "thiserror",
        "thiserror-impl",
        "proc-macro2",
        "quote",
        "syn",
        "unicode-ident",
    ];
    let deps: Vec<String> = crates("mediaredir-timer")
        .into_iter()
        .filter(|c| !ALLOWED.contains(&c.as_str()))
        .collect();
    assert!(
        deps.is_empty(),
        "mediaredir-timer depends on {deps:?}: the daemon and the engine share it, keep it small"
    );
    // The check sees dependencies where there are some.
    assert!(
        crates("client-engine").contains("mediaredir-timer"),
        "client-engine's tree has no mediaredir-timer: the check cannot fail"
    );
}

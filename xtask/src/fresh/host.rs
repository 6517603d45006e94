//! What the fresh root takes from the host: the few settings needed to reach
//! the network from here, the Rust toolchain, and the command's environment.
//!
//! Why so little: the point of the fresh root is that nothing installed or
//! cached on the host by hand can make the project's commands pass. A CI
//! machine has its own way to reach a Debian mirror and crates.io (apt
//! sources and proxy, DNS, sometimes a company CA), and it has the Rust
//! toolchain; so those, and only those, are brought in ([`COPIED`], the
//! proxy lines of the apt configuration, [`Toolchain`]). The crates are
//! downloaded cold into the root's own `CARGO_HOME`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// How a host path is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A file; a symbolic link is followed (its content is copied).
    File,
    /// A directory with everything below it (symbolic links kept as links).
    Dir,
}

/// The host paths that replace the same paths in the root (a path absent on
/// the host is removed from the root, so that the root's apt sources are
/// exactly the host's):
/// - the apt sources and the keys they name (`Signed-By` files live in
///   `keyrings`/`trusted.gpg.d`), so apt reaches the mirror the host uses;
/// - `resolv.conf`: the host's DNS;
/// - the host's extra CA certificates (a proxy that inspects TLS), added to
///   the root's CA store by `update-ca-certificates`.
pub(crate) const COPIED: &[(&str, Kind)] = &[
    ("/etc/apt/sources.list", Kind::File),
    ("/etc/apt/sources.list.d", Kind::Dir),
    ("/etc/apt/trusted.gpg.d", Kind::Dir),
    ("/etc/apt/keyrings", Kind::Dir),
    ("/etc/resolv.conf", Kind::File),
    ("/usr/local/share/ca-certificates", Kind::Dir),
];

/// The apt configuration whose proxy lines are kept.
const APT_CONF: &str = "/etc/apt/apt.conf";
/// The apt configuration directory whose files' proxy lines are kept.
const APT_CONF_DIR: &str = "/etc/apt/apt.conf.d";
/// Where the root gets the host's apt proxy lines.
pub(crate) const PROXY_CONF_IN_ROOT: &str = "/etc/apt/apt.conf.d/00fresh-check-proxy";

/// Environment variables passed from the host to the command when set: CI
/// (tests fail rather than skip under `CI=true`), the proxy settings cargo
/// and pip need, and the host's choice of toolchain.
pub(crate) const PASSED_ENV: &[&str] = &[
    "CI",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "RUSTUP_TOOLCHAIN",
];

/// `PATH` inside: Debian's standard one behind the cargo bin directory (as a
/// rustup installation sets it).
pub(crate) const PATH_INSIDE: &str =
    "/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The command's whole environment: `HOME`, `PATH` and the [`PASSED_ENV`]
/// variables the host has (`host` looks one up).
pub(crate) fn environment(host: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let mut env = vec![
        ("HOME".to_string(), "/root".to_string()),
        ("PATH".to_string(), PATH_INSIDE.to_string()),
    ];
    env.extend(
        PASSED_ENV
            .iter()
            .filter_map(|&name| host(name).map(|value| (name.to_string(), value))),
    );
    env
}

/// The apt proxy settings in apt configuration text: one-line statements
/// naming a proxy (`Acquire::http::Proxy "http://p:3128";`), comments left out.
pub(crate) fn proxy_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("//") && !line.starts_with('#'))
        .filter(|line| line.to_ascii_lowercase().contains("::proxy"))
        .collect()
}

/// The host's Rust toolchain (a rustup installation).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Toolchain {
    /// `RUSTUP_HOME`: the toolchains and rustup's settings.
    pub(crate) rustup_home: PathBuf,
    /// `$CARGO_HOME/bin`: `cargo`, `rustc`, ... (rustup proxies).
    pub(crate) cargo_bin: PathBuf,
}

impl Toolchain {
    /// Where rustup puts things, from the values of `RUSTUP_HOME`,
    /// `CARGO_HOME` and `HOME` (rustup's defaults: `~/.rustup`, `~/.cargo`).
    pub(crate) fn locate(
        rustup_home: Option<OsString>,
        cargo_home: Option<OsString>,
        home: Option<OsString>,
    ) -> Result<Self> {
        let home = home.map(PathBuf::from);
        let pick = |set: Option<OsString>, default: &str| -> Result<PathBuf> {
            match (set.map(PathBuf::from), &home) {
                (Some(dir), _) if dir.is_absolute() => Ok(dir),
                (_, Some(home)) if home.is_absolute() => Ok(home.join(default)),
                _ => bail!("cannot find the Rust toolchain: HOME is not an absolute path"),
            }
        };
        Ok(Self {
            rustup_home: pick(rustup_home, ".rustup")?,
            cargo_bin: pick(cargo_home, ".cargo")?.join("bin"),
        })
    }

    /// The host's toolchain; fails unless it is a rustup installation.
    pub(crate) fn find() -> Result<Self> {
        let toolchain = Self::locate(
            std::env::var_os("RUSTUP_HOME"),
            std::env::var_os("CARGO_HOME"),
            std::env::var_os("HOME"),
        )?;
        if !toolchain.rustup_home.join("toolchains").is_dir()
            || !toolchain.cargo_bin.join("cargo").is_file()
        {
            bail!(
                "fresh-check brings in a rustup toolchain, and there is none at {} with cargo in {}",
                toolchain.rustup_home.display(),
                toolchain.cargo_bin.display()
            );
        }
        Ok(toolchain)
    }
}

/// `path` (absolute) below `root`.
pub(crate) fn in_root(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Copies the [`COPIED`] paths and the apt proxy lines into the root;
/// returns what it did, one line each, for the log.
pub(crate) fn copy_settings(root: &Path) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for &(path, kind) in COPIED {
        let source = Path::new(path);
        let target = in_root(root, path);
        remove(&target)?;
        if std::fs::metadata(source).is_err() {
            done.push(format!("{path}: absent on the host, removed"));
            continue;
        }
        match kind {
            Kind::File => std::fs::copy(source, &target).map(|_| ()),
            Kind::Dir => copy_tree(source, &target),
        }
        .with_context(|| format!("copying {path} into {}", root.display()))?;
        done.push(format!("{path}: copied"));
    }
    let proxies = host_proxy_lines()?;
    if !proxies.is_empty() {
        let target = in_root(root, PROXY_CONF_IN_ROOT);
        std::fs::write(&target, proxies.join("\n") + "\n")
            .with_context(|| format!("writing {}", target.display()))?;
        done.push(format!(
            "{PROXY_CONF_IN_ROOT}: {} proxy line(s)",
            proxies.len()
        ));
    }
    Ok(done)
}

/// The proxy lines of the host's apt configuration.
fn host_proxy_lines() -> Result<Vec<String>> {
    let mut files = vec![PathBuf::from(APT_CONF)];
    if let Ok(entries) = std::fs::read_dir(APT_CONF_DIR) {
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        files.extend(names);
    }
    let mut lines = Vec::new();
    for file in files.iter().filter(|f| f.is_file()) {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        lines.extend(proxy_lines(&text).into_iter().map(str::to_owned));
    }
    Ok(lines)
}

/// Removes a file, link or directory tree if present.
pub(crate) fn remove(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("inspecting {}", path.display())),
        Ok(meta) if meta.is_dir() => {
            std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))
        }
        Ok(_) => std::fs::remove_file(path).with_context(|| format!("removing {}", path.display())),
    }
}

/// Copies a file, a symbolic link (as a link) or a directory tree to `to`
/// (which must not exist), keeping permissions; parents are created.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let meta = std::fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)
    } else if meta.is_dir() {
        std::fs::create_dir(to)?;
        std::fs::set_permissions(to, meta.permissions())?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tempdir;

    #[test]
    fn only_network_settings_are_copied() {
        let paths: Vec<&str> = COPIED.iter().map(|(path, _)| *path).collect();
        for path in &paths {
            assert!(
                path.starts_with("/etc/apt/")
                    || *path == "/etc/resolv.conf"
                    || *path == "/usr/local/share/ca-certificates",
                "{path}"
            );
        }
        // Not the whole apt configuration: only its proxy lines.
        assert!(!paths.contains(&"/etc/apt/apt.conf.d"));
        assert!(
            !paths
                .iter()
                .any(|p| p.contains("cache") || p.starts_with("/root"))
        );
    }

    #[test]
    fn keeps_only_proxy_lines_of_apt_configuration() {
        let conf = r#"
Acquire::http::Proxy "http://proxy:3128";
// Acquire::https::Proxy "http://old:3128";
Acquire::Check-Valid-Until "false";
  acquire::HTTPS::proxy "DIRECT";
APT::Install-Recommends "0";
"#;
        assert_eq!(
            proxy_lines(conf),
            [
                r#"Acquire::http::Proxy "http://proxy:3128";"#,
                r#"acquire::HTTPS::proxy "DIRECT";"#
            ]
        );
        assert!(proxy_lines("").is_empty());
    }

    #[test]
    fn environment_is_clean_with_ci_and_proxies_passed() {
        let host = |name: &str| match name {
            "CI" => Some("true".to_string()),
            "https_proxy" => Some("http://p:3128".to_string()),
            "USER" | "CARGO_HOME" | "RUSTFLAGS" => Some("x".to_string()),
            _ => None,
        };
        assert_eq!(
            environment(host),
            [
                ("HOME".to_string(), "/root".to_string()),
                ("PATH".to_string(), PATH_INSIDE.to_string()),
                ("CI".to_string(), "true".to_string()),
                ("https_proxy".to_string(), "http://p:3128".to_string()),
            ]
        );
        let none = environment(|_| None);
        assert_eq!(none.len(), 2);
        assert!(PATH_INSIDE.starts_with("/root/.cargo/bin:"));
    }

    #[test]
    fn toolchain_follows_rustup_defaults_and_overrides() {
        let found = Toolchain::locate(None, None, Some("/home/u".into())).unwrap();
        assert_eq!(
            found,
            Toolchain {
                rustup_home: "/home/u/.rustup".into(),
                cargo_bin: "/home/u/.cargo/bin".into(),
            }
        );
        let found =
            Toolchain::locate(Some("/opt/rustup".into()), Some("/opt/cargo".into()), None).unwrap();
        assert_eq!(found.rustup_home, Path::new("/opt/rustup"));
        assert_eq!(found.cargo_bin, Path::new("/opt/cargo/bin"));
        assert!(Toolchain::locate(None, None, Some("rel".into())).is_err());
    }

    #[test]
    fn copy_tree_keeps_links_modes_and_contents() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempdir::new("xtask-fresh-host").unwrap();
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("sub")).unwrap();
        std::fs::write(from.join("sub/f"), b"data").unwrap();
        std::fs::set_permissions(from.join("sub/f"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        std::os::unix::fs::symlink("sub/f", from.join("link")).unwrap();
        let to = dir.path().join("a/b/to");
        copy_tree(&from, &to).unwrap();
        assert_eq!(std::fs::read(to.join("sub/f")).unwrap(), b"data");
        let mode = std::fs::metadata(to.join("sub/f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
        assert_eq!(
            std::fs::read_link(to.join("link")).unwrap(),
            Path::new("sub/f")
        );
        remove(&to).unwrap();
        assert!(!to.exists());
        remove(&to).unwrap();
    }

    #[test]
    fn root_paths() {
        assert_eq!(
            in_root(Path::new("/tmp/r"), "/etc/resolv.conf"),
            Path::new("/tmp/r/etc/resolv.conf")
        );
    }
}

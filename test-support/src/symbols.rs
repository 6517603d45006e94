//! What a built shared library is made of, read from its symbol table.
//!
//! The guest's player libraries (the C API's `libmediaredir.so`, the
//! GStreamer plugin's `libgstmediaredir.so`) must hold no driver code: no
//! PCI, uio, vhost-user, virtqueue or vm-memory code, nothing of the
//! `guest-driver-shim` crate. Cargo dependencies say what *may* be linked;
//! the symbol table says what *is*. This reads it with binutils' `nm`
//! (every defined symbol, local ones too, demangled) and finds names that
//! mention a word, by identifier parts, so that `PciTransport` and
//! `pci::caps` match `pci` while `specific` does not.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Tool;

/// binutils' `nm`.
pub const NM: Tool = Tool {
    program: "nm",
    package: "binutils",
};

/// Words that name the guest's driver code: the driver crate and the
/// modules and crates of its transports.
pub const DRIVER_WORDS: &[&str] = &[
    "guest_driver_shim",
    "pci",
    "uio",
    "vhost",
    "virtqueue",
    "vm_memory",
];

/// The defined symbols of `lib` (static and dynamic symbol tables, local
/// symbols included), demangled.
pub fn defined_symbols(lib: &Path) -> Vec<String> {
    let out = Command::new(NM.program)
        .args(["--demangle", "--defined-only"])
        .arg(lib)
        .output()
        .unwrap_or_else(|e| panic!("running nm on {}: {e}", lib.display()));
    assert!(
        out.status.success(),
        "nm {} failed: {}",
        lib.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let symbols: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        // "<address> <type> <name>": the name may contain spaces.
        .filter_map(|l| l.splitn(3, ' ').nth(2).map(str::to_owned))
        .collect();
    assert!(
        !symbols.is_empty(),
        "{} has no symbol table (stripped?): nothing to check",
        lib.display()
    );
    symbols
}

/// The lower-case parts of `ident`: split at `_` and where a lower case
/// letter or digit is followed by an upper case one.
fn parts(ident: &str) -> Vec<String> {
    let mut parts = Vec::new();
    for piece in ident.split('_') {
        let mut part = String::new();
        let mut prev_lower = false;
        for c in piece.chars() {
            if c.is_ascii_uppercase() && prev_lower {
                parts.push(std::mem::take(&mut part));
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            part.push(c.to_ascii_lowercase());
        }
        if !part.is_empty() {
            parts.push(part);
        }
    }
    parts
}

/// Whether `name` mentions `word` (a `snake_case` word): in one of its
/// identifiers (split at every character that is not alphanumeric or `_`),
/// the word's parts appear in a row.
pub fn mentions(name: &str, word: &str) -> bool {
    let word: Vec<&str> = word.split('_').collect();
    name.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|ident| {
            parts(ident)
                .windows(word.len())
                .any(|w| w.iter().zip(&word).all(|(a, b)| a == b))
        })
}

/// The symbols among `symbols` that mention any of `words`.
pub fn mentioning<'a>(symbols: &'a [String], words: &[&str]) -> Vec<&'a str> {
    symbols
        .iter()
        .filter(|s| words.iter().any(|w| mentions(s, w)))
        .map(String::as_str)
        .collect()
}

/// The shared library `file` (e.g. `libmediaredir.so`) of the workspace
/// package `package`, as built for the running test: `cargo test` builds
/// a package's cdylib with its tests into `<profile>/deps` (next to the
/// test binary), `cargo build` into `<profile>`; the newer of the two is
/// the one of this build (the other may be stale). When neither is there,
/// it is built now.
pub fn built_library(package: &str, file: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    let profile = deps.parent().expect("profile dir");
    let newest = [deps, profile]
        .iter()
        .map(|dir| dir.join(file))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max_by_key(|(modified, _)| *modified);
    if let Some((_, found)) = newest {
        return found;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", package, "--lib"]);
    if profile.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "building {package} failed");
    let built = profile.join(file);
    assert!(built.exists(), "cargo built {package} but no {file}");
    built
}

/// The symbols of `package`'s shared library `file` that name driver code
/// ([`DRIVER_WORDS`]); empty for a library that holds none. Panics when
/// the library shows no code of `mediaredir-player` at all: the check
/// would then be looking at the wrong file, or at no Rust symbols.
pub fn driver_code_in(package: &str, file: &str) -> Vec<String> {
    let lib = built_library(package, file);
    let symbols = defined_symbols(&lib);
    assert!(
        symbols.iter().any(|s| mentions(s, "mediaredir_player")),
        "{}: no symbol of mediaredir_player among {}: not the player library?",
        lib.display(),
        symbols.len()
    );
    mentioning(&symbols, DRIVER_WORDS)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Fails unless `package`'s shared library `file` is free of driver code
/// (see [`driver_code_in`]), naming the first offenders.
pub fn assert_no_driver_code(package: &str, file: &str) {
    let found = driver_code_in(package, file);
    assert!(
        found.is_empty(),
        "{file} holds {} symbols of driver code, e.g. {:#?}",
        found.len(),
        &found[..found.len().min(20)]
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_match_by_identifier_parts() {
        for (name, word) in [
            ("guest_driver_shim::pci::caps::read", "pci"),
            (
                "<guest_driver_shim::PciTransport as Transport>::notify",
                "pci",
            ),
            ("vm_memory::mmap::GuestMemoryMmap::new", "vm_memory"),
            ("guest_driver_shim::vhost_user::connect", "vhost"),
            ("VhostUserTransport::connect_new", "vhost"),
            ("guest_driver_shim::virtqueue::Virtqueue::add", "virtqueue"),
            ("x::open_uio_device", "uio"),
        ] {
            assert!(mentions(name, word), "{name} should mention {word}");
        }
    }

    #[test]
    fn words_inside_other_words_do_not_match() {
        for (name, word) in [
            ("core::fmt::specific_pcie_thing", "pci"),
            ("std::io::fluid_audio", "uio"),
            ("mediaredir_player::seqpacket::SeqpacketConn::send", "vhost"),
            ("vm::memory_map", "vm_memory"),
        ] {
            assert!(!mentions(name, word), "{name} should not mention {word}");
        }
    }

    #[test]
    fn mentioning_lists_the_offenders() {
        let symbols = vec![
            "mediaredir_open".to_owned(),
            "guest_driver_shim::pci::sysfs::bars".to_owned(),
            "vm_memory::GuestAddress::new".to_owned(),
        ];
        assert_eq!(
            mentioning(&symbols, DRIVER_WORDS),
            [
                "guest_driver_shim::pci::sysfs::bars",
                "vm_memory::GuestAddress::new"
            ]
        );
    }
}

//! Scratch directories: the `tempfile` crate, named so that a leftover
//! says whose it is.
//!
//! Every crate's tests and xtask need a fresh directory removed on drop.
//! They had six hand-written copies; this is the one. The name is
//! `{prefix}-{pid}-{random}` in the system temporary directory (`TMPDIR`,
//! which `cargo xtask test` points at a directory of its run and checks
//! for leftovers at the end), so a directory left behind names the test
//! that made it and the process, and a run can tell its own from a dead
//! run's by the PID.

use std::io;

pub use tempfile::TempDir;

/// A new, empty directory `{prefix}-{pid}-{random}` in the temporary
/// directory, removed with everything in it when dropped.
///
/// # Errors
/// When the directory cannot be created.
pub fn try_scratch(prefix: &str) -> io::Result<TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-{}-", std::process::id()))
        .tempdir()
}

/// [`try_scratch`] for tests: panics, naming the directory, when it cannot
/// be created.
pub fn scratch(prefix: &str) -> TempDir {
    try_scratch(prefix).unwrap_or_else(|e| {
        panic!(
            "cannot create a scratch directory {prefix}-* in {}: {e}",
            std::env::temp_dir().display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_unique_named_and_removed_on_drop() {
        let a = scratch("ts-test");
        let b = scratch("ts-test");
        assert_ne!(a.path(), b.path());
        let name = a.path().file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.starts_with(&format!("ts-test-{}-", std::process::id())));
        std::fs::write(a.path().join("f"), b"x").unwrap();
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
    }

    #[test]
    fn kept_directory_survives_drop() {
        let path = scratch("ts-test").keep();
        assert!(path.is_dir());
        std::fs::remove_dir(&path).unwrap();
    }
}

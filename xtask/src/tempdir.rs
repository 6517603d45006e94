//! Scratch directories removed on drop: the `tempfile` crate, through
//! `test_support::try_scratch`, the one place that names them.
//!
//! `flatc-check` generates into a scratch directory and compares, the demo,
//! the matrix, the bench and the VM tasks keep their sockets and logs in
//! one, and the tests need them too. A directory is
//! `{prefix}-{pid}-{random}` in `TMPDIR`: inside `cargo xtask test` (and
//! every task with a [`RunScope`](crate::scope::RunScope)) that is the run's
//! own directory, whose leftovers the scope names and removes at the end;
//! `fresh-check` finds the roots of dead runs by the PID in the name.

use anyhow::{Context, Result};

pub(crate) use test_support::TempDir;

/// A new, empty, uniquely named directory, removed with everything in it
/// when dropped (`keep()` gives up the removal).
pub(crate) fn new(prefix: &str) -> Result<TempDir> {
    test_support::try_scratch(prefix).with_context(|| {
        format!(
            "cannot create a scratch directory {prefix}-* in {}",
            std::env::temp_dir().display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_unique_and_removed_on_drop() {
        let (a, b) = (new("xtask-test").unwrap(), new("xtask-test").unwrap());
        assert_ne!(a.path(), b.path());
        std::fs::create_dir(a.path().join("sub")).unwrap();
        std::fs::write(a.path().join("sub/f"), b"x").unwrap();
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists(), "removed with what is in it");
    }

    #[test]
    fn kept_directory_survives_drop() {
        // fresh-check keeps a root and finds a dead run's by the PID in
        // its name.
        let path = new("xtask-test").unwrap().keep();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let pid = name.strip_prefix("xtask-test-").unwrap().split('-').next();
        assert_eq!(pid, Some(std::process::id().to_string().as_str()));
        assert!(path.is_dir());
        std::fs::remove_dir(&path).unwrap();
    }
}

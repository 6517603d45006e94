//! Scratch directories removed on drop.
//!
//! `flatc-check` generates into a scratch directory and compares; the tests
//! need scratch directories too. A few lines here instead of a dependency
//! keeps xtask at two pure-Rust crates.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

/// A fresh directory under the system temporary directory, removed with
/// everything in it when dropped.
#[derive(Debug)]
pub(crate) struct TempDir {
    /// The directory.
    path: PathBuf,
}

impl TempDir {
    /// Creates a new, empty, uniquely named directory.
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "{prefix}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        // `create_dir`, not `create_dir_all`: fail rather than reuse a directory.
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { path })
    }

    /// Takes ownership of an existing directory: removed on drop.
    pub(crate) fn adopt(path: PathBuf) -> Self {
        Self { path }
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Gives up ownership: the directory is no longer removed on drop.
    pub(crate) fn keep(mut self) -> PathBuf {
        let path = std::mem::take(&mut self.path);
        // Nothing else to release: the path was the only field.
        std::mem::forget(self);
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover scratch directory is harmless.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_unique_and_removed_on_drop() {
        let a = TempDir::new("xtask-test").unwrap();
        let b = TempDir::new("xtask-test").unwrap();
        assert_ne!(a.path(), b.path());
        std::fs::write(a.path().join("f"), b"x").unwrap();
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
    }

    #[test]
    fn kept_directory_survives_drop() {
        let dir = TempDir::new("xtask-test").unwrap();
        let path = dir.keep();
        assert!(path.is_dir());
        std::fs::remove_dir(&path).unwrap();
    }
}

//! A scratch directory removed when dropped: `test_support::scratch` (the
//! `tempfile` crate) with the two accessors the tests use.

use std::path::{Path, PathBuf};

use test_support::TempDir;

/// A directory for one test's sockets and files, `vdm-{tag}-{pid}-{random}`
/// in the temporary directory.
#[derive(Debug)]
pub struct Scratch(TempDir);

impl Scratch {
    /// A fresh directory under the system temp dir, named after `tag`.
    pub fn new(tag: &str) -> Scratch {
        Scratch(test_support::scratch(&format!("vdm-{tag}")))
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.0.path()
    }
}

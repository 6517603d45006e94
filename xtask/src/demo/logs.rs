//! Where a demo's components write: a log file the demo names (the
//! default: a demo's own output is then its summary), or the terminal
//! (`-v`, and the bench, which calls the demo's [`play`](super::play)).

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};

/// The current run's log: `None` is the terminal.
static LOG: Mutex<Option<(PathBuf, Arc<File>)>> = Mutex::new(None);

fn log() -> MutexGuard<'static, Option<(PathBuf, Arc<File>)>> {
    LOG.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The components of the runs that follow write to a new file at `path`.
pub(crate) fn to_file(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    *log() = Some((path.to_path_buf(), Arc::new(file)));
    Ok(())
}

/// The components of the runs that follow write to the terminal.
pub(crate) fn to_terminal() {
    *log() = None;
}

/// The log file, if the components write to one.
pub(crate) fn path() -> Option<PathBuf> {
    log().as_ref().map(|(p, _)| p.clone())
}

/// One line of the demo's own narration (a command line, an exit status).
pub(crate) fn line(text: &str) {
    match log().as_ref() {
        Some((_, file)) => {
            let _ = writeln!(&**file, "{text}");
        }
        None => println!("{text}"),
    }
}

/// A child's stdout or stderr.
pub(crate) fn stdio() -> Stdio {
    match log().as_ref().map(|(_, f)| f.try_clone()) {
        Some(Ok(file)) => Stdio::from(file),
        _ => Stdio::inherit(),
    }
}

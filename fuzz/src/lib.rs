//! What every fuzz target does: hand the input to a parser of untrusted
//! data and drive it to the end, bounded, so that a panic, an overflow, a
//! hang or unbounded memory shows up as a libFuzzer finding.
//!
//! The demuxers read files (they seek), so the input is written to a file
//! in `/dev/shm` (memory, not disk) once per run; each fuzzing process has
//! its own.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

/// At most this many samples are pulled from one input: a demuxer that
/// keeps producing samples from a few KiB of input is a finding of the
/// memory limit, not an endless run.
const MAX_SAMPLES: usize = 100_000;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("mediaredir-fuzz-{}", std::process::id()))
    })
}

/// Opens `data` as `format` (a `redir_demux::fuzzing::FORMATS` name, or
/// `None` to sniff like the player does) and reads every sample.
pub fn demux(format: Option<&str>, data: &[u8]) {
    let path = scratch();
    let written = std::fs::File::create(path).and_then(|mut f| f.write_all(data));
    if written.is_err() {
        return;
    }
    let opened = match format {
        Some(name) => redir_demux::fuzzing::open_as(path, name),
        None => redir_demux::open(path),
    };
    let Ok(mut demuxer) = opened else { return };
    let _ = demuxer.tracks().len();
    for _ in 0..MAX_SAMPLES {
        match demuxer.next_sample() {
            Ok(Some(sample)) => {
                let _ = sample.data.len();
            }
            Ok(None) | Err(_) => return,
        }
    }
}

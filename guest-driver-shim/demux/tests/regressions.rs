//! Inputs the fuzz targets (`cargo xtask fuzz`) found crashing a demuxer,
//! kept so the fix stays: each file in `tests/regressions/` is opened as
//! every format and read to the end, and must give samples or an error,
//! never a panic (tests build with overflow checks on).

use std::path::Path;

#[test]
fn fuzz_findings_are_errors_not_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );
    for file in &files {
        for format in redir_demux::fuzzing::FORMATS {
            let Ok(mut demuxer) = redir_demux::fuzzing::open_as(file, format) else {
                continue;
            };
            for _ in 0..100_000 {
                match demuxer.next_sample() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}

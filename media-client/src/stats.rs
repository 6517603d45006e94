//! Per-stream statistics lines: frames decoded, rendered, dropped, and the
//! A/V drift of each presentation (latest decoded video PTS minus latest
//! decoded audio PTS: how far the two decoders are apart, a coarse sign of
//! one stream starving).

use std::collections::BTreeMap;

use client_engine::{Engine, MediaKind};

/// Logs one line per stream and one drift line per presentation with audio
/// and video.
pub fn print(engine: &Engine, when: &str) {
    let stats = engine.stats();
    if stats.is_empty() {
        log::info!("[{when}] no streams");
        return;
    }
    let mut last: BTreeMap<u32, (Option<u64>, Option<u64>)> = BTreeMap::new();
    for s in &stats {
        log::info!(
            "[{when}] presentation {} stream {} {}: decoded {} rendered {} dropped {} queued {} B{}",
            s.presentation,
            s.stream,
            s.codec.name(),
            s.decoded,
            s.rendered,
            s.dropped,
            s.queued_bytes,
            s.failed
                .map(|st| format!(" FAILED {st}"))
                .unwrap_or_default()
        );
        let e = last.entry(s.presentation).or_default();
        match s.kind {
            MediaKind::Video => e.0 = e.0.max(s.last_pts),
            MediaKind::Audio => e.1 = e.1.max(s.last_pts),
        }
    }
    for (p, (v, a)) in last {
        if let (Some(v), Some(a)) = (v, a) {
            let drift_ms = (i128::from(v) - i128::from(a)) as f64 / 1e6;
            log::info!("[{when}] presentation {p}: A/V drift {drift_ms:+.1} ms");
        }
    }
}

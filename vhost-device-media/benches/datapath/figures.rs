//! Figures: one path's throughput and latency at one size, pooled over the
//! rounds, and the statistics they are made of.

use test_support::serde_json::{Value, json};

use crate::path::Run;

/// Nearest-rank percentile of sorted `v`, in microseconds.
/// `v` to `digits` decimals, as the JSON line gives it (a whole number
/// when `digits` is 0).
pub(crate) fn round(v: f64, digits: i32) -> Value {
    let scale = 10f64.powi(digits);
    let v = (v * scale).round() / scale;
    if digits == 0 && v.is_finite() && v.abs() < 9e15 {
        // Whole and below 2^53: exact as an integer.
        #[allow(clippy::cast_possible_truncation)]
        return Value::from(v as i64);
    }
    Value::from(v)
}

pub(crate) fn percentile_us(sorted: &[u64], p: u64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).clamp(1, n);
    let idx = usize::try_from(rank - 1).unwrap_or(0);
    sorted[idx] as f64 / 1000.0
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if !n.is_multiple_of(2) => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One path's figures at one size.
#[derive(Default)]
pub(crate) struct Figures {
    mb_s_rounds: Vec<f64>,
    buffers_s_rounds: Vec<f64>,
    pub(crate) loaded_ns: Vec<u64>,
    pub(crate) idle_ns: Vec<u64>,
}

impl Figures {
    pub(crate) fn add_throughput(&mut self, run: Run) {
        let secs = run.elapsed.as_secs_f64();
        self.mb_s_rounds.push(run.bytes as f64 / secs / 1e6);
        self.buffers_s_rounds.push(run.buffers as f64 / secs);
        self.loaded_ns.extend(run.latencies_ns);
    }

    pub(crate) fn add_latency(&mut self, run: Run) {
        self.idle_ns.extend(run.latencies_ns);
    }

    pub(crate) fn finish(&mut self) {
        self.loaded_ns.sort_unstable();
        self.idle_ns.sort_unstable();
    }

    pub(crate) fn mb_s(&self) -> f64 {
        median(&self.mb_s_rounds)
    }

    pub(crate) fn buffers_s(&self) -> f64 {
        median(&self.buffers_s_rounds)
    }

    /// Slowest and fastest round, `lo–hi`.
    pub(crate) fn mb_s_range(&self) -> String {
        let lo = self
            .mb_s_rounds
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let hi = self.mb_s_rounds.iter().copied().fold(0.0, f64::max);
        format!("{lo:.0}–{hi:.0}")
    }

    /// The figures as JSON (MB/s and microseconds to 0.1, buffers/s whole).
    pub(crate) fn json(&self) -> Value {
        let rounds: Vec<Value> = self.mb_s_rounds.iter().map(|&v| round(v, 1)).collect();
        json!({
            "mb_s": round(self.mb_s(), 1),
            "buffers_s": round(self.buffers_s(), 0),
            "mb_s_rounds": rounds,
            "p50_us": round(percentile_us(&self.idle_ns, 50), 1),
            "p99_us": round(percentile_us(&self.idle_ns, 99), 1),
            "latency_samples": self.idle_ns.len(),
            "loaded_p50_us": round(percentile_us(&self.loaded_ns, 50), 1),
            "loaded_p99_us": round(percentile_us(&self.loaded_ns, 99), 1),
        })
    }
}

//! The report: every figure as one JSON object (the last line of standard
//! output, and `docs/bench/latest.json` after a full run), and the ratios
//! between the baseline and the redirection of the same run. The tables are
//! rendered from that JSON ([`super::render`]).

use serde_json::{Value, json};

use super::baseline::Baseline;
use super::calls::Calls;
use super::redirect::Redirect;
use super::scale::ScalePoint;
use super::viewer::{self, ViewerBench};

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    /// Smoke run (short clips, small N; figures mean little).
    pub(crate) smoke: bool,
    /// The machine, one line.
    pub(crate) machine: String,
    /// Baselines, one per clip.
    pub(crate) baselines: Vec<Baseline>,
    /// Redirections, one per clip and uplink.
    pub(crate) redirects: Vec<Redirect>,
    /// The scale points.
    pub(crate) scale: Vec<ScalePoint>,
    /// The call figures.
    pub(crate) calls: Calls,
    /// The viewer against the headless engine (`None`: not measured).
    pub(crate) viewer: Option<ViewerBench>,
    /// The data-path bench's own JSON line.
    pub(crate) datapath_json: String,
    /// Seconds the whole bench took.
    pub(crate) elapsed_s: f64,
}

/// A number as JSON, to 6 decimals (a whole number without them;
/// non-finite values as strings: "inf", NaN as null).
pub(crate) fn num(v: f64) -> Value {
    if v.is_nan() {
        return Value::Null;
    }
    if v.is_infinite() {
        return Value::from(if v > 0.0 { "inf" } else { "-inf" });
    }
    let rounded = (v * 1e6).round() / 1e6;
    if rounded.fract() == 0.0 && rounded.abs() < 9e15 {
        // Exact: a whole number below 2^53 converts without loss.
        #[allow(clippy::cast_possible_truncation)]
        return Value::from(rounded as i64);
    }
    Value::from(rounded)
}

/// One comparison of a baseline re-encode with a redirection of one clip.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ratio {
    /// Clip.
    pub(crate) clip: &'static str,
    /// Baseline codec (`mjpeg`, `vp8`, `opus`).
    pub(crate) baseline: &'static str,
    /// Uplink (`unix`, `spice`).
    pub(crate) uplink: &'static str,
    /// Network bytes, baseline / redirect.
    pub(crate) bytes: f64,
    /// Host CPU, baseline re-encode only / redirect (daemon, and QEMU's
    /// relay in QEMU's session).
    pub(crate) cpu_reencode: f64,
    /// Host CPU, baseline decode + re-encode / redirect (as above).
    pub(crate) cpu_total: f64,
    /// Streams one host core serves: baseline re-encode only.
    pub(crate) streams_per_core_reencode: f64,
    /// Streams one host core serves: baseline decode + re-encode.
    pub(crate) streams_per_core_total: f64,
    /// Streams one host core serves: redirection (daemon, and QEMU's relay
    /// in QEMU's session).
    pub(crate) streams_per_core_redirect: f64,
}

impl Report {
    /// The baseline/redirect comparisons, one per clip x codec x uplink.
    pub(crate) fn ratios(&self) -> Vec<Ratio> {
        let mut out = Vec::new();
        for b in &self.baselines {
            for re in &b.reencodes {
                let total = re.cpu_s / b.seconds;
                let reenc = (re.cpu_s - b.decode_cpu_s).max(0.0) / b.seconds;
                let bytes = re.bytes as f64 / b.seconds;
                for r in self.redirects.iter().filter(|r| r.clip == b.clip) {
                    let d_cpu = r.host_cpu_s() / r.seconds;
                    let d_bytes = r.wire_bytes as f64 / r.seconds;
                    out.push(Ratio {
                        clip: b.clip,
                        baseline: re.codec,
                        uplink: r.uplink,
                        bytes: bytes / d_bytes,
                        cpu_reencode: reenc / d_cpu,
                        cpu_total: total / d_cpu,
                        streams_per_core_reencode: 1.0 / reenc,
                        streams_per_core_total: 1.0 / total,
                        streams_per_core_redirect: 1.0 / d_cpu,
                    });
                }
            }
        }
        out
    }

    /// Every figure as one JSON object on one line (keys in the order
    /// written here).
    pub(crate) fn json(&self) -> String {
        let baseline: Vec<Value> = self
            .baselines
            .iter()
            .flat_map(|b| b.reencodes.iter().map(move |re| (b, re)))
            .map(|(b, re)| {
                let (psnr, ssim, frames) = re.quality.map_or((Value::Null, Value::Null, 0), |q| {
                    (num(q.psnr_db), num(q.ssim), q.frames)
                });
                json!({
                    "clip": b.clip,
                    "codec": re.codec,
                    "seconds": num(b.seconds),
                    "decode_cpu_s_per_s": num(b.decode_cpu_s / b.seconds),
                    "reencode_cpu_s_per_s": num((re.cpu_s - b.decode_cpu_s).max(0.0) / b.seconds),
                    "decode_reencode_cpu_s_per_s": num(re.cpu_s / b.seconds),
                    "bytes_per_s": num(re.bytes as f64 / b.seconds),
                    "psnr_db": psnr,
                    "ssim": ssim,
                    "quality_frames": frames,
                })
            })
            .collect();
        let redirect: Vec<Value> = self.redirects.iter().map(redirect_json).collect();
        let ratios: Vec<Value> = self.ratios().iter().map(Ratio::json).collect();
        let scale: Vec<Value> = self
            .scale
            .iter()
            .map(|p| {
                json!({
                    "streams": p.streams,
                    "seconds": num(p.seconds),
                    "frames": p.frames,
                    "daemon_cpu_s_per_s": num(p.daemon_cpu_s / p.seconds),
                    "daemon_cpu_s_per_s_per_stream": num(p.cpu_per_stream()),
                    "rss_idle_bytes": p.rss_idle_bytes,
                    "rss_bytes": p.rss_bytes,
                    "rss_bytes_per_stream": num(p.rss_per_stream()),
                    "latency_p50_us": p.p50_us,
                    "latency_p99_us": p.p99_us,
                })
            })
            .collect();
        let c = &self.calls;
        // The data-path bench's last line, if it is a JSON object (a run
        // that failed or printed something else leaves `null`, so the
        // report stays valid JSON whatever it printed).
        let datapath = match serde_json::from_str::<Value>(&self.datapath_json) {
            Ok(v) if v.is_object() => v,
            _ => Value::Null,
        };
        json!({
            "bench": "redirection-vs-reencode",
            "smoke": self.smoke,
            "machine": self.machine,
            "elapsed_s": num(self.elapsed_s),
            "baseline": baseline,
            "redirect": redirect,
            "ratios": ratios,
            "scale": scale,
            "calls": {
                "bytes_derived": true,
                "through_vm_bytes_per_s": num(c.through_vm_bytes_per_s),
                "offload_bytes_per_s": num(c.offload_bytes_per_s),
                "through_vm_cpu_s_per_s": num(c.through_vm_cpu_s_per_s),
                "offload_cpu_s_per_s": num(c.offload_cpu_s_per_s),
            },
            "viewer": self.viewer.as_ref().map(viewer_json),
            "datapath": datapath,
        })
        .to_string()
    }
}

/// One redirection in the report: rates per media second; bit-exact
/// output has infinite PSNR and SSIM 1.
fn redirect_json(r: &Redirect) -> Value {
    let per_s = |v: f64| num(v / r.seconds);
    let (psnr, ssim) = if r.bit_exact {
        (num(f64::INFINITY), num(1.0))
    } else {
        (Value::Null, Value::Null)
    };
    json!({
        "clip": r.clip,
        "uplink": r.uplink,
        "seconds": num(r.seconds),
        "daemon_cpu_s_per_s": per_s(r.daemon_cpu_s),
        "player_cpu_s_per_s": per_s(r.player_cpu_s),
        "wire_bytes_per_s": per_s(r.wire_bytes as f64),
        "payload_bytes_per_s": per_s(r.payload_bytes as f64),
        "daemon_write_bytes_per_s": per_s(r.daemon_wchar as f64),
        "payload_bytes_copied": r.payload_bytes_copied,
        "qemu_cpu_s_per_s": per_s(r.qemu_cpu_s),
        "qemu_write_bytes_per_s": per_s(r.qemu_wchar as f64),
        "bit_exact": r.bit_exact,
        "psnr_db": psnr,
        "ssim": ssim,
    })
}

/// The viewer section in the report: CPU per media second and their
/// ratio, and the geometry moves' times (each including a screenshot).
fn viewer_json(v: &ViewerBench) -> Value {
    let headless = v.headless_cpu_s / v.seconds;
    let viewer = v.viewer_cpu_s / v.seconds;
    json!({
        "clip": v.clip,
        "seconds": num(v.seconds),
        "desktop": format!("{}x{}", v.desktop.0, v.desktop.1),
        "headless_cpu_s_per_s": num(headless),
        "viewer_cpu_s_per_s": num(viewer),
        "ratio": num(viewer / headless),
        "latency_moves": v.latencies_ms.len(),
        "latency_ms_median": num(viewer::median(&v.latencies_ms)),
        "latency_ms_max": num(v.latencies_ms.iter().copied().fold(f64::NAN, f64::max)),
        "latency_ms": v.latencies_ms.iter().map(|&ms| num(ms)).collect::<Vec<Value>>(),
        "screenshot_ms_median": num(viewer::median(&v.screenshots_ms)),
    })
}

impl Ratio {
    /// The comparison in the report.
    fn json(&self) -> Value {
        json!({
            "clip": self.clip,
            "baseline": self.baseline,
            "uplink": self.uplink,
            "bytes": num(self.bytes),
            "cpu_reencode": num(self.cpu_reencode),
            "cpu_decode_reencode": num(self.cpu_total),
            "streams_per_core_baseline_reencode": num(self.streams_per_core_reencode),
            "streams_per_core_baseline_decode_reencode": num(self.streams_per_core_total),
            "streams_per_core_redirect": num(self.streams_per_core_redirect),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::baseline::Reencode;
    use crate::bench::quality::Quality;

    fn sample() -> Report {
        Report {
            smoke: true,
            machine: "cpu \"x\"".into(),
            baselines: vec![Baseline {
                clip: "c",
                seconds: 2.0,
                decode_cpu_s: 1.0,
                reencodes: vec![Reencode {
                    codec: "mjpeg",
                    cpu_s: 3.0,
                    bytes: 2_000_000,
                    quality: Some(Quality {
                        frames: 6,
                        psnr_db: 40.0,
                        ssim: 0.98,
                    }),
                }],
            }],
            redirects: vec![Redirect {
                clip: "c",
                uplink: "unix",
                seconds: 2.0,
                daemon_cpu_s: 0.01,
                wire_bytes: 200_000,
                bit_exact: true,
                ..Redirect::default()
            }],
            scale: vec![],
            calls: Calls::default(),
            viewer: Some(ViewerBench {
                clip: "c",
                seconds: 2.0,
                desktop: (720, 400),
                headless_cpu_s: 0.5,
                viewer_cpu_s: 1.5,
                latencies_ms: vec![40.0, 80.0, 60.0],
                screenshots_ms: vec![10.0],
            }),
            datapath_json: "{\"x\":1}".into(),
            elapsed_s: 5.0,
        }
    }

    #[test]
    fn ratios_are_computed_within_the_run() {
        let r = &sample().ratios()[0];
        assert!((r.bytes - 10.0).abs() < 1e-9);
        // Re-encode only: (3 - 1) / 2 = 1 s/s against 0.005 s/s.
        assert!((r.cpu_reencode - 200.0).abs() < 1e-6);
        assert!((r.cpu_total - 300.0).abs() < 1e-6);
        assert!((r.streams_per_core_redirect - 200.0).abs() < 1e-6);
    }

    #[test]
    fn json_is_one_line_with_every_part() {
        let j = sample().json();
        assert!(!j.contains('\n'));
        for key in [
            "\"baseline\":[",
            "\"redirect\":[",
            "\"ratios\":[",
            "\"scale\":[",
            "\"calls\":{",
            "\"datapath\":{\"x\":1}",
            "\"viewer\":{\"clip\":\"c\"",
            "\"ratio\":3,",
            "\"latency_ms_median\":60,\"latency_ms_max\":80,",
            "\"psnr_db\":\"inf\"",
            "\"machine\":\"cpu \\\"x\\\"\"",
        ] {
            assert!(j.contains(key), "{key} in {j}");
        }
        assert!(j.starts_with('{') && j.ends_with('}'));
        assert_eq!(num(1.5).to_string(), "1.5");
        assert_eq!(num(2.0).to_string(), "2");
        assert_eq!(num(0.0).to_string(), "0");
        assert_eq!(num(-0.000_000_1).to_string(), "0");
        assert_eq!(num(1.0 / 3.0).to_string(), "0.333333");
        assert_eq!(num(f64::NAN), Value::Null);
        let parsed: serde_json::Value = serde_json::from_str(&j).unwrap();
        let tables = crate::bench::render::tables(&parsed).unwrap();
        assert!(tables.contains("| c | mjpeg |"), "{tables}");
    }
}

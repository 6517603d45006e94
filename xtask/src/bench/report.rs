//! The report: every figure as one JSON object (the last line of standard
//! output, and `docs/bench/latest.json` after a full run), and the ratios
//! between the baseline and the redirection of the same run. The tables are
//! rendered from that JSON ([`super::render`]).

use std::fmt::Write as _;

use super::baseline::Baseline;
use super::calls::Calls;
use super::redirect::Redirect;
use super::scale::ScalePoint;

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
    /// The data-path bench's own JSON line.
    pub(crate) datapath_json: String,
    /// Seconds the whole bench took.
    pub(crate) elapsed_s: f64,
}

/// A number as JSON (non-finite values as strings: "inf").
pub(crate) fn num(v: f64) -> String {
    if v.is_finite() {
        let s = format!("{v:.6}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s.is_empty() || s == "-" {
            "0".into()
        } else {
            s.into()
        }
    } else if v.is_nan() {
        "null".into()
    } else if v > 0.0 {
        "\"inf\"".into()
    } else {
        "\"-inf\"".into()
    }
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
    /// Host CPU, baseline re-encode only / redirect daemon.
    pub(crate) cpu_reencode: f64,
    /// Host CPU, baseline decode + re-encode / redirect daemon.
    pub(crate) cpu_total: f64,
    /// Streams one host core serves: baseline re-encode only.
    pub(crate) streams_per_core_reencode: f64,
    /// Streams one host core serves: baseline decode + re-encode.
    pub(crate) streams_per_core_total: f64,
    /// Streams one host core serves: redirection (daemon).
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
                    let d_cpu = r.daemon_cpu_s / r.seconds;
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

    /// Every figure as one JSON object on one line.
    pub(crate) fn json(&self) -> String {
        let mut j = String::new();
        let _ = write!(
            j,
            "{{\"bench\":\"redirection-vs-reencode\",\"smoke\":{},\"machine\":{},\"elapsed_s\":{}",
            self.smoke,
            json_string(&self.machine),
            num(self.elapsed_s)
        );
        j.push_str(",\"baseline\":[");
        let mut first = true;
        for b in &self.baselines {
            for re in &b.reencodes {
                if !first {
                    j.push(',');
                }
                first = false;
                let (psnr, ssim, frames) =
                    re.quality.map_or(("null".into(), "null".into(), 0), |q| {
                        (num(q.psnr_db), num(q.ssim), q.frames)
                    });
                let _ = write!(
                    j,
                    "{{\"clip\":{},\"codec\":{},\"seconds\":{},\"decode_cpu_s_per_s\":{},\
                     \"reencode_cpu_s_per_s\":{},\"decode_reencode_cpu_s_per_s\":{},\
                     \"bytes_per_s\":{},\"psnr_db\":{psnr},\"ssim\":{ssim},\"quality_frames\":{frames}}}",
                    json_string(b.clip),
                    json_string(re.codec),
                    num(b.seconds),
                    num(b.decode_cpu_s / b.seconds),
                    num((re.cpu_s - b.decode_cpu_s).max(0.0) / b.seconds),
                    num(re.cpu_s / b.seconds),
                    num(re.bytes as f64 / b.seconds)
                );
            }
        }
        j.push_str("],\"redirect\":[");
        for (i, r) in self.redirects.iter().enumerate() {
            if i > 0 {
                j.push(',');
            }
            let _ = write!(
                j,
                "{{\"clip\":{},\"uplink\":{},\"seconds\":{},\"daemon_cpu_s_per_s\":{},\
                 \"player_cpu_s_per_s\":{},\"wire_bytes_per_s\":{},\"payload_bytes_per_s\":{},\
                 \"daemon_write_bytes_per_s\":{},\"payload_bytes_copied\":{},\"bit_exact\":{},\
                 \"psnr_db\":{},\"ssim\":{}}}",
                json_string(r.clip),
                json_string(r.uplink),
                num(r.seconds),
                num(r.daemon_cpu_s / r.seconds),
                num(r.player_cpu_s / r.seconds),
                num(r.wire_bytes as f64 / r.seconds),
                num(r.payload_bytes as f64 / r.seconds),
                num(r.daemon_wchar as f64 / r.seconds),
                r.payload_bytes_copied,
                r.bit_exact,
                if r.bit_exact {
                    num(f64::INFINITY)
                } else {
                    "null".into()
                },
                if r.bit_exact { num(1.0) } else { "null".into() },
            );
        }
        j.push_str("],\"ratios\":[");
        for (i, r) in self.ratios().iter().enumerate() {
            if i > 0 {
                j.push(',');
            }
            let _ = write!(
                j,
                "{{\"clip\":{},\"baseline\":{},\"uplink\":{},\"bytes\":{},\"cpu_reencode\":{},\
                 \"cpu_decode_reencode\":{},\"streams_per_core_baseline_reencode\":{},\
                 \"streams_per_core_baseline_decode_reencode\":{},\"streams_per_core_redirect\":{}}}",
                json_string(r.clip),
                json_string(r.baseline),
                json_string(r.uplink),
                num(r.bytes),
                num(r.cpu_reencode),
                num(r.cpu_total),
                num(r.streams_per_core_reencode),
                num(r.streams_per_core_total),
                num(r.streams_per_core_redirect)
            );
        }
        j.push_str("],\"scale\":[");
        for (i, p) in self.scale.iter().enumerate() {
            if i > 0 {
                j.push(',');
            }
            let _ = write!(
                j,
                "{{\"streams\":{},\"seconds\":{},\"frames\":{},\"daemon_cpu_s_per_s\":{},\
                 \"daemon_cpu_s_per_s_per_stream\":{},\"rss_idle_bytes\":{},\"rss_bytes\":{},\
                 \"rss_bytes_per_stream\":{},\"latency_p50_us\":{},\"latency_p99_us\":{}}}",
                p.streams,
                num(p.seconds),
                p.frames,
                num(p.daemon_cpu_s / p.seconds),
                num(p.cpu_per_stream()),
                p.rss_idle_bytes,
                p.rss_bytes,
                num(p.rss_per_stream()),
                p.p50_us,
                p.p99_us
            );
        }
        let c = &self.calls;
        let _ = write!(
            j,
            "],\"calls\":{{\"bytes_derived\":true,\"through_vm_bytes_per_s\":{},\
             \"offload_bytes_per_s\":{},\"through_vm_cpu_s_per_s\":{},\"offload_cpu_s_per_s\":{}}}",
            num(c.through_vm_bytes_per_s),
            num(c.offload_bytes_per_s),
            num(c.through_vm_cpu_s_per_s),
            num(c.offload_cpu_s_per_s)
        );
        // The data-path bench's last line, if it is a JSON object (a run
        // that failed or printed something else leaves `null`, so the
        // report stays valid JSON whatever it printed).
        let datapath = match serde_json::from_str::<serde_json::Value>(&self.datapath_json) {
            Ok(v) if v.is_object() => self.datapath_json.trim(),
            _ => "null",
        };
        let _ = write!(j, ",\"datapath\":{datapath}}}");
        j
    }
}

/// `text` as a JSON string literal.
pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
            "\"psnr_db\":\"inf\"",
            "\"machine\":\"cpu \\\"x\\\"\"",
        ] {
            assert!(j.contains(key), "{key} in {j}");
        }
        assert!(j.starts_with('{') && j.ends_with('}'));
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(0.0), "0");
        let parsed: serde_json::Value = serde_json::from_str(&j).unwrap();
        let tables = crate::bench::render::tables(&parsed).unwrap();
        assert!(tables.contains("| c | mjpeg |"), "{tables}");
    }
}

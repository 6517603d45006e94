//! The report: a Markdown table per part, and every figure as one JSON
//! object (the last line of standard output).

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

    /// The Markdown tables.
    pub(crate) fn tables(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "Baseline (server-side rendering, as Spice without redirection), per media second:\n"
        );
        let _ = writeln!(
            t,
            "| clip | re-encode | guest decode CPU s/s | re-encode CPU s/s | decode + re-encode CPU s/s | bytes/s | PSNR dB | SSIM |"
        );
        let _ = writeln!(t, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for b in &self.baselines {
            for re in &b.reencodes {
                let (psnr, ssim) = re.quality.map_or(("-".into(), "-".into()), |q| {
                    (format!("{:.2}", q.psnr_db), format!("{:.4}", q.ssim))
                });
                let _ = writeln!(
                    t,
                    "| {} | {} | {:.4} | {:.4} | {:.4} | {:.0} | {psnr} | {ssim} |",
                    b.clip,
                    re.codec,
                    b.decode_cpu_s / b.seconds,
                    (re.cpu_s - b.decode_cpu_s).max(0.0) / b.seconds,
                    re.cpu_s / b.seconds,
                    re.bytes as f64 / b.seconds
                );
            }
        }
        let _ = writeln!(t, "\nRedirection through the daemon, per media second:\n");
        let _ = writeln!(
            t,
            "| clip | uplink | daemon (host) CPU s/s | player (guest) CPU s/s | wire bytes/s | of which payload | daemon write() bytes/s | copied payload bytes | bit-exact (PSNR inf, SSIM 1) |"
        );
        let _ = writeln!(
            t,
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
        );
        for r in &self.redirects {
            let _ = writeln!(
                t,
                "| {} | {} | {:.5} | {:.5} | {:.0} | {:.0} | {:.0} | {} | {} |",
                r.clip,
                r.uplink,
                r.daemon_cpu_s / r.seconds,
                r.player_cpu_s / r.seconds,
                r.wire_bytes as f64 / r.seconds,
                r.payload_bytes as f64 / r.seconds,
                r.daemon_wchar as f64 / r.seconds,
                r.payload_bytes_copied,
                if r.bit_exact { "yes" } else { "NO" }
            );
        }
        let _ = writeln!(
            t,
            "\nRatios (baseline / redirection) and streams per host core:\n"
        );
        let _ = writeln!(
            t,
            "| clip | baseline | uplink | bytes | CPU (re-encode only) | CPU (decode + re-encode) | streams/core baseline (re-encode / decode + re-encode) | streams/core redirect |"
        );
        let _ = writeln!(t, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |");
        for r in self.ratios() {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.1} / {:.1} | {:.0} |",
                r.clip,
                r.baseline,
                r.uplink,
                r.bytes,
                r.cpu_reencode,
                r.cpu_total,
                r.streams_per_core_reencode,
                r.streams_per_core_total,
                r.streams_per_core_redirect
            );
        }
        let _ = writeln!(
            t,
            "\nScale: N concurrent 1080p30 streams (5 Mbit/s each) through one daemon:\n"
        );
        let _ = writeln!(
            t,
            "| streams | daemon CPU s/s (all) | per stream | RSS idle MiB | RSS peak MiB | RSS per stream KiB | latency p50 µs | p99 µs |"
        );
        let _ = writeln!(
            t,
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for p in &self.scale {
            let _ = writeln!(
                t,
                "| {} | {:.4} | {:.5} | {:.1} | {:.1} | {:.0} | {} | {} |",
                p.streams,
                p.daemon_cpu_s / p.seconds,
                p.cpu_per_stream(),
                p.rss_idle_bytes as f64 / 1048576.0,
                p.rss_bytes as f64 / 1048576.0,
                p.rss_per_stream() / 1024.0,
                p.p50_us,
                p.p99_us
            );
        }
        let c = &self.calls;
        let _ = writeln!(
            t,
            "\nCalls, per call second (bytes derived from codec rates; CPU measured):\n"
        );
        let _ = writeln!(t, "| | server bytes/s | server CPU s/s |");
        let _ = writeln!(t, "| --- | ---: | ---: |");
        let _ = writeln!(
            t,
            "| media through the VM | {:.0} | {:.4} |",
            c.through_vm_bytes_per_s, c.through_vm_cpu_s_per_s
        );
        let _ = writeln!(
            t,
            "| call-media offload | {:.0} | {:.4} |",
            c.offload_bytes_per_s, c.offload_cpu_s_per_s
        );
        t
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
        let datapath = if self.datapath_json.trim_start().starts_with('{') {
            self.datapath_json.trim()
        } else {
            "null"
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
        assert!(sample().tables().contains("| c | mjpeg |"));
    }
}

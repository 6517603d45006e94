//! The SVG chart of the report (plotters, pure Rust): host CPU per stream
//! and bytes per second, the baseline's re-encodes against redirection,
//! per clip, on log scales (the two differ by orders of magnitude).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;

use super::report::Report;

/// One bar group (a clip) of one panel: a value per series (None: the
/// series does not apply to the clip).
type Groups = Vec<(String, Vec<Option<f64>>)>;

/// The series of both panels, in drawing order.
const SERIES: [(&str, RGBColor); 4] = [
    (
        "baseline MJPEG / Opus: decode + re-encode",
        RGBColor(214, 39, 40),
    ),
    ("baseline VP8: decode + re-encode", RGBColor(255, 127, 14)),
    ("redirect, Unix socket: daemon", RGBColor(31, 119, 180)),
    ("redirect, Spice: daemon", RGBColor(44, 160, 44)),
];

/// The two panels' data from the report: (CPU s/s, bytes/s).
pub(crate) fn data(report: &Report) -> (Groups, Groups) {
    let (mut cpu, mut bytes) = (Vec::new(), Vec::new());
    for b in &report.baselines {
        let (mut c, mut y) = (vec![None; 4], vec![None; 4]);
        for re in &b.reencodes {
            let slot = if re.codec == "vp8" { 1 } else { 0 };
            c[slot] = Some(re.cpu_s / b.seconds);
            y[slot] = Some(re.bytes as f64 / b.seconds);
        }
        for r in report.redirects.iter().filter(|r| r.clip == b.clip) {
            let slot = if r.uplink == "spice" { 3 } else { 2 };
            c[slot] = Some(r.daemon_cpu_s / r.seconds);
            y[slot] = Some(r.wire_bytes as f64 / r.seconds);
        }
        cpu.push((b.clip.to_owned(), c));
        bytes.push((b.clip.to_owned(), y));
    }
    (cpu, bytes)
}

/// Powers of ten around the values (for the log axis).
fn range(groups: &Groups) -> (f64, f64) {
    let values = groups.iter().flat_map(|(_, v)| v.iter().flatten().copied());
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (1e-3, 1.0);
    }
    (
        10f64.powf(lo.log10().floor()),
        10f64.powf(hi.log10().ceil() + 0.3),
    )
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    groups: &Groups,
) -> Result<()> {
    let (lo, hi) = range(groups);
    let n = groups.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n, (lo..hi).log_scale())
        .map_err(|e| anyhow!("chart: {e}"))?;
    let names: Vec<String> = groups.iter().map(|(name, _)| name.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&|x| {
            // A group's label sits at its centre, i + 0.5.
            names
                .iter()
                .enumerate()
                .find(|(i, _)| (x - (*i as f64 + 0.5)).abs() < 0.01)
                .map_or_else(String::new, |(_, name)| name.clone())
        })
        .y_desc(y_desc)
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .draw()
        .map_err(|e| anyhow!("chart mesh: {e}"))?;
    let width = 0.8 / SERIES.len() as f64;
    for (s, (label, color)) in SERIES.iter().enumerate() {
        let bars: Vec<Rectangle<(f64, f64)>> = groups
            .iter()
            .enumerate()
            .filter_map(|(g, (_, values))| {
                let v = values.get(s).copied().flatten()?;
                let x0 = g as f64 + 0.1 + s as f64 * width;
                Some(Rectangle::new(
                    [(x0, lo), (x0 + width * 0.9, v.max(lo))],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| anyhow!("chart bars: {e}"))?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("chart legend: {e}"))?;
    Ok(())
}

/// Writes the chart to `path` (an SVG file).
pub(crate) fn write(report: &Report, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let (cpu, bytes) = data(report);
    {
        let root = SVGBackend::new(path, (1400, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("chart: {e}"))?;
        let (left, right) = root.split_horizontally(700);
        panel(
            &left,
            "Host CPU per stream (lower is better)",
            "CPU seconds per media second",
            &cpu,
        )?;
        panel(
            &right,
            "Network per stream (lower is better)",
            "bytes per media second",
            &bytes,
        )?;
        root.present()
            .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::baseline::{Baseline, Reencode};
    use crate::bench::redirect::Redirect;

    #[test]
    fn writes_an_svg_with_both_panels() {
        let report = Report {
            baselines: vec![Baseline {
                clip: "h264-1080p30",
                seconds: 2.0,
                decode_cpu_s: 1.0,
                reencodes: vec![
                    Reencode {
                        codec: "mjpeg",
                        cpu_s: 3.0,
                        bytes: 4_000_000,
                        quality: None,
                    },
                    Reencode {
                        codec: "vp8",
                        cpu_s: 4.0,
                        bytes: 2_500_000,
                        quality: None,
                    },
                ],
            }],
            redirects: vec![Redirect {
                clip: "h264-1080p30",
                uplink: "spice",
                seconds: 2.0,
                daemon_cpu_s: 0.02,
                wire_bytes: 1_250_000,
                ..Redirect::default()
            }],
            ..Report::default()
        };
        let (cpu, bytes) = data(&report);
        assert_eq!(cpu[0].1, vec![Some(1.5), Some(2.0), None, Some(0.01)]);
        assert_eq!(bytes[0].1[3], Some(625_000.0));
        let dir = crate::tempdir::new("xtask-chart").unwrap();
        let path = dir.path().join("c.svg");
        write(&report, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") || svg.contains("<svg"));
        assert!(svg.contains("Host CPU per stream") && svg.contains("h264-1080p30"));
    }
}

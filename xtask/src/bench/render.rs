//! The bench's figures as Markdown, rendered from its JSON report.
//!
//! Why from the JSON and not from the in-memory report: the JSON is what a
//! run leaves behind (`docs/bench/latest.json` for a full run), so the
//! tables a run prints, the results block of `docs/bench.md` and any later
//! re-rendering all come from the same bytes, and no figure in the docs is
//! ever copied by hand. [`tables`] gives the redirection tables (printed by
//! every run), [`block`] the whole generated block of `docs/bench.md`
//! (machine, chart, those tables and the data-path tables), and [`splice`]
//! puts a block between the [`BEGIN`] and [`END`] markers of a document.

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The line that opens the generated block in `docs/bench.md`.
pub(crate) const BEGIN: &str = "<!-- bench:begin -->";
/// The line that closes it.
pub(crate) const END: &str = "<!-- bench:end -->";

/// A member of a JSON object, or an error naming it.
fn get<'a>(v: &'a Value, key: &str) -> Result<&'a Value> {
    v.get(key)
        .with_context(|| format!("bench JSON: no `{key}` in {}", brief(v)))
}

/// A number member (the strings `"inf"`/`"-inf"` are infinities, and
/// `null`, how the report writes a NaN such as 0/0, is NaN: the tables show
/// `NaN` as the in-memory report's tables did).
fn num(v: &Value, key: &str) -> Result<f64> {
    let x = get(v, key)?;
    match x {
        Value::Number(n) => n.as_f64(),
        Value::Null => Some(f64::NAN),
        Value::String(s) if s == "inf" => Some(f64::INFINITY),
        Value::String(s) if s == "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
    .with_context(|| format!("bench JSON: `{key}` is not a number: {x}"))
}

/// A string member.
fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    get(v, key)?
        .as_str()
        .with_context(|| format!("bench JSON: `{key}` is not a string"))
}

/// An array member.
fn list<'a>(v: &'a Value, key: &str) -> Result<&'a [Value]> {
    get(v, key)?
        .as_array()
        .map(Vec::as_slice)
        .with_context(|| format!("bench JSON: `{key}` is not an array"))
}

/// The start of a JSON value, for error messages.
fn brief(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

/// A number with `digits` decimals, or `-` when absent (null).
fn opt(v: &Value, key: &str, digits: usize) -> Result<String> {
    if v.get(key).is_none_or(Value::is_null) {
        Ok("-".into())
    } else {
        Ok(format!("{:.digits$}", num(v, key)?))
    }
}

/// The redirection bench's tables (baseline, redirection, ratios, scale,
/// calls, viewer), as every run prints them.
pub(crate) fn tables(report: &Value) -> Result<String> {
    let mut t = String::new();
    t.push_str(
        "Baseline (server-side rendering, as Spice without redirection), per media second:\n\n",
    );
    t.push_str(
        "| clip | re-encode | guest decode CPU s/s | re-encode CPU s/s | decode + re-encode CPU s/s | bytes/s | PSNR dB | SSIM |\n",
    );
    t.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for b in list(report, "baseline")? {
        let _ = writeln!(
            t,
            "| {} | {} | {:.4} | {:.4} | {:.4} | {:.0} | {} | {} |",
            text(b, "clip")?,
            text(b, "codec")?,
            num(b, "decode_cpu_s_per_s")?,
            num(b, "reencode_cpu_s_per_s")?,
            num(b, "decode_reencode_cpu_s_per_s")?,
            num(b, "bytes_per_s")?,
            opt(b, "psnr_db", 2)?,
            opt(b, "ssim", 4)?,
        );
    }
    t.push_str("\nRedirection through the daemon, per media second (QEMU: its relay and Spice server on the `qemu-spice` path, beyond its idle rate):\n\n");
    t.push_str(
        "| clip | uplink | daemon (host) CPU s/s | QEMU (host) CPU s/s | player (guest) CPU s/s | wire bytes/s | of which payload | daemon write() bytes/s | QEMU write() bytes/s | copied payload bytes | bit-exact (PSNR inf, SSIM 1) |\n",
    );
    t.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    // Reports from before the QEMU-session path have no QEMU figures.
    let qemu = |r: &Value, key: &str, digits: usize| match r.get(key).and_then(Value::as_f64) {
        Some(v) if text(r, "uplink").is_ok_and(|u| u == "qemu-spice") => format!("{v:.digits$}"),
        _ => "-".to_owned(),
    };
    for r in list(report, "redirect")? {
        let bit_exact = get(r, "bit_exact")?.as_bool() == Some(true);
        let _ = writeln!(
            t,
            "| {} | {} | {:.5} | {} | {:.5} | {:.0} | {:.0} | {:.0} | {} | {:.0} | {} |",
            text(r, "clip")?,
            text(r, "uplink")?,
            num(r, "daemon_cpu_s_per_s")?,
            qemu(r, "qemu_cpu_s_per_s", 5),
            num(r, "player_cpu_s_per_s")?,
            num(r, "wire_bytes_per_s")?,
            num(r, "payload_bytes_per_s")?,
            num(r, "daemon_write_bytes_per_s")?,
            qemu(r, "qemu_write_bytes_per_s", 0),
            num(r, "payload_bytes_copied")?,
            if bit_exact { "yes" } else { "NO" }
        );
    }
    t.push_str(&session_ratios(report)?);
    t.push_str("\nRatios (baseline / redirection) and streams per host core:\n\n");
    t.push_str(
        "| clip | baseline | uplink | bytes | CPU (re-encode only) | CPU (decode + re-encode) | streams/core baseline (re-encode / decode + re-encode) | streams/core redirect |\n",
    );
    t.push_str("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    for r in list(report, "ratios")? {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.1} / {:.1} | {:.0} |",
            text(r, "clip")?,
            text(r, "baseline")?,
            text(r, "uplink")?,
            num(r, "bytes")?,
            num(r, "cpu_reencode")?,
            num(r, "cpu_decode_reencode")?,
            num(r, "streams_per_core_baseline_reencode")?,
            num(r, "streams_per_core_baseline_decode_reencode")?,
            num(r, "streams_per_core_redirect")?,
        );
    }
    t.push_str("\nScale: N concurrent 1080p30 streams (5 Mbit/s each) through one daemon:\n\n");
    t.push_str(
        "| streams | daemon CPU s/s (all) | per stream | RSS idle MiB | RSS peak MiB | RSS per stream KiB | latency p50 µs | p99 µs |\n",
    );
    t.push_str("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for p in list(report, "scale")? {
        let _ = writeln!(
            t,
            "| {:.0} | {:.4} | {:.5} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} |",
            num(p, "streams")?,
            num(p, "daemon_cpu_s_per_s")?,
            num(p, "daemon_cpu_s_per_s_per_stream")?,
            num(p, "rss_idle_bytes")? / 1048576.0,
            num(p, "rss_bytes")? / 1048576.0,
            num(p, "rss_bytes_per_stream")? / 1024.0,
            num(p, "latency_p50_us")?,
            num(p, "latency_p99_us")?,
        );
    }
    let c = get(report, "calls")?;
    t.push_str("\nCalls, per call second (bytes derived from codec rates; CPU measured):\n\n");
    t.push_str("| | server bytes/s | server CPU s/s |\n| --- | ---: | ---: |\n");
    let _ = writeln!(
        t,
        "| media through the VM | {:.0} | {:.4} |",
        num(c, "through_vm_bytes_per_s")?,
        num(c, "through_vm_cpu_s_per_s")?
    );
    let _ = writeln!(
        t,
        "| call-media offload | {:.0} | {:.4} |",
        num(c, "offload_bytes_per_s")?,
        num(c, "offload_cpu_s_per_s")?
    );
    t.push_str(&viewer(report)?);
    Ok(t)
}

/// The viewer against the headless engine (`viewer`; reports from before
/// that section have none).
/// Per clip, QEMU's own Spice session (`qemu-spice`) against the daemon's
/// own Spice server (`spice`), both measured in this run: host CPU (daemon
/// and QEMU) and bytes written towards the client; nothing when the report
/// has no QEMU-session rows.
fn session_ratios(report: &Value) -> Result<String> {
    let rows = list(report, "redirect")?;
    let mut t = String::new();
    for q in rows
        .iter()
        .filter(|r| text(r, "uplink").is_ok_and(|u| u == "qemu-spice"))
    {
        let clip = text(q, "clip")?;
        let Some(s) = rows.iter().find(|r| {
            text(r, "clip").is_ok_and(|c| c == clip)
                && text(r, "uplink").is_ok_and(|u| u == "spice")
        }) else {
            continue;
        };
        if t.is_empty() {
            t.push_str("\nMedia in QEMU's own Spice session (chardev-relay) against the daemon's own Spice server, same clip, same run:\n\n");
            t.push_str("| clip | host CPU, QEMU session / daemon's Spice | bytes to the client, QEMU session / daemon's Spice |\n");
            t.push_str("| --- | ---: | ---: |\n");
        }
        let host = num(q, "daemon_cpu_s_per_s")? + num(q, "qemu_cpu_s_per_s")?;
        let _ = writeln!(
            t,
            "| {clip} | {:.2} | {:.3} |",
            host / num(s, "daemon_cpu_s_per_s")?,
            num(q, "qemu_write_bytes_per_s")? / num(s, "daemon_write_bytes_per_s")?,
        );
    }
    Ok(t)
}

fn viewer(report: &Value) -> Result<String> {
    let v = match report.get("viewer") {
        Some(v) if !v.is_null() => v,
        _ => return Ok("\nViewer against the headless engine: not measured yet.\n".into()),
    };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nThe viewer against the headless engine, one redirected {} stream scaled into \
         the VM's {} desktop, per media second:\n",
        text(v, "clip")?,
        text(v, "desktop")?,
    );
    t.push_str("| | CPU s/s |\n| --- | ---: |\n");
    let _ = writeln!(
        t,
        "| headless engine (`media-client --headless`: decode) | {:.4} |",
        num(v, "headless_cpu_s_per_s")?
    );
    let _ = writeln!(
        t,
        "| viewer (`mediaredir-viewer`: decode + composite) | {:.4} |",
        num(v, "viewer_cpu_s_per_s")?
    );
    let _ = writeln!(t, "| ratio viewer / headless | {:.2} |", num(v, "ratio")?);
    let _ = writeln!(
        t,
        "\nGeometry change to screen, {:.0} moves: median {:.0} ms, max {:.0} ms (each until a \
         screenshot of the window shows the move, that screenshot included: median {:.0} ms \
         per screenshot; an upper bound).",
        num(v, "latency_moves")?,
        num(v, "latency_ms_median")?,
        num(v, "latency_ms_max")?,
        num(v, "screenshot_ms_median")?,
    );
    Ok(t)
}

/// A payload size as people write it (the data-path bench's own labels).
fn size_label(size: f64) -> String {
    if size >= 1048576.0 {
        format!("{:.0} MiB", size / 1048576.0)
    } else {
        format!("{:.0} KiB", size / 1024.0)
    }
}

/// Slowest and fastest round, `lo–hi` MB/s.
fn range(path: &Value) -> Result<String> {
    let rounds = list(path, "mb_s_rounds")?
        .iter()
        .filter_map(Value::as_f64)
        .collect::<Vec<f64>>();
    if rounds.is_empty() {
        return Ok("-".into());
    }
    let lo = rounds.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = rounds.iter().copied().fold(0.0, f64::max);
    Ok(format!("{lo:.0}–{hi:.0}"))
}

/// The data-path bench's tables from its own JSON (the `datapath` member).
pub(crate) fn datapath(dp: &Value) -> Result<String> {
    let m = get(dp, "machine")?;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Data path (`vhost-device-media/benches/datapath/`, {} mode, rounds: {:.0}), \
         {}: {}, {:.0} CPUs online (nproc {:.0}), {:.1} GiB RAM, Linux {}, load average {}.\n",
        text(dp, "mode")?,
        num(dp, "rounds")?,
        text(dp, "date")?,
        text(m, "cpu")?,
        num(m, "cpus_online")?,
        num(m, "nproc")?,
        num(m, "mem_gib")?,
        text(m, "kernel")?,
        text(m, "loadavg")?,
    );
    t.push_str(
        "| payload | zero-copy MB/s | copy MB/s | ratio (zero-copy / copy) | zero-copy p50 / p99 µs | copy p50 / p99 µs |\n",
    );
    t.push_str("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    // The ratio as the report holds it (3 decimals): rounding it again
    // could differ from the bench's own table in the last digit.
    let sizes = list(dp, "sizes")?;
    for s in sizes {
        let (zc, cp) = (get(s, "zero_copy")?, get(s, "copy")?);
        let _ = writeln!(
            t,
            "| {} | {:.0} | {:.0} | {:.3} | {:.1} / {:.1} | {:.1} / {:.1} |",
            size_label(num(s, "size")?),
            num(zc, "mb_s")?,
            num(cp, "mb_s")?,
            num(s, "ratio")?,
            num(zc, "p50_us")?,
            num(zc, "p99_us")?,
            num(cp, "p50_us")?,
            num(cp, "p99_us")?,
        );
    }
    t.push_str(
        "\n| payload | zero-copy buffers/s | copy buffers/s | zero-copy MB/s range | copy MB/s range | zero-copy p50 / p99 µs under load | copy p50 / p99 µs under load |\n",
    );
    t.push_str("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for s in sizes {
        let (zc, cp) = (get(s, "zero_copy")?, get(s, "copy")?);
        let _ = writeln!(
            t,
            "| {} | {:.0} | {:.0} | {} | {} | {:.1} / {:.1} | {:.1} / {:.1} |",
            size_label(num(s, "size")?),
            num(zc, "buffers_s")?,
            num(cp, "buffers_s")?,
            range(zc)?,
            range(cp)?,
            num(zc, "loaded_p50_us")?,
            num(zc, "loaded_p99_us")?,
            num(cp, "loaded_p50_us")?,
            num(cp, "loaded_p99_us")?,
        );
    }
    let copied = get(dp, "payload_bytes_copied")?;
    let _ = writeln!(
        t,
        "\n(Range: slowest and fastest round. Under load: the latency seen in the throughput \
         runs, where buffers wait behind the credit window.) `payload_bytes_copied`: {:.0} on \
         the zero-copy path, {:.0} on the copy baseline (its own copies, counted the same way).",
        num(copied, "zero_copy")?,
        num(copied, "copy")?,
    );
    Ok(t)
}

/// The generated block of `docs/bench.md`, markers included: what ran, on
/// which machine, the chart (full runs only: a smoke run keeps none) and
/// every table. `json_link` is the report's path relative to the document.
pub(crate) fn block(report: &Value, json_link: &str) -> Result<String> {
    let smoke = get(report, "smoke")?.as_bool() == Some(true);
    let mut t = String::new();
    let _ = writeln!(t, "{BEGIN}");
    let _ = writeln!(
        t,
        "<!-- Generated by `cargo xtask bench` from {json_link} (xtask/src/bench/render.rs); \
         do not edit by hand. -->\n"
    );
    if smoke {
        t.push_str(
            "Run: **smoke** (`cargo xtask bench --smoke`: 2 s 320x240 clips, N = 1, 2, debug \
             binaries): these figures mean little and only show that the bench runs; a full \
             `cargo xtask bench` replaces them.\n",
        );
    } else {
        t.push_str("Run: full (`cargo xtask bench`).\n");
    }
    let _ = writeln!(
        t,
        "Machine: {}. The bench took {:.0} s in all. Every ratio below compares two \
         measurements of this one run on this one machine. All figures: [{json_link}]({json_link}).\n",
        text(report, "machine")?,
        num(report, "elapsed_s")?,
    );
    if !smoke {
        t.push_str(
            "![CPU per stream and bytes per second: baseline against redirection](bench/latest.svg)\n\n",
        );
    }
    t.push_str(&tables(report)?);
    match report.get("datapath") {
        Some(dp) if !dp.is_null() => {
            t.push('\n');
            t.push_str(&datapath(dp)?);
        }
        _ => t.push_str("\nData path: not measured in this run.\n"),
    }
    let _ = writeln!(t, "{END}");
    Ok(t)
}

/// Where the generated block of `doc` lies: from the start of its
/// [`BEGIN`] line to the end of its [`END`] line (newline included). The
/// markers count only on lines of their own, so prose may quote them.
pub(crate) fn block_span(doc: &str) -> Result<std::ops::Range<usize>> {
    let mut begins = Vec::new();
    let mut ends = Vec::new();
    let mut at = 0;
    for line in doc.split_inclusive('\n') {
        match line.trim_end() {
            BEGIN => begins.push(at),
            END => ends.push(at + line.len()),
            _ => {}
        }
        at += line.len();
    }
    match (begins.as_slice(), ends.as_slice()) {
        ([start], [end]) if start < end => Ok(*start..*end),
        ([], _) | (_, []) => bail!("no `{BEGIN}` ... `{END}` lines around a block"),
        _ => bail!("the `{BEGIN}` and `{END}` lines are out of order or repeated"),
    }
}

/// `doc` with its generated block (see [`block_span`]) replaced by `block`.
pub(crate) fn splice(doc: &str, block: &str) -> Result<String> {
    let span = block_span(doc)?;
    Ok(format!("{}{block}{}", &doc[..span.start], &doc[span.end..]))
}

/// Re-renders the block of the document at `doc_path` from the JSON report
/// at `json_path` (`json_link`: that path as the document links it).
/// Returns whether the document changed.
pub(crate) fn render_docs(
    json_path: &std::path::Path,
    doc_path: &std::path::Path,
    json_link: &str,
) -> Result<bool> {
    let json = std::fs::read_to_string(json_path)
        .with_context(|| format!("reading {}", json_path.display()))?;
    let report: Value =
        serde_json::from_str(&json).with_context(|| format!("parsing {}", json_path.display()))?;
    let doc = std::fs::read_to_string(doc_path)
        .with_context(|| format!("reading {}", doc_path.display()))?;
    let new = splice(&doc, &block(&report, json_link)?)
        .with_context(|| format!("in {}", doc_path.display()))?;
    if new == doc {
        return Ok(false);
    }
    std::fs::write(doc_path, new).with_context(|| format!("writing {}", doc_path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests;

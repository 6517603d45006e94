//! `cargo xtask cbindgen-regen` and `cbindgen-check`: the committed C header
//! of `libmediaredir`.
//!
//! Why generated: a header written by hand is a second copy of the C API's
//! structs and of the protocol's numbers, kept in step only by tests that
//! notice when it drifts. Here the declarations (structs, their layout, the
//! functions, their documentation) come from the C API's Rust source through
//! cbindgen (pure Rust, linked as a library, so xtask still links no system
//! library), and the constants from the protocol's own tables in
//! `mediaredir-proto` ([`constants`]): a codec added to the proto crate
//! appears in the header on the next regeneration, and the check fails
//! until it is committed.
//!
//! The header stays committed so C users and packagers need no Rust tool to
//! read it, and a change to it shows up in review. As for the FlatBuffers
//! code, the check is a step of `cargo xtask test`: regenerating must give
//! the committed bytes.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use mediaredir_proto::broker::DEFAULT_SOCKET;
use mediaredir_proto::codec::{Codec, CodecDataRule};
use mediaredir_proto::control::{COLOR_KEY_RGB, Direction, MAX_CLIP_RECTS};
use mediaredir_proto::data::{
    FLAG_CODEC_CONFIG, FLAG_DECODE_ONLY, FLAG_DISCONT, FLAG_EOS, FLAG_KEYFRAME,
};
use mediaredir_proto::event::kind;
use mediaredir_proto::response::{
    CODEC_FLAG_DECODE, CODEC_FLAG_ENCODE, CODEC_FLAG_RTP, PresentationState,
};
use mediaredir_proto::status::Status;

/// The C API's crate directory, relative to the workspace root.
pub(crate) const CRATE_DIR: &str = "guest-driver-shim/capi";

/// The committed header, relative to [`CRATE_DIR`].
pub(crate) const HEADER: &str = "include/mediaredir.h";

/// cbindgen's configuration, relative to [`CRATE_DIR`].
const CONFIG: &str = "cbindgen.toml";

/// A `#define NAME value` line with an optional trailing comment.
fn define(out: &mut String, name: &str, value: impl std::fmt::Display, comment: &str) {
    let line = format!("#define MEDIAREDIR_{name} {value}");
    if comment.is_empty() {
        out.push_str(&line);
    } else {
        let _ = write!(out, "{line:<40} /* {comment} */");
    }
    out.push('\n');
}

/// A C identifier's tail from a protocol name (`pcm-s16le` -> `PCM_S16LE`).
fn c_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

/// The header's constants, from the protocol's tables: the part of the
/// header cbindgen does not make, because the values live in
/// `mediaredir-proto`, not in the C API's crate.
pub(crate) fn constants() -> String {
    let mut out = String::new();
    out.push_str("/** The broker's default socket. */\n");
    define(
        &mut out,
        "DEFAULT_SOCKET",
        format!("{DEFAULT_SOCKET:?}"),
        "",
    );

    out.push_str(
        "\n/* Protocol status codes (positive return values, buffer completions,\n \
         * event status); mediaredir_strerror() describes each. */\n",
    );
    for status in Status::ALL {
        define(&mut out, &format!("STATUS_{status}"), status.as_u32(), "");
    }

    out.push_str(
        "\n/* Codecs (struct mediaredir_stream_format.codec,\n \
         * struct mediaredir_codec_cap.codec) and whether a stream's codec_data\n \
         * is required, optional or forbidden. */\n",
    );
    for codec in Codec::ALL {
        let rule = match (codec.codec_data_rule(), codec.codec_data_format()) {
            (CodecDataRule::Forbidden, _) | (_, None) => "no codec data".to_owned(),
            (CodecDataRule::Required, Some(format)) => format!("codec data required ({format})"),
            (CodecDataRule::Optional, Some(format)) => format!("codec data optional ({format})"),
        };
        let name = format!("CODEC_{}", c_name(codec.name()));
        define(
            &mut out,
            &name,
            format_args!("{:#05x}", codec.as_u32()),
            &rule,
        );
    }

    out.push_str("\n/* struct mediaredir_codec_cap.flags. */\n");
    for (name, value) in [
        ("DECODE", CODEC_FLAG_DECODE),
        ("ENCODE", CODEC_FLAG_ENCODE),
        ("RTP", CODEC_FLAG_RTP),
    ] {
        define(
            &mut out,
            &format!("CODEC_FLAG_{name}"),
            format_args!("{value:#x}"),
            "",
        );
    }

    out.push_str("\n/* struct mediaredir_stream_format.direction. */\n");
    for direction in Direction::ALL {
        let name = format!("DIRECTION_{}", c_name(direction.name()));
        define(&mut out, &name, direction.as_u32(), "");
    }

    out.push_str("\n/* struct mediaredir_buffer_info.flags (V4L2_BUF_FLAG_*). */\n");
    for (name, value, comment) in [
        ("KEYFRAME", FLAG_KEYFRAME, "a sync point"),
        ("DISCONT", FLAG_DISCONT, "discontinuity before this"),
        (
            "CODEC_CONFIG",
            FLAG_CODEC_CONFIG,
            "in-band codec configuration",
        ),
        ("EOS", FLAG_EOS, "end of stream (may be empty)"),
        ("DECODE_ONLY", FLAG_DECODE_ONLY, "decode, do not show"),
    ] {
        define(
            &mut out,
            &format!("FLAG_{name}"),
            format_args!("{value:#x}"),
            comment,
        );
    }

    out.push_str("\n/* struct mediaredir_event.kind. */\n");
    for (name, value) in [
        ("CLIENT_CONNECTED", kind::CLIENT_CONNECTED),
        ("CLIENT_DISCONNECTED", kind::CLIENT_DISCONNECTED),
        ("EOS", kind::EOS),
        ("POSITION", kind::POSITION),
        ("STREAM_ERROR", kind::STREAM_ERROR),
        ("QOS", kind::QOS),
        ("STATE_CHANGED", kind::STATE_CHANGED),
        ("KEYFRAME_NEEDED", kind::KEYFRAME_NEEDED),
        ("EVENTS_LOST", kind::EVENTS_LOST),
        ("DEVICE_STARTED", kind::DEVICE_STARTED),
        ("LINK_QUALITY", kind::LINK_QUALITY),
        ("CALL_STATS", kind::CALL_STATS),
        ("CALL_ENDED", kind::CALL_ENDED),
        ("CALL_DTMF", kind::CALL_DTMF),
    ] {
        define(
            &mut out,
            &format!("EVENT_{name}"),
            format_args!("{value:#04x}"),
            "",
        );
    }

    out.push_str(
        "\n/* Presentation states (struct mediaredir_position.state, value 0 of\n \
         * MEDIAREDIR_EVENT_STATE_CHANGED). */\n",
    );
    for state in PresentationState::ALL {
        let name = format!("STATE_{}", c_name(state.name()));
        define(&mut out, &name, state.as_u32(), "");
    }

    out.push_str("\n/** Most clip rectangles of a geometry. */\n");
    define(&mut out, "MAX_CLIP_RECTS", MAX_CLIP_RECTS, "");

    out.push_str(
        "\n/** The colour a caller paints a geometry's dest in when it sets\n \
         * struct mediaredir_geometry.color_key, as 0xRRGGBB. */\n",
    );
    define(
        &mut out,
        "COLOR_KEY",
        format_args!("{COLOR_KEY_RGB:#08x}"),
        "magenta",
    );
    out
}

/// The header cbindgen makes from the crate in `crate_dir` with its
/// `cbindgen.toml`, the protocol's constants after the includes.
pub(crate) fn generate(crate_dir: &Path) -> Result<Vec<u8>> {
    let config_path = crate_dir.join(CONFIG);
    let mut config = cbindgen::Config::from_file(&config_path)
        .map_err(|err| anyhow::anyhow!("{err}"))
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    config.after_includes = Some(constants());
    // The crate's own source only (its `mod` tree from lib.rs): no `cargo
    // metadata`, so the check needs neither the network nor a build.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .with_context(|| format!("cbindgen failed on {}", crate_dir.display()))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    Ok(out)
}

/// Regenerates the committed header; writes it only when it changed.
pub(crate) fn regen(crate_dir: &Path) -> Result<()> {
    let generated = generate(crate_dir)?;
    let path = crate_dir.join(HEADER);
    if std::fs::read(&path).is_ok_and(|committed| committed == generated) {
        println!("cbindgen-regen: {} already up to date", path.display());
        return Ok(());
    }
    std::fs::write(&path, &generated)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("cbindgen-regen: wrote {}", path.display());
    Ok(())
}

/// Fails unless regenerating the header would change nothing.
pub(crate) fn check(crate_dir: &Path) -> Result<()> {
    let generated = generate(crate_dir)?;
    let path = crate_dir.join(HEADER);
    let committed =
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if committed == generated {
        println!(
            "cbindgen-check: {} matches the C API's source",
            path.display()
        );
        return Ok(());
    }
    let line = first_difference(&committed, &generated);
    bail!(
        "{} is not what cbindgen makes from {} (first difference at line {line}); run `cargo xtask cbindgen-regen` and commit the result",
        path.display(),
        crate_dir.display()
    )
}

/// The 1-based line of the first byte where `a` and `b` differ.
fn first_difference(a: &[u8], b: &[u8]) -> usize {
    let at = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    1 + a[..at].iter().filter(|&&c| c == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_come_from_the_protocol_tables() {
        let text = constants();
        for codec in Codec::ALL {
            let name = format!("MEDIAREDIR_CODEC_{} ", c_name(codec.name()));
            assert!(text.contains(&name), "{name} missing");
        }
        assert!(text.contains("#define MEDIAREDIR_STATUS_BAD_STATE 3\n"));
        assert!(text.contains("#define MEDIAREDIR_CODEC_PCM_U8 0x10d"));
        assert!(text.contains("#define MEDIAREDIR_DIRECTION_CAPTURE 1\n"));
        assert!(text.contains("#define MEDIAREDIR_STATE_PAUSED 2\n"));
        assert!(
            text.contains("#define MEDIAREDIR_DEFAULT_SOCKET \"/run/mediaredir/broker.sock\"\n")
        );
    }

    #[test]
    fn first_difference_names_the_line() {
        assert_eq!(first_difference(b"a\nb\nc", b"a\nb\nd"), 3);
        assert_eq!(first_difference(b"x", b"y"), 1);
        assert_eq!(first_difference(b"a\n", b"a\nb"), 2);
    }
}

//! `include/mediaredir.h` is written by hand; this keeps it honest: every
//! function it declares is exported by the built `libmediaredir.so` and
//! every `mediaredir_*` export is declared, and its constants are the
//! protocol's numbers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::{GEOMETRY_FLAG_VISIBLE, MAX_CLIP_RECTS};
use mediaredir_proto::data::{
    FLAG_CODEC_CONFIG, FLAG_DECODE_ONLY, FLAG_DISCONT, FLAG_EOS, FLAG_KEYFRAME,
};
use mediaredir_proto::event::kind;
use mediaredir_proto::response::{
    CODEC_FLAG_DECODE, CODEC_FLAG_ENCODE, CODEC_FLAG_RTP, PresentationState,
};
use mediaredir_proto::status::Status;

/// The header without its comments.
fn header_code() -> String {
    let text = std::fs::read_to_string(common::header()).expect("read the header");
    let mut code = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("/*") {
        code.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("closed comment");
        rest = &rest[start + end + 2..];
    }
    code.push_str(rest);
    code.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names `mediaredir_*` followed by `(` in the header's code.
fn declared_functions() -> BTreeSet<String> {
    let code = header_code();
    let mut names = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("mediaredir_") {
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let after = tail[len..].trim_start();
        let preceded_by_struct = rest[..at].trim_end().ends_with("struct");
        if after.starts_with('(') && !preceded_by_struct {
            names.insert(tail[..len].to_string());
        }
        rest = &tail[len..];
    }
    names
}

/// `mediaredir_*` functions the shared library exports.
fn exported_functions() -> BTreeSet<String> {
    let lib = common::library_dir().join("libmediaredir.so");
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("run nm");
    assert!(out.status.success(), "nm {} failed", lib.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (_, ty, name) = (parts.next()?, parts.next()?, parts.next()?);
            (ty == "T" && name.starts_with("mediaredir_")).then(|| name.to_string())
        })
        .collect()
}

#[test]
fn header_functions_and_library_exports_are_the_same() {
    let declared = declared_functions();
    let exported = exported_functions();
    assert!(declared.len() >= 25, "header parse found only {declared:?}");
    let missing: Vec<_> = declared.difference(&exported).collect();
    let undeclared: Vec<_> = exported.difference(&declared).collect();
    assert!(
        missing.is_empty() && undeclared.is_empty(),
        "declared but not exported: {missing:?}; exported but not declared: {undeclared:?}"
    );
}

/// `#define MEDIAREDIR_X value` lines with a number.
fn header_numbers() -> BTreeMap<String, u64> {
    header_code()
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            if parts.next()? != "#define" {
                return None;
            }
            let name = parts.next()?;
            let value = parts.next()?.trim_end_matches(['u', 'U']);
            let value = match value.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok()?,
                None => value.parse().ok()?,
            };
            Some((name.to_string(), value))
        })
        .collect()
}

#[test]
fn header_constants_are_the_protocol_numbers() {
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for status in Status::ALL {
        want.insert(
            format!("MEDIAREDIR_STATUS_{status}"),
            status.as_u32().into(),
        );
    }
    for codec in Codec::ALL {
        let name = codec.name().to_uppercase().replace('-', "_");
        want.insert(format!("MEDIAREDIR_CODEC_{name}"), codec.as_u32().into());
    }
    for (name, value) in [
        ("FLAG_KEYFRAME", FLAG_KEYFRAME),
        ("FLAG_DISCONT", FLAG_DISCONT),
        ("FLAG_CODEC_CONFIG", FLAG_CODEC_CONFIG),
        ("FLAG_EOS", FLAG_EOS),
        ("FLAG_DECODE_ONLY", FLAG_DECODE_ONLY),
        ("CODEC_FLAG_DECODE", CODEC_FLAG_DECODE),
        ("CODEC_FLAG_ENCODE", CODEC_FLAG_ENCODE),
        ("CODEC_FLAG_RTP", CODEC_FLAG_RTP),
        ("EVENT_CLIENT_CONNECTED", kind::CLIENT_CONNECTED),
        ("EVENT_CLIENT_DISCONNECTED", kind::CLIENT_DISCONNECTED),
        ("EVENT_EOS", kind::EOS),
        ("EVENT_POSITION", kind::POSITION),
        ("EVENT_STREAM_ERROR", kind::STREAM_ERROR),
        ("EVENT_QOS", kind::QOS),
        ("EVENT_STATE_CHANGED", kind::STATE_CHANGED),
        ("EVENT_KEYFRAME_NEEDED", kind::KEYFRAME_NEEDED),
        ("EVENT_EVENTS_LOST", kind::EVENTS_LOST),
        ("EVENT_DEVICE_STARTED", kind::DEVICE_STARTED),
        ("EVENT_CALL_STATS", kind::CALL_STATS),
        ("EVENT_CALL_ENDED", kind::CALL_ENDED),
        ("EVENT_CALL_DTMF", kind::CALL_DTMF),
        ("STATE_IDLE", PresentationState::Idle.as_u32()),
        ("STATE_PLAYING", PresentationState::Playing.as_u32()),
        ("STATE_PAUSED", PresentationState::Paused.as_u32()),
        ("DIRECTION_PLAYBACK", 0),
        ("DIRECTION_CAPTURE", 1),
        (
            "MAX_CLIP_RECTS",
            u32::try_from(MAX_CLIP_RECTS).expect("small"),
        ),
    ] {
        want.insert(format!("MEDIAREDIR_{name}"), value.into());
    }
    // The geometry's `visible` is a boolean that the library maps to the
    // flag; the flag itself is not in the header.
    assert_eq!(GEOMETRY_FLAG_VISIBLE, 1);
    let code = header_code();
    assert!(
        code.contains(&format!(
            "#define MEDIAREDIR_DEFAULT_SOCKET \"{}\"",
            mediaredir_proto::broker::DEFAULT_SOCKET
        )),
        "MEDIAREDIR_DEFAULT_SOCKET is not the broker's default socket"
    );
    assert_eq!(mediaredir::types::TIME_NONE, u64::MAX);
    assert!(code.contains("#define MEDIAREDIR_TIME_NONE UINT64_MAX"));
    let have = header_numbers();
    let wrong: Vec<String> = want
        .iter()
        .filter(|(name, value)| have.get(*name) != Some(value))
        .map(|(name, value)| format!("{name}: header {:?}, protocol {value}", have.get(name)))
        .collect();
    assert!(
        wrong.is_empty(),
        "header constants differ:\n{}",
        wrong.join("\n")
    );
    let extra: Vec<&String> = have.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(extra.is_empty(), "header constants not checked: {extra:?}");
}

/// (C struct, Rust size, [(field, Rust offset)]).
type Layout = (&'static str, usize, Vec<(&'static str, usize)>);

fn rust_layouts() -> Vec<Layout> {
    use std::mem::offset_of;

    use mediaredir::types::{
        CBufferInfo, CCaps, CCodecCap, CEvent, CGeometry, CPosition, CRect, CStreamFormat,
    };
    macro_rules! layout {
        ($c:literal, $t:ty, [$($f:ident),*]) => {
            ($c, size_of::<$t>(), vec![$((stringify!($f), offset_of!($t, $f))),*])
        };
    }
    vec![
        layout!(
            "mediaredir_codec_cap",
            CCodecCap,
            [codec, flags, max_width, max_height]
        ),
        layout!(
            "mediaredir_caps",
            CCaps,
            [generation, client_connected, client_features, num_codecs]
        ),
        layout!(
            "mediaredir_stream_format",
            CStreamFormat,
            [
                codec,
                direction,
                txq,
                source_id,
                width,
                height,
                fps_num,
                fps_den,
                sample_rate,
                channels,
                bitrate,
                reserved,
                codec_data,
                codec_data_len
            ]
        ),
        layout!(
            "mediaredir_buffer_info",
            CBufferInfo,
            [bytes_used, flags, pts, dts, duration]
        ),
        layout!("mediaredir_rect", CRect, [x, y, width, height]),
        layout!(
            "mediaredir_geometry",
            CGeometry,
            [
                display_id, visible, z, reserved, dest, source, clip, num_clip
            ]
        ),
        layout!(
            "mediaredir_position",
            CPosition,
            [position_ns, buffered_ns, state, reserved]
        ),
        layout!(
            "mediaredir_event",
            CEvent,
            [kind, id, reserved, status, values]
        ),
    ]
}

#[test]
fn header_structs_have_the_rust_layout() {
    let layouts = rust_layouts();
    let mut source = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include \"mediaredir.h\"\nint main(void)\n{\n",
    );
    let mut want = String::new();
    for (name, size, fields) in &layouts {
        source.push_str(&format!(
            "    printf(\"{name} %zu\\n\", sizeof(struct {name}));\n"
        ));
        want.push_str(&format!("{name} {size}\n"));
        for (field, offset) in fields {
            source.push_str(&format!(
                "    printf(\"{name}.{field} %zu\\n\", offsetof(struct {name}, {field}));\n"
            ));
            want.push_str(&format!("{name}.{field} {offset}\n"));
        }
    }
    source.push_str("    return 0;\n}\n");
    let scratch = conformance_tests::scratch::Scratch::new("capi-layout");
    let c = scratch.path("layout.c");
    std::fs::write(&c, source).expect("write layout.c");
    let exe = scratch.path("layout");
    common::compile_c(&c, &exe);
    let out = Command::new(&exe).output().expect("run layout");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

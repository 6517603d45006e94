//! `cargo xtask flatc-regen` and `flatc-check`: the committed FlatBuffers code.
//!
//! The Rust code flatc generates from `spec/schema/*.fbs` is committed, so
//! building the proto crate needs no flatc (no build script running an
//! outside tool) and a schema change shows up in review as a code change. The
//! check guards the other direction: the committed code must be exactly what
//! flatc 25.12 makes from the committed schemas, or the wire format described
//! by the schema and the code that speaks it drift apart.
//!
//! Both generate into a scratch directory first: the check compares it with
//! the committed files; regen copies over only what changed (unchanged files
//! keep their timestamps, so nothing rebuilds needlessly) and removes
//! generated files whose schema is gone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{process, tempdir};

/// Default directory of the schemas, relative to the workspace root.
pub(crate) const SCHEMA_DIR: &str = "spec/schema";

/// Default directory of the committed generated code.
pub(crate) const GENERATED_DIR: &str = "spec/proto/src/wire/generated";

/// flatc names the Rust output of `<stem>.fbs` `<stem>_generated.rs`.
const GENERATED_SUFFIX: &str = "_generated.rs";

/// Where the schemas are and where their generated code goes.
#[derive(Debug, Clone)]
pub(crate) struct Dirs {
    /// Directory of the `*.fbs` files.
    pub(crate) schema_dir: PathBuf,
    /// Directory of the `*_generated.rs` files.
    pub(crate) out_dir: PathBuf,
}

/// Generated file contents by file name.
pub(crate) type Files = BTreeMap<String, Vec<u8>>;

/// How the committed generated code differs from a fresh generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Difference {
    /// flatc makes this file but it is not committed.
    Missing(String),
    /// This file is committed but flatc does not make it (stale).
    Extra(String),
    /// Both exist with different bytes.
    Differs(String),
}

impl Difference {
    /// The file concerned.
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Missing(name) | Self::Extra(name) | Self::Differs(name) => name,
        }
    }

    /// What is wrong with it.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Missing(_) => "flatc generates it but it is not committed",
            Self::Extra(_) => "committed but no schema generates it (stale)",
            Self::Differs(_) => "committed file differs from flatc's output",
        }
    }
}

/// Compares fresh output (`generated`) with the committed files.
pub(crate) fn diff(generated: &Files, committed: &Files) -> Vec<Difference> {
    let mut differences = Vec::new();
    for (name, bytes) in generated {
        match committed.get(name) {
            None => differences.push(Difference::Missing(name.clone())),
            Some(theirs) if theirs != bytes => differences.push(Difference::Differs(name.clone())),
            Some(_) => {}
        }
    }
    for name in committed.keys() {
        if !generated.contains_key(name) {
            differences.push(Difference::Extra(name.clone()));
        }
    }
    differences
}

/// The `*.fbs` files of a directory, sorted; fails if there are none.
pub(crate) fn schemas(schema_dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(schema_dir)
        .with_context(|| format!("cannot read the schema directory {}", schema_dir.display()))?;
    let mut schemas = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "fbs") && path.is_file() {
            schemas.push(path);
        }
    }
    if schemas.is_empty() {
        bail!("no *.fbs schema in {}", schema_dir.display());
    }
    schemas.sort();
    Ok(schemas)
}

/// The `*_generated.rs` files of a directory (none if it does not exist).
pub(crate) fn read_generated(dir: &Path) -> Result<Files> {
    let mut files = Files::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(GENERATED_SUFFIX) && path.is_file() {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            files.insert(name.to_owned(), bytes);
        }
    }
    Ok(files)
}

/// Runs flatc on every schema, writing into `out_dir`; returns what it made.
fn generate(flatc: &Path, schema_dir: &Path, out_dir: &Path) -> Result<Files> {
    for schema in schemas(schema_dir)? {
        let mut cmd = Command::new(flatc);
        cmd.args(["--rust", "--gen-all", "-o"])
            .arg(out_dir)
            .arg(&schema);
        process::run(&mut cmd)?;
    }
    read_generated(out_dir)
}

/// Regenerates the committed code from the schemas.
pub(crate) fn regen(flatc: &Path, dirs: &Dirs) -> Result<()> {
    let scratch = tempdir::new("xtask-flatc")?;
    let generated = generate(flatc, &dirs.schema_dir, scratch.path())?;
    let committed = read_generated(&dirs.out_dir)?;
    std::fs::create_dir_all(&dirs.out_dir)
        .with_context(|| format!("cannot create {}", dirs.out_dir.display()))?;
    let differences = diff(&generated, &committed);
    for difference in &differences {
        match difference {
            Difference::Missing(name) | Difference::Differs(name) => {
                let path = dirs.out_dir.join(name);
                std::fs::write(&path, &generated[name])
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("flatc-regen: wrote {}", path.display());
            }
            Difference::Extra(name) => {
                let path = dirs.out_dir.join(name);
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                println!("flatc-regen: removed stale {}", path.display());
            }
        }
    }
    if differences.is_empty() {
        println!(
            "flatc-regen: {} file(s) in {} already up to date",
            generated.len(),
            dirs.out_dir.display()
        );
    }
    Ok(())
}

/// Fails unless regenerating would change nothing.
pub(crate) fn check(flatc: &Path, dirs: &Dirs) -> Result<()> {
    let scratch = tempdir::new("xtask-flatc")?;
    let generated = generate(flatc, &dirs.schema_dir, scratch.path())?;
    let committed = read_generated(&dirs.out_dir)?;
    let differences = diff(&generated, &committed);
    if differences.is_empty() {
        println!(
            "flatc-check: {} file(s) in {} match the schemas",
            generated.len(),
            dirs.out_dir.display()
        );
        return Ok(());
    }
    for difference in &differences {
        eprintln!(
            "flatc-check: {}: {}",
            dirs.out_dir.join(difference.name()).display(),
            difference.reason()
        );
    }
    bail!(
        "the committed FlatBuffers code is not what flatc makes from {}; run `cargo xtask flatc-regen` and commit the result",
        dirs.schema_dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(&str, &str)]) -> Files {
        entries
            .iter()
            .map(|(name, body)| ((*name).to_owned(), body.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn identical_sets_have_no_difference() {
        let a = files(&[("a_generated.rs", "x"), ("b_generated.rs", "y")]);
        assert!(diff(&a, &a.clone()).is_empty());
        assert!(diff(&Files::new(), &Files::new()).is_empty());
    }

    #[test]
    fn every_kind_of_difference_is_named() {
        let generated = files(&[("a_generated.rs", "x"), ("b_generated.rs", "y")]);
        let committed = files(&[("b_generated.rs", "y2"), ("c_generated.rs", "z")]);
        assert_eq!(
            diff(&generated, &committed),
            [
                Difference::Missing("a_generated.rs".into()),
                Difference::Differs("b_generated.rs".into()),
                Difference::Extra("c_generated.rs".into()),
            ]
        );
    }

    #[test]
    fn a_single_byte_counts() {
        let generated = files(&[("a_generated.rs", "abc\n")]);
        let committed = files(&[("a_generated.rs", "abc")]);
        assert_eq!(
            diff(&generated, &committed),
            [Difference::Differs("a_generated.rs".into())]
        );
    }

    #[test]
    fn read_generated_takes_only_generated_files() {
        let dir = tempdir::new("xtask-test").unwrap();
        std::fs::write(dir.path().join("m_generated.rs"), b"gen").unwrap();
        std::fs::write(dir.path().join("mod.rs"), b"mod").unwrap();
        std::fs::create_dir(dir.path().join("sub_generated.rs")).unwrap();
        assert_eq!(
            read_generated(dir.path()).unwrap(),
            files(&[("m_generated.rs", "gen")])
        );
        assert!(
            read_generated(&dir.path().join("absent"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn schemas_are_sorted_fbs_files_and_required() {
        let dir = tempdir::new("xtask-test").unwrap();
        assert!(schemas(dir.path()).is_err());
        std::fs::write(dir.path().join("b.fbs"), b"").unwrap();
        std::fs::write(dir.path().join("a.fbs"), b"").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"").unwrap();
        let found = schemas(dir.path()).unwrap();
        assert_eq!(found, [dir.path().join("a.fbs"), dir.path().join("b.fbs")]);
    }

    /// A stand-in for flatc: `--rust --gen-all -o OUT SCHEMA` writes
    /// `OUT/<stem>_generated.rs` holding a header and the schema.
    fn fake_flatc(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("fake-flatc");
        std::fs::write(
            &path,
            "#!/bin/sh\nset -e\n[ \"$1 $2 $3\" = \"--rust --gen-all -o\" ]\n\
             stem=$(basename \"$5\" .fbs)\n\
             { echo '// generated'; cat \"$5\"; } > \"$4/${stem}_generated.rs\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Another test thread forking while the file was open for writing can
        // make the first exec fail with ETXTBSY for a moment: wait it out.
        for _ in 0..100 {
            match Command::new(&path).arg("probe").status() {
                Err(err) if err.raw_os_error() == Some(26) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                _ => break,
            }
        }
        path
    }

    #[test]
    fn regen_then_check_round_trip() {
        let work = tempdir::new("xtask-test").unwrap();
        let flatc = fake_flatc(work.path());
        let dirs = Dirs {
            schema_dir: work.path().join("schema"),
            out_dir: work.path().join("out/generated"),
        };
        std::fs::create_dir(&dirs.schema_dir).unwrap();
        std::fs::write(dirs.schema_dir.join("a.fbs"), b"table A {}\n").unwrap();
        std::fs::write(dirs.schema_dir.join("b.fbs"), b"table B {}\n").unwrap();

        // Nothing committed yet: the check fails, regen creates the files.
        assert!(check(&flatc, &dirs).is_err());
        regen(&flatc, &dirs).unwrap();
        check(&flatc, &dirs).unwrap();
        assert_eq!(
            std::fs::read(dirs.out_dir.join("a_generated.rs")).unwrap(),
            b"// generated\ntable A {}\n"
        );

        // A schema change, an edited file and a stale file are all caught...
        std::fs::write(dirs.schema_dir.join("a.fbs"), b"table A { x: int; }\n").unwrap();
        std::fs::remove_file(dirs.schema_dir.join("b.fbs")).unwrap();
        std::fs::write(dirs.out_dir.join("mod.rs"), b"keep me").unwrap();
        let err = check(&flatc, &dirs).unwrap_err();
        assert!(err.to_string().contains("flatc-regen"), "{err}");

        // ...and regen repairs them, leaving other files alone.
        regen(&flatc, &dirs).unwrap();
        check(&flatc, &dirs).unwrap();
        assert!(!dirs.out_dir.join("b_generated.rs").exists());
        assert_eq!(
            std::fs::read(dirs.out_dir.join("mod.rs")).unwrap(),
            b"keep me"
        );
    }
}

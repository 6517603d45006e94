//! Kernel modules for the test guest, picked out of the unpacked kernel
//! package with everything they depend on, in an order `insmod` can load
//! them.
//!
//! The guest has no `modprobe` and no `modules.dep` (the package leaves
//! `depmod` to its install script), so this does what `modprobe` would on
//! the host: a module's path comes from `modules.order`, its dependencies
//! from the `depends=` entry of its `.modinfo` section (what
//! `modinfo -F depends` prints), read from the file itself, recursively.
//! Debian 12's modules are not compressed; a compressed one is an error.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A module to load: its name (as `insmod` wants the file,
/// `NAME.ko`) and where it is in the unpacked package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Module {
    /// The module's name, `-` spelt `_` (the kernel's own spelling).
    pub(crate) name: String,
    /// The `.ko` file.
    pub(crate) path: PathBuf,
}

/// A module name as the kernel spells it (`-` and `_` are the same).
fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

/// The `depends=` list of a module's `.modinfo` entries (NUL-separated
/// `key=value` strings; no other part of the file has that pattern at a
/// string start).
pub(crate) fn depends(ko: &[u8]) -> Vec<String> {
    ko.split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(b"depends="))
        .map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(canonical)
                .collect()
        })
        .unwrap_or_default()
}

/// The path of module `name` in `modules.order` text, relative to the
/// modules directory.
pub(crate) fn order_path<'a>(order: &'a str, name: &str) -> Option<&'a str> {
    let want = canonical(name);
    order.lines().map(str::trim).find(|line| {
        Path::new(line)
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.strip_suffix(".ko"))
            .is_some_and(|stem| canonical(stem) == want)
    })
}

/// `wanted` and their dependencies from the modules directory `dir`
/// (`lib/modules/VERSION`), each once, every module after those it
/// depends on.
pub(crate) fn with_dependencies(dir: &Path, wanted: &[&str]) -> Result<Vec<Module>> {
    let order_file = dir.join("modules.order");
    let order = std::fs::read_to_string(&order_file)
        .with_context(|| format!("reading {}", order_file.display()))?;
    let mut out: Vec<Module> = Vec::new();
    // Depth-first: a module is pushed once all it depends on are.
    fn visit(
        dir: &Path,
        order: &str,
        name: &str,
        stack: &mut Vec<String>,
        out: &mut Vec<Module>,
    ) -> Result<()> {
        let name = canonical(name);
        if out.iter().any(|m| m.name == name) {
            return Ok(());
        }
        if stack.contains(&name) {
            bail!("kernel modules depend on each other in a circle: {stack:?} -> {name}");
        }
        let rel = order_path(order, &name).with_context(|| {
            format!(
                "no module {name} in {}/modules.order (built in?)",
                dir.display()
            )
        })?;
        let path = dir.join(rel);
        let ko = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        stack.push(name.clone());
        for dep in depends(&ko) {
            visit(dir, order, &dep, stack, out)?;
        }
        stack.pop();
        out.push(Module { name, path });
        Ok(())
    }
    for name in wanted {
        visit(dir, &order, name, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_depends() {
        let ko = b"\x7fELF...\0license=GPL\0depends=drm_kms_helper,drm,drm-vram-helper\0intree=Y\0";
        assert_eq!(depends(ko), ["drm_kms_helper", "drm", "drm_vram_helper"]);
        assert!(depends(b"\0depends=\0name=drm\0").is_empty());
        assert!(depends(b"no modinfo").is_empty());
    }

    #[test]
    fn finds_paths_in_modules_order() {
        let order = "kernel/drivers/gpu/drm/tiny/bochs.ko\nkernel/drivers/i2c/i2c-core.ko\n";
        assert_eq!(
            order_path(order, "bochs"),
            Some("kernel/drivers/gpu/drm/tiny/bochs.ko")
        );
        assert_eq!(
            order_path(order, "i2c_core"),
            Some("kernel/drivers/i2c/i2c-core.ko")
        );
        assert_eq!(order_path(order, "boch"), None);
    }

    #[test]
    fn orders_dependencies_first() {
        let dir = crate::tempdir::new("xtask-kmod-test").unwrap();
        let order = "kernel/a.ko\nkernel/b.ko\nkernel/c.ko\n";
        std::fs::create_dir_all(dir.path().join("kernel")).unwrap();
        std::fs::write(dir.path().join("modules.order"), order).unwrap();
        for (name, deps) in [("a", "b,c"), ("b", "c"), ("c", "")] {
            std::fs::write(
                dir.path().join(format!("kernel/{name}.ko")),
                format!("\0depends={deps}\0"),
            )
            .unwrap();
        }
        let names: Vec<String> = with_dependencies(dir.path(), &["a", "c"])
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["c", "b", "a"]);
        assert!(with_dependencies(dir.path(), &["d"]).is_err());
    }
}

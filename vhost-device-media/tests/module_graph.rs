//! The daemon's module graph, read from its sources (no `cargo modules`):
//! the top-level modules import each other one way only (no circle, as
//! capq/capture/core/queues once were), and only the vhost-user adapter
//! names vhost-user-backend or the mmap guest-memory type (issue 17: the
//! core runs under the adapter and under tests alike).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`queues/txq.rs` -> `queues`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// The code lines of a file: no comments, nothing from the first
/// `#[cfg(test)]` on, nothing of a file of tests.
fn code(path: &Path) -> Vec<String> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return Vec::new();
    }
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .map(str::trim)
        .filter(|line| !line.starts_with("//"))
        .map(String::from)
        .collect()
}

/// `module -> modules it names through crate::`, for the top-level modules.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut paths = Vec::new();
    files(&src(), &mut paths);
    let modules: BTreeSet<String> = paths
        .iter()
        .map(|p| module_of(p))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &paths {
        let from = module_of(path);
        for line in code(path) {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != from && modules.contains(&name) {
                    graph.entry(from.clone()).or_default().insert(name);
                }
            }
        }
    }
    graph
}

/// A circle through `node`, if there is one reachable from it.
fn circle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|n| n == node) {
        let mut found = path[at..].to_vec();
        found.push(node.to_string());
        return Some(found);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(found) = circle(graph, next, path, done) {
            return Some(found);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn top_level_modules_import_one_way() {
    let graph = graph();
    assert!(
        graph["queues"].contains("core"),
        "the scan sees imports: {graph:?}"
    );
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(found) = circle(&graph, node, &mut Vec::new(), &mut done) {
            panic!("import circle: {}", found.join(" -> "));
        }
    }
    for low in [
        "core",
        "capture",
        "model",
        "memory",
        "chain",
        "guest_buffer",
    ] {
        assert!(
            !graph.get(low).is_some_and(|to| to.contains("queues")),
            "{low} must not import the queue layer"
        );
    }
}

#[test]
fn only_the_adapter_names_vhost_user_and_the_mmap_memory() {
    let mut paths = Vec::new();
    files(&src(), &mut paths);
    let forbidden = [
        "vhost_user_backend",
        "vhost::",
        "VringRwLock",
        "GuestMemoryMmap",
        "GuestMemoryAtomic",
    ];
    for path in paths.iter().filter(|p| module_of(p) != "vhost_user") {
        for line in code(path) {
            for name in forbidden {
                assert!(
                    !line.contains(name),
                    "{} names {name}: {line}",
                    path.display()
                );
            }
        }
    }
}

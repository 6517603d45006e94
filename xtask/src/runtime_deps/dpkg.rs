//! The installed packages and their dependency closure, from dpkg's own
//! database (`/var/lib/dpkg/status`, deb822 paragraphs), so that the check
//! needs no `apt-cache` and sees exactly what is installed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};

/// One installed package's fields that matter here.
#[derive(Debug, Default, Clone)]
struct Package {
    essential: bool,
    required: bool,
    /// Alternatives groups of `Depends` and `Pre-Depends`.
    depends: Vec<Vec<String>>,
}

/// The installed packages.
#[derive(Debug, Default)]
pub(crate) struct Installed {
    packages: BTreeMap<String, Package>,
    /// Virtual package -> installed providers.
    provides: BTreeMap<String, Vec<String>>,
}

impl Installed {
    /// Reads dpkg's status file.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Self::parse(&text))
    }

    /// Parses the status file's text; keeps installed packages only.
    pub(crate) fn parse(text: &str) -> Self {
        let mut installed = Self::default();
        for paragraph in text.split("\n\n") {
            let fields = fields(paragraph);
            let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
            if !get("Status").ends_with(" installed") || get("Package").is_empty() {
                continue;
            }
            let name = get("Package").to_owned();
            let mut depends = groups(get("Depends"));
            depends.extend(groups(get("Pre-Depends")));
            for group in groups(get("Provides")) {
                for virtual_name in group {
                    installed
                        .provides
                        .entry(virtual_name)
                        .or_default()
                        .push(name.clone());
                }
            }
            installed.packages.insert(
                name,
                Package {
                    essential: get("Essential") == "yes",
                    required: get("Priority") == "required",
                    depends,
                },
            );
        }
        installed
    }

    /// The installed packages reachable from `roots` and from every
    /// essential or required package, over `Depends` and `Pre-Depends`.
    /// Of a group of alternatives every installed one is followed (any of
    /// them may be what satisfies it on another machine... but only
    /// installed ones can be named here).
    pub(crate) fn closure<'a>(&self, roots: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
        let mut todo: Vec<String> = roots.map(str::to_owned).collect();
        todo.extend(
            self.packages
                .iter()
                .filter(|(_, p)| p.essential || p.required)
                .map(|(n, _)| n.clone()),
        );
        let mut seen = BTreeSet::new();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some(package) = self.packages.get(&name) else {
                continue;
            };
            for group in &package.depends {
                for alternative in group {
                    if self.packages.contains_key(alternative) {
                        todo.push(alternative.clone());
                    }
                    if let Some(providers) = self.provides.get(alternative) {
                        todo.extend(providers.iter().cloned());
                    }
                }
            }
        }
        seen
    }
}

/// The fields of one paragraph (continuation lines joined).
fn fields(paragraph: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in paragraph.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(key) = &last
                && let Some(value) = fields.get_mut(key)
            {
                let value: &mut String = value;
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            fields.insert(key.to_owned(), value.trim().to_owned());
            last = Some(key.to_owned());
        }
    }
    fields
}

/// `a (>= 1) | b:any, c` -> `[[a, b], [c]]`.
fn groups(field: &str) -> Vec<Vec<String>> {
    field
        .split(',')
        .map(|group| {
            group
                .split('|')
                .filter_map(|alt| {
                    let name = alt.split_whitespace().next()?;
                    Some(name.split(':').next().unwrap_or(name).to_owned())
                })
                .collect::<Vec<_>>()
        })
        .filter(|g| !g.is_empty())
        .collect()
}

/// Which installed package ships each file: dpkg's `info/*.list` files,
/// read once (one `dpkg-query -S` per file would scan them all each time).
#[derive(Debug, Default)]
pub(crate) struct FileOwners {
    owners: BTreeMap<String, String>,
}

impl FileOwners {
    /// Reads every `*.list` file of `info_dir` (`/var/lib/dpkg/info`).
    pub(crate) fn read(info_dir: &Path) -> Result<Self> {
        let mut owners = BTreeMap::new();
        let entries = std::fs::read_dir(info_dir)
            .with_context(|| format!("cannot list {}", info_dir.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(package) = name.strip_suffix(".list") else {
                continue;
            };
            let package = package.split(':').next().unwrap_or(package).to_owned();
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            for file in text.lines() {
                owners
                    .entry(file.to_owned())
                    .or_insert_with(|| package.clone());
            }
        }
        Ok(Self { owners })
    }

    /// The package shipping `path`.
    pub(crate) fn owner(&self, path: &str) -> Option<&str> {
        self.owners.get(path).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: gstreamer1.0-plugins-base
Status: install ok installed
Priority: optional
Depends: libc6 (>= 2.34), libgstreamer1.0-0 (>= 1.22)
Recommends: gstreamer1.0-x

Package: gstreamer1.0-x
Status: install ok installed
Priority: optional
Depends: libx11-6

Package: libgstreamer1.0-0
Status: install ok installed
Pre-Depends: libc6:any

Package: libc6
Status: install ok installed
Priority: required

Package: libx11-6
Status: install ok installed

Package: mawk
Status: install ok installed
Priority: required
Provides: awk

Package: tool
Status: install ok installed
Depends: awk | gawk,
 libx11-6

Package: gone
Status: deinstall ok config-files
Priority: required
";

    #[test]
    fn recommends_are_not_followed() {
        let installed = Installed::parse(STATUS);
        let closure = installed.closure(["gstreamer1.0-plugins-base"].into_iter());
        assert!(closure.contains("libgstreamer1.0-0"));
        assert!(closure.contains("libc6"));
        assert!(!closure.contains("gstreamer1.0-x"), "{closure:?}");
        assert!(!closure.contains("gone"));
    }

    #[test]
    fn virtual_packages_and_continuation_lines() {
        let installed = Installed::parse(STATUS);
        let closure = installed.closure(["tool"].into_iter());
        assert!(
            closure.contains("mawk") && closure.contains("libx11-6"),
            "{closure:?}"
        );
    }

    #[test]
    fn dependency_groups() {
        assert_eq!(
            groups("a (>= 1) | b:any, c"),
            [vec!["a".to_owned(), "b".to_owned()], vec!["c".to_owned()]]
        );
    }
}

//! Putting the project into the fresh root.
//!
//! Why a `git clone` of HEAD by default: it is what CI checks out, so files
//! that exist only in this checkout (untracked, ignored, uncommitted edits,
//! a warm `target/`) cannot make the check pass. `--worktree` then lays the
//! working tree over the clone (tracked and untracked-but-not-ignored files,
//! deletions too), to check uncommitted work before committing it.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::host;
use crate::process;

/// A git command in `dir`.
fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir);
    cmd
}

/// The stdout of a git command that must succeed.
fn git_output(cmd: &mut Command) -> Result<Vec<u8>> {
    let output = process::capture(cmd)?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            process::display(cmd),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output.stdout)
}

/// The commit checked out in `dir`.
pub(crate) fn head(dir: &Path) -> Result<String> {
    let out = git_output(git(dir).args(["rev-parse", "HEAD"]))?;
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// How many paths `git status --porcelain` lists (uncommitted changes,
/// untracked files).
pub(crate) fn uncommitted(dir: &Path) -> Result<usize> {
    let out = git_output(git(dir).args(["status", "--porcelain"]))?;
    Ok(String::from_utf8_lossy(&out).lines().count())
}

/// Clones the checkout at `workspace` into `dest`: its HEAD (a clone of a
/// worktree checks out the worktree's HEAD, even detached; checked).
/// Returns the commit.
pub(crate) fn clone_head(workspace: &Path, dest: &Path) -> Result<String> {
    let commit = head(workspace)?;
    process::run(
        Command::new("git")
            .args([
                "-c",
                "advice.detachedHead=false",
                "clone",
                "--quiet",
                "--no-hardlinks",
            ])
            .arg(workspace)
            .arg(dest),
    )?;
    let cloned = head(dest)?;
    if cloned != commit {
        bail!(
            "the clone checked out {cloned}, not HEAD {commit} of {}",
            workspace.display()
        );
    }
    Ok(commit)
}

/// The paths of the working tree, from `git ls-files -z --cached --others
/// --exclude-standard` output: tracked files (even deleted ones) and
/// untracked ones that are not ignored.
pub(crate) fn listed_paths(ls_files: &[u8]) -> Vec<String> {
    let mut paths: Vec<String> = ls_files
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    // A file with merge conflicts is listed once per stage.
    paths.dedup();
    paths
}

/// Lays the working tree of `workspace` over the clone in `dest`: every
/// listed file copied, every deleted tracked file removed. Returns
/// (copied, removed).
pub(crate) fn overlay_worktree(workspace: &Path, dest: &Path) -> Result<(usize, usize)> {
    let out = git_output(git(workspace).args([
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ]))?;
    let (mut copied, mut removed) = (0, 0);
    for path in listed_paths(&out) {
        let (from, to) = (workspace.join(&path), dest.join(&path));
        host::remove(&to)?;
        if std::fs::symlink_metadata(&from).is_ok() {
            host::copy_tree(&from, &to).with_context(|| format!("copying {path}"))?;
            copied += 1;
        } else {
            removed += 1;
        }
    }
    Ok((copied, removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tempdir;

    #[test]
    fn ls_files_output_is_split_on_nul() {
        assert_eq!(
            listed_paths(b"a.rs\0dir/b c.rs\0dir/b c.rs\0"),
            ["a.rs", "dir/b c.rs"]
        );
        assert!(listed_paths(b"").is_empty());
    }

    /// A repository with one commit and then uncommitted work.
    fn repo(dir: &Path) {
        let run = |args: &[&str]| {
            let mut cmd = git(dir);
            cmd.args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args);
            assert!(process::succeeds(&mut cmd), "git {args:?}");
        };
        run(&["init", "-q"]);
        std::fs::write(dir.join("kept"), "committed").unwrap();
        std::fs::write(dir.join("deleted"), "committed").unwrap();
        std::fs::write(dir.join(".gitignore"), "ignored\n").unwrap();
        run(&["add", "."]);
        run(&["commit", "-q", "-m", "one"]);
        std::fs::write(dir.join("kept"), "edited").unwrap();
        std::fs::remove_file(dir.join("deleted")).unwrap();
        std::fs::write(dir.join("new"), "untracked").unwrap();
        std::fs::write(dir.join("ignored"), "ignored").unwrap();
    }

    #[test]
    fn clone_has_head_only_and_overlay_adds_the_working_tree() {
        let scratch = tempdir::new("xtask-fresh-project").unwrap();
        let work = scratch.path().join("work");
        std::fs::create_dir(&work).unwrap();
        repo(&work);
        assert_eq!(uncommitted(&work).unwrap(), 3);

        let dest = scratch.path().join("clone");
        let commit = clone_head(&work, &dest).unwrap();
        assert_eq!(commit, head(&work).unwrap());
        assert_eq!(
            std::fs::read_to_string(dest.join("kept")).unwrap(),
            "committed"
        );
        assert!(dest.join("deleted").exists());
        assert!(!dest.join("new").exists());

        assert_eq!(overlay_worktree(&work, &dest).unwrap(), (3, 1));
        assert_eq!(
            std::fs::read_to_string(dest.join("kept")).unwrap(),
            "edited"
        );
        assert!(!dest.join("deleted").exists());
        assert_eq!(
            std::fs::read_to_string(dest.join("new")).unwrap(),
            "untracked"
        );
        assert!(!dest.join("ignored").exists(), "ignored files stay out");
    }
}

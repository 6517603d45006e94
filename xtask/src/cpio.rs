//! A `newc` cpio writer: the initramfs format the kernel unpacks. Written
//! here because Debian 12 does not install `cpio` by default and the guest
//! image needs device nodes (`/dev/console`) that only root could create on
//! disk.

use std::io::Write;

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A directory.
    Dir(String),
    /// A regular file with its permission bits.
    File(String, u32, Vec<u8>),
    /// A symbolic link to a target.
    Symlink(String, String),
    /// A character device node (major, minor).
    CharDev(String, u32, u32),
}

fn header(out: &mut Vec<u8>, ino: u32, mode: u32, size: usize, rdev: (u32, u32), name: &str) {
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        1, // nlink
        0, // mtime
        u32::try_from(size).unwrap_or(u32::MAX),
        0,
        0,
        rdev.0,
        rdev.1,
        u32::try_from(name.len() + 1).unwrap_or(u32::MAX),
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        let _ = write!(out, "{f:08x}");
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad(out);
}

fn pad(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The archive of `entries` (paths without a leading `/`), with trailer.
pub(crate) fn archive(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let ino = u32::try_from(i + 1).unwrap_or(u32::MAX);
        match entry {
            Entry::Dir(path) => header(&mut out, ino, 0o040_755, 0, (0, 0), path),
            Entry::File(path, perm, data) => {
                header(&mut out, ino, 0o100_000 | perm, data.len(), (0, 0), path);
                out.extend_from_slice(data);
                pad(&mut out);
            }
            Entry::Symlink(path, target) => {
                header(&mut out, ino, 0o120_777, target.len(), (0, 0), path);
                out.extend_from_slice(target.as_bytes());
                pad(&mut out);
            }
            Entry::CharDev(path, major, minor) => {
                header(&mut out, ino, 0o020_600, 0, (*major, *minor), path);
            }
        }
    }
    header(&mut out, 0, 0, 0, (0, 0), "TRAILER!!!");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout() {
        let a = archive(&[
            Entry::Dir("dev".into()),
            Entry::File("init".into(), 0o755, b"#!/bin/sh\n".to_vec()),
            Entry::CharDev("dev/console".into(), 5, 1),
        ]);
        assert_eq!(&a[..6], b"070701");
        // First header: ino 1, mode 040755, name "dev" (4 bytes with NUL).
        assert_eq!(&a[6..14], b"00000001");
        assert_eq!(&a[14..22], b"000041ed");
        assert_eq!(&a[94..102], b"00000004");
        assert_eq!(&a[110..113], b"dev");
        assert_eq!(a.len() % 4, 0);
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains("init\0"));
        assert!(text.contains("#!/bin/sh\n"));
        assert!(text.ends_with("TRAILER!!!\0\0\0\0") || text.contains("TRAILER!!!\0"));
        // The console node: mode 020600, rdev 5:1.
        let at = text.find("dev/console").unwrap() - 110;
        assert_eq!(&a[at + 14..at + 22], b"00002180");
        assert_eq!(&a[at + 78..at + 86], b"00000005");
        assert_eq!(&a[at + 86..at + 94], b"00000001");
    }
}

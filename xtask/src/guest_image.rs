//! The guest image of the VM tests: a Debian 12 kernel and an initramfs
//! holding busybox, the uio modules, `redir-play` with the glibc it links,
//! the test clips and an init that plays what the kernel command line says;
//! for the viewer's VM tests also the modules of a desktop (bochs DRM for
//! the standard VGA, qxl DRM for QXL's monitors, the PS/2 mouse, evdev; see [`kmod`](crate::kmod)) and
//! the desktop picture ([`guest_desktop`](crate::guest_desktop)).
//!
//! Nothing is installed on the host: the kernel package (the versioned one
//! `linux-image-amd64` depends on) and `busybox-static` are fetched with
//! `apt-get download` and unpacked with `dpkg-deb -x` into
//! `$XDG_CACHE_HOME/vhost-device-media/guest/`, where a second run finds
//! them; the clips are generated there once with `gst-launch-1.0`. The
//! initramfs itself (cheap) is written again on every run, since
//! `redir-play` changes with the code.
//!
//! The init (see [`INIT`]) reads `redir.play=CLIP` and `redir.args=A,B,...`
//! from `/proc/cmdline`, loads `uio` and `uio_pci_generic`, gives it the
//! device's ID (`1af4 1079`; `virtio_pci` is not in the image, so nothing
//! else claims the device), reserves hugepages if the command line did not,
//! runs `redir-play --pci auto` (the player with the broker in its own
//! process: the guest has no other player, so no `mediaredir-broker`),
//! prints `REDIR-RESULT {json}` on the serial console and powers off.
//! With `redir.desktop=X:Y:W:H[,OPTION]...` it first loads the desktop's modules,
//! unbinds the console from the framebuffer, writes the picture to
//! `/dev/fb0` (prints `REDIR-DESKTOP`), watches the mouse (prints
//! `REDIR-CLICK` on a left button press) and plays with
//! `--at 0:geometry=X:Y:W:H[,OPTION]...` (the options of `redir-play`'s
//! geometry command: `colorkey`, `display=N`...).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cpio::{self, Entry};
use crate::flatc_install::project_cache;
use crate::{guest_desktop, kmod, process};

/// The clips the guest carries: (file name, what it holds).
pub(crate) const CLIPS: &[(&str, &str)] = &[
    ("audio.webm", "2 s Opus"),
    ("video.webm", "2 s VP9"),
    ("av.webm", "2 s VP9 + Opus"),
    ("long.webm", "10 s VP9 + Opus"),
    ("green.webm", "60 s solid green VP9, 10 frames a second"),
];

/// The modules the viewer's desktop needs (their dependencies come
/// along): the standard VGA's DRM driver, which gives `/dev/fb0` (DRM's
/// fbdev emulation; qboot runs no VGA BIOS, so there is no firmware
/// framebuffer), QXL's (the same for the multi-monitor test: each driver
/// takes only its own device), the PS/2 mouse (i8042 is built in) and its
/// events.
pub(crate) const DESKTOP_MODULES: &[&str] = &["bochs", "qxl", "psmouse", "evdev"];

/// The guest's init script.
pub(crate) const INIT: &str = r#"#!/bin/busybox sh
# vhost-device-media test guest: play redir.play=CLIP through the device.
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
result() { echo "REDIR-RESULT $1"; sync; poweroff -f; sleep 5; }
fail() { result "{\"ok\":false,\"error\":\"$1\"}"; }
# redir.desktop=X:Y:W:H[,OPT]...: a desktop on /dev/fb0 (bochs or qxl)
# showing /desktop.bgrx (a player's key-coloured placeholder at X:Y:W:H
# with its control bar); the player plays there (geometry=X:Y:W:H[,OPT]...); a
# left button press on the PS/2 mouse prints REDIR-CLICK.
desktop() {
    for m in $(cat /lib/modules/desktop); do insmod "/lib/modules/$m.ko" || fail "insmod $m"; done
    n=0
    while [ ! -e /sys/class/graphics/fb0/stride ]; do
        n=$((n + 1)); [ $n -lt 100 ] || fail "no /dev/fb0"; sleep 0.1
    done
    # The console off the framebuffer: the picture stays as drawn.
    for v in /sys/class/vtconsole/vtcon*; do
        grep -q 'frame buffer' "$v/name" && echo 0 > "$v/bind"
    done
    size="$(cat /sys/class/graphics/fb0/virtual_size)"; stride="$(cat /sys/class/graphics/fb0/stride)"
    [ "$size" = "$(cat /desktop.size)" ] || fail "fb0 is $size, the picture $(cat /desktop.size)"
    w=${size%,*}; h=${size#*,}
    if [ "$stride" = $((w * 4)) ]; then
        cat /desktop.bgrx > /dev/fb0
    else
        y=0
        while [ $y -lt "$h" ]; do
            dd if=/desktop.bgrx of=/dev/fb0 bs=$((w * 4)) skip=$y seek=$((y * stride)) \
                oflag=seek_bytes count=1 conv=notrunc 2>/dev/null
            y=$((y + 1))
        done
    fi
    n=0
    until grep -qi mouse /sys/class/input/event*/device/name 2>/dev/null; do
        n=$((n + 1)); [ $n -lt 100 ] || fail "no mouse"; sleep 0.1
    done
    # One event (24 bytes) at a time from a descriptor kept open, so that
    # none is lost between reads; EV_KEY BTN_LEFT 1 ends in these bytes.
    for e in /sys/class/input/event*; do
        grep -qi mouse "$e/device/name" || continue
        (
            exec 3< "/dev/input/${e##*/}"
            while :; do
                ev="$(dd bs=24 count=1 <&3 2>/dev/null | hexdump -v -e '24/1 "%02x"')"
                case "$ev" in *0100100101000000) echo "REDIR-CLICK $(cat "$e/device/name")" ;; esac
            done
        ) &
    done
    echo "REDIR-DESKTOP ${w}x$h stride $stride, video at $1"
    args="$args --at 0:geometry=$1"
}
play=""; args=""; place=""
for w in $(cat /proc/cmdline); do
    case "$w" in
        redir.play=*) play="${w#redir.play=}" ;;
        redir.args=*) args="$(echo "${w#redir.args=}" | tr , ' ')" ;;
        redir.log=*) export RUST_LOG="${w#redir.log=}" ;;
        redir.desktop=*) place="${w#redir.desktop=}" ;;
    esac
done
[ -n "$play" ] || result '{"ok":false,"error":"no redir.play= on the kernel command line"}'
[ -z "$place" ] || desktop "$place"
insmod /lib/modules/uio.ko || result '{"ok":false,"error":"insmod uio"}'
insmod /lib/modules/uio_pci_generic.ko || result '{"ok":false,"error":"insmod uio_pci_generic"}'
echo "1af4 1079" > /sys/bus/pci/drivers/uio_pci_generic/new_id
[ "$(cat /proc/sys/vm/nr_hugepages)" -gt 0 ] || echo 64 > /proc/sys/vm/nr_hugepages
echo "redir-guest: hugepages $(cat /proc/sys/vm/nr_hugepages), playing /clips/$play $args"
start=$(date +%s)
{ /bin/redir-play --pci auto $args "/clips/$play"; echo $? > /tmp/rc; } 2>&1 | tee /tmp/out
rc=$(cat /tmp/rc)
secs=$(( $(date +%s) - start ))
played="$(grep '^redir-play: played' /tmp/out | tail -n 1 | tr -d '"\\')"
resets="$(grep '^redir-play: device resets' /tmp/out | tail -n 1 | tr -d '"\\')"
err="$(grep 'redir-play: error' /tmp/out | tail -n 1 | tr -d '"\\')"
if [ "$rc" = 0 ]; then ok=true; else ok=false; fi
result "{\"ok\":$ok,\"clip\":\"$play\",\"rc\":$rc,\"seconds\":$secs,\"played\":\"$played\",\"resets\":\"$resets\",\"error\":\"$err\"}"
"#;

/// The pieces QEMU boots.
#[derive(Debug, Clone)]
pub(crate) struct GuestImage {
    /// The kernel (`-kernel`).
    pub(crate) kernel: PathBuf,
    /// The initramfs (`-initrd`).
    pub(crate) initrd: PathBuf,
    /// Where the clips are on the host (same names as in the guest).
    pub(crate) clips: PathBuf,
    /// Option ROMs for `-kernel` (a second `-L`).
    pub(crate) firmware: PathBuf,
}

/// `$XDG_CACHE_HOME/vhost-device-media/guest`.
fn cache_dir() -> Result<PathBuf> {
    Ok(project_cache()?.join("guest"))
}

/// The versioned kernel package `linux-image-amd64` depends on, from
/// `apt-cache depends` output.
pub(crate) fn kernel_package(depends: &str) -> Option<String> {
    depends.lines().find_map(|line| {
        let name = line.trim().strip_prefix("Depends:")?.trim();
        (name.starts_with("linux-image-") && name.ends_with("-amd64")).then(|| name.to_owned())
    })
}

/// Downloads `package` (`version`: a given one) into `dir` unless a `.deb`
/// of it is there; its path.
fn download(dir: &Path, package: &str, version: Option<&str>) -> Result<PathBuf> {
    let find = || -> Result<Option<PathBuf>> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let wanted = version.is_none_or(|v| {
                let v = v.split_once(':').map_or(v, |(_, rest)| rest);
                name.contains(&v.replace('~', "%7e")) || name.contains(v)
            });
            if name.starts_with(&format!("{package}_")) && name.ends_with(".deb") && wanted {
                return Ok(Some(path));
            }
        }
        Ok(None)
    };
    if let Some(path) = find()? {
        return Ok(path);
    }
    let spec = match version {
        Some(v) => format!("{package}={v}"),
        None => package.to_owned(),
    };
    process::run(
        Command::new("apt-get")
            .arg("download")
            .arg(&spec)
            .current_dir(dir),
    )
    .with_context(|| format!("downloading {package} (apt-get update first?)"))?;
    find()?.with_context(|| format!("apt-get download left no {package} .deb"))
}

/// Unpacks `deb` into `dir` once (a stamp marks it done).
fn unpack(deb: &Path, dir: &Path) -> Result<()> {
    let stamp = dir.join(".unpacked");
    if stamp.exists() {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    process::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir))?;
    std::fs::write(stamp, "")?;
    Ok(())
}

/// The gst-launch pipeline of a clip.
fn clip_pipeline(name: &str, location: &str) -> Vec<String> {
    let (video_frames, audio_buffers) = match name {
        "audio.webm" => (0, 100),
        "video.webm" => (60, 0),
        "long.webm" => (300, 500),
        "green.webm" => (600, 0),
        _ => (60, 100),
    };
    // The viewer's VM test wants one colour it can check every pixel for.
    let (pattern, rate) = match name {
        "green.webm" => ("solid-color foreground-color=0xff00ff00", 10),
        _ => ("ball", 30),
    };
    let mut p: Vec<String> = vec!["-q".into()];
    let mut words = |s: &str| p.extend(s.split_whitespace().map(str::to_owned));
    words(&format!("webmmux name=mux ! filesink location={location}"));
    if video_frames > 0 {
        words(&format!(
            "videotestsrc num-buffers={video_frames} pattern={pattern} ! \
             video/x-raw,format=I420,width=320,height=240,framerate={rate}/1 ! \
             vp9enc deadline=1 ! queue ! mux."
        ));
    }
    if audio_buffers > 0 {
        words(&format!(
            "audiotestsrc num-buffers={audio_buffers} samplesperbuffer=960 ! \
             audio/x-raw,rate=48000,channels=2 ! opusenc ! queue ! mux."
        ));
    }
    p
}

/// Generates the clips that are missing.
fn ensure_clips(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, what) in CLIPS {
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        println!("guest image: generating {name} ({what})");
        let tmp = dir.join(format!(".{name}.tmp"));
        process::run(
            Command::new("gst-launch-1.0").args(clip_pipeline(name, &tmp.display().to_string())),
        )
        .context("generating a clip (is GStreamer installed? `cargo xtask setup`)")?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}

/// The shared libraries `binary` needs, from `ldd` output: absolute paths
/// (the dynamic loader included).
pub(crate) fn ldd_paths(ldd: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in ldd.lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            out.push(path.to_owned());
        }
    }
    out
}

/// Adds `path` and its parent directories (once) to `entries`.
fn add_dirs(entries: &mut Vec<Entry>, path: &str) {
    let mut at = String::new();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if !at.is_empty() {
            at.push('/');
        }
        at.push_str(part);
        if !entries
            .iter()
            .any(|e| matches!(e, Entry::Dir(d) if *d == at))
        {
            entries.push(Entry::Dir(at.clone()));
        }
    }
}

fn add_file(entries: &mut Vec<Entry>, path: &str, mode: u32, data: Vec<u8>) {
    add_dirs(entries, path);
    entries.push(Entry::File(
        path.trim_start_matches('/').to_owned(),
        mode,
        data,
    ));
}

/// The name a user's clip gets in the guest: `input.<its extension>` (the
/// player picks the demuxer by content, the extension is for people).
pub(crate) fn input_name(path: &Path) -> String {
    match path.extension() {
        Some(ext) => format!("input.{}", ext.to_string_lossy()),
        None => "input".to_owned(),
    }
}

/// `binary` without its debug information (28 MB -> 4 MB for a debug
/// build: the initramfs is loaded and unpacked under TCG, where every
/// megabyte costs), or as it is when `strip` (binutils) is missing.
fn stripped(binary: &Path, cache: &Path) -> Result<Vec<u8>> {
    let copy = cache.join("redir-play.stripped");
    std::fs::copy(binary, &copy).with_context(|| format!("copying {}", binary.display()))?;
    if !process::succeeds(Command::new("strip").arg("--strip-debug").arg(&copy)) {
        println!("guest image: no `strip`; the guest gets the unstripped redir-play");
    }
    Ok(std::fs::read(&copy)?)
}

/// Provides the kernel, clips and a fresh initramfs with `redir_play` (and
/// `extra` as `clips/`[`input_name`]).
pub(crate) fn ensure(redir_play: &Path, extra: Option<&Path>) -> Result<GuestImage> {
    let cache = cache_dir()?;
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs)?;
    let depends =
        process::capture(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
    let kernel_pkg = kernel_package(&String::from_utf8_lossy(&depends.stdout))
        .context("apt-cache knows no kernel behind linux-image-amd64 (apt-get update?)")?;
    let kernel_deb = download(&debs, &kernel_pkg, None)?;
    let busybox_deb = download(&debs, "busybox-static", None)?;
    // `-kernel` needs the linuxboot_dma.bin option ROM, which the QEMU
    // build does not make (no blobs) and seabios does not ship: take it
    // from the matching qemu-system-data.
    let data_deb = download(&debs, "qemu-system-data", Some(crate::qemu::DEBIAN_VERSION))?;
    let data_dir = cache.join("qemu-system-data");
    unpack(&data_deb, &data_dir)?;
    let firmware = data_dir.join("usr/share/qemu");
    if !firmware.join("linuxboot_dma.bin").is_file() {
        bail!("{} has no linuxboot_dma.bin", data_deb.display());
    }
    let kernel_dir = cache.join(&kernel_pkg);
    unpack(&kernel_deb, &kernel_dir)?;
    let busybox_dir = cache.join("busybox-static");
    unpack(&busybox_deb, &busybox_dir)?;
    let version = kernel_pkg
        .strip_prefix("linux-image-")
        .unwrap_or(&kernel_pkg)
        .to_owned();
    let kernel = kernel_dir.join("boot").join(format!("vmlinuz-{version}"));
    if !kernel.is_file() {
        bail!("{} has no {}", kernel_deb.display(), kernel.display());
    }
    let clips = cache.join("clips");
    ensure_clips(&clips)?;

    let mut entries = vec![
        Entry::Dir("dev".into()),
        Entry::CharDev("dev/console".into(), 5, 1),
        Entry::Dir("proc".into()),
        Entry::Dir("sys".into()),
        Entry::Dir("tmp".into()),
        Entry::Dir("bin".into()),
    ];
    add_file(&mut entries, "init", 0o755, INIT.as_bytes().to_vec());
    let busybox = std::fs::read(busybox_dir.join("bin/busybox")).context("busybox-static")?;
    add_file(&mut entries, "bin/busybox", 0o755, busybox);
    entries.push(Entry::Symlink("bin/sh".into(), "busybox".into()));
    let modules = kernel_dir.join("lib/modules").join(&version);
    let desktop = kmod::with_dependencies(&modules, DESKTOP_MODULES)?;
    for module in kmod::with_dependencies(&modules, &["uio_pci_generic"])?
        .iter()
        .chain(&desktop)
    {
        let data = std::fs::read(&module.path)
            .with_context(|| format!("reading {}", module.path.display()))?;
        add_file(
            &mut entries,
            &format!("lib/modules/{}.ko", module.name),
            0o644,
            data,
        );
    }
    let order: Vec<&str> = desktop.iter().map(|m| m.name.as_str()).collect();
    add_file(
        &mut entries,
        "lib/modules/desktop",
        0o644,
        format!("{}\n", order.join("\n")).into_bytes(),
    );
    add_file(&mut entries, "desktop.bgrx", 0o644, guest_desktop::bgrx());
    let (w, h) = guest_desktop::SIZE;
    add_file(
        &mut entries,
        "desktop.size",
        0o644,
        format!("{w},{h}\n").into_bytes(),
    );
    add_file(
        &mut entries,
        "bin/redir-play",
        0o755,
        stripped(redir_play, &cache)?,
    );
    let ldd = process::capture(Command::new("ldd").arg(redir_play))?;
    for lib in ldd_paths(&String::from_utf8_lossy(&ldd.stdout)) {
        let data = std::fs::read(&lib).with_context(|| format!("reading {lib}"))?;
        add_file(&mut entries, &lib, 0o755, data);
    }
    for (name, _) in CLIPS {
        add_file(
            &mut entries,
            &format!("clips/{name}"),
            0o644,
            std::fs::read(clips.join(name))?,
        );
    }
    if let Some(path) = extra {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        add_file(
            &mut entries,
            &format!("clips/{}", input_name(path)),
            0o644,
            data,
        );
    }
    let initrd = cache.join("initramfs.cpio");
    std::fs::write(&initrd, cpio::archive(&entries))?;
    Ok(GuestImage {
        kernel,
        initrd,
        clips,
        firmware,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_versioned_kernel() {
        let out = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(
            kernel_package(out).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        assert_eq!(kernel_package("linux-image-amd64\n"), None);
    }

    #[test]
    fn reads_ldd_output() {
        let out = "\tlinux-vdso.so.1 (0x00007ff1e52fb000)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x1)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x2)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x3)\n";
        assert_eq!(
            ldd_paths(out),
            vec![
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
    }

    #[test]
    fn clips_have_pipelines() {
        for (name, _) in CLIPS {
            let p = clip_pipeline(name, "/x").join(" ");
            assert!(p.contains("webmmux"));
            assert_eq!(p.contains("vp9enc"), *name != "audio.webm");
            assert_eq!(
                p.contains("opusenc"),
                !["video.webm", "green.webm"].contains(name)
            );
        }
    }

    #[test]
    fn input_names() {
        assert_eq!(input_name(Path::new("/a/b.mp4")), "input.mp4");
        assert_eq!(input_name(Path::new("clip")), "input");
    }

    #[test]
    fn init_reports_and_powers_off() {
        assert!(INIT.starts_with("#!/bin/busybox sh\n"));
        assert!(INIT.contains("REDIR-RESULT"));
        assert!(INIT.contains("poweroff -f"));
        assert!(INIT.contains("--pci auto"));
    }

    #[test]
    fn init_draws_a_desktop_when_asked() {
        for step in [
            "redir.desktop=*) place=",
            "cat /desktop.bgrx > /dev/fb0",
            "echo \"REDIR-CLICK",
            "--at 0:geometry=$1\"",
        ] {
            assert!(INIT.contains(step), "the init lacks {step:?}");
        }
    }
}

//! QEMU and libvirt configuration for the media-redirection device.
//!
//! QEMU has no device of its own for virtio-media-redir (virtio ID 57); it
//! runs through QEMU's generic vhost-user device, whose virtqueues and config
//! space the daemon (`vhost-device-media`) serves:
//!
//! - QEMU 10.2+: `vhost-user-test-device-pci` ([`DeviceFlavor::Test`]);
//! - QEMU up to 10.1 (Debian 12's backported 10.0.2): `vhost-user-device-pci`
//!   ([`DeviceFlavor::Legacy`]), which needs `patches/0001-virtio-media-redir.patch`
//!   to be user-creatable at all.
//!
//! Every QEMU version also needs ID 57 in its virtio name table
//! (`virtio_id_to_name()` asserts otherwise), hence the patch on 10.2+ too.
//! `cargo xtask qemu` builds a patched QEMU 10.0.2 (cached outside the
//! repository); `README.md` documents the command line flag by flag, with a
//! libvirt domain XML (`libvirt/vm.xml`) and a systemd unit template for the
//! daemon (`systemd/vhost-user-mediaredir@.service`).
//!
//! [`QemuCommand`] builds the command line those documents show; the
//! `qemu attach` step of `cargo xtask test` runs it against the real daemon.

use std::path::PathBuf;

/// The virtio device ID of virtio-media-redir (spec section 2).
pub const VIRTIO_ID_MEDIA_REDIR: u16 = 57;
/// The PCI vendor ID of virtio devices.
pub const PCI_VENDOR_ID_VIRTIO: u16 = 0x1af4;
/// The PCI device ID of a modern virtio-media-redir device: 0x1040 + 57.
pub const PCI_DEVICE_ID_MEDIA_REDIR: u16 = 0x1040 + VIRTIO_ID_MEDIA_REDIR;
/// The name of ID 57 in the patched QEMU's virtio name table.
pub const VIRTIO_NAME: &str = "virtio-media-redir";
/// Size of the device's config space in bytes.
pub const CONFIG_SIZE: u32 = 48;
/// The virtqueues that are not transmit queues: controlq, eventq, rxq.
pub const FIXED_QUEUES: u32 = 3;
/// The daemon's default `--num-txqs`.
pub const DEFAULT_NUM_TXQS: u32 = 4;
/// The ring size asked of QEMU (the daemon accepts up to 1024).
pub const DEFAULT_VQ_SIZE: u32 = 256;
/// The version of the QEMU source the patches apply to.
pub const PATCHED_QEMU_VERSION: &str = "10.0.2";

/// Which of QEMU's generic vhost-user PCI devices carries the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceFlavor {
    /// `vhost-user-device-pci`: QEMU up to 10.1, with the patch.
    Legacy,
    /// `vhost-user-test-device-pci`: QEMU 10.2 and later.
    Test,
}

impl DeviceFlavor {
    /// The `-device` driver name.
    pub fn driver(self) -> &'static str {
        match self {
            DeviceFlavor::Legacy => "vhost-user-device-pci",
            DeviceFlavor::Test => "vhost-user-test-device-pci",
        }
    }

    /// The flavor a QEMU of this version has (the renaming came with 10.2).
    pub fn for_version(major: u32, minor: u32) -> Self {
        if (major, minor) >= (10, 2) {
            DeviceFlavor::Test
        } else {
            DeviceFlavor::Legacy
        }
    }
}

/// Parses the first line of `qemu-system-x86_64 --version`
/// (`QEMU emulator version 10.0.2 (Debian ...)`) into (major, minor, micro).
pub fn parse_qemu_version(output: &str) -> Option<(u32, u32, u32)> {
    let rest = output.split("version ").nth(1)?;
    let word = rest.split_whitespace().next()?;
    let mut parts = word.split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next()??;
    let micro = parts.next().flatten().unwrap_or(0);
    Some((major, minor, micro))
}

/// A QEMU command line (x86_64, q35, TCG) with the media-redirection device.
///
/// [`QemuCommand::args`] returns the arguments after the program name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuCommand {
    /// Guest RAM in MiB (`-m`, and the size of the shared memfd backend).
    pub memory_mib: u32,
    /// The daemon's vhost-user socket.
    pub socket_path: PathBuf,
    /// Which generic device to use.
    pub flavor: DeviceFlavor,
    /// The daemon's `--num-txqs`; the device has [`FIXED_QUEUES`] more queues.
    pub num_txqs: u32,
    /// Virtqueue ring size.
    pub vq_size: u32,
    /// `reconnect-ms` of the chardev; `None` connects once, at start-up.
    ///
    /// With it QEMU reconnects to a restarted daemon. QEMU 10.0.2's generic
    /// device needs `patches/0003-vhost-user-base-reconnect.patch` for that
    /// (unpatched it fails to realize on the asynchronously connecting
    /// chardev, "Failed to set msg fds", and never re-initialises its
    /// vhost state after a disconnect).
    pub reconnect_ms: Option<u32>,
    /// The QEMU device id (`-device ...,id=`), for QMP paths.
    pub device_id: String,
    /// Firmware directory (`-L`): Debian's seabios package.
    pub firmware_dir: PathBuf,
    /// Start paused (`-S`): the device is created and the vhost-user
    /// handshake done, but no guest code runs.
    pub paused: bool,
    /// A QMP server on this Unix socket.
    pub qmp_socket: Option<PathBuf>,
}

impl QemuCommand {
    /// The defaults: 256 MiB, the daemon's 4 transmit queues, ring size 256,
    /// the patched 10.0.2 device, no reconnect, not paused, no QMP.
    pub fn new(socket_path: impl Into<PathBuf>) -> Self {
        Self {
            memory_mib: 256,
            socket_path: socket_path.into(),
            flavor: DeviceFlavor::Legacy,
            num_txqs: DEFAULT_NUM_TXQS,
            vq_size: DEFAULT_VQ_SIZE,
            reconnect_ms: None,
            device_id: "vdm0".into(),
            firmware_dir: PathBuf::from("/usr/share/seabios"),
            paused: false,
            qmp_socket: None,
        }
    }

    /// The number of virtqueues (`num_vqs`).
    pub fn num_vqs(&self) -> u32 {
        FIXED_QUEUES + self.num_txqs
    }

    /// The `-device` value.
    pub fn device_arg(&self) -> String {
        format!(
            "{},id={},chardev=vdm,virtio-id={},num_vqs={},vq_size={},config_size={}",
            self.flavor.driver(),
            self.device_id,
            VIRTIO_ID_MEDIA_REDIR,
            self.num_vqs(),
            self.vq_size,
            CONFIG_SIZE
        )
    }

    /// The arguments (without the program name).
    pub fn args(&self) -> Vec<String> {
        let mut chardev = format!("socket,id=vdm,path={}", self.socket_path.display());
        if let Some(ms) = self.reconnect_ms {
            chardev.push_str(&format!(",reconnect-ms={ms}"));
        }
        let mut args: Vec<String> = vec![
            "-M".into(),
            "q35".into(),
            "-accel".into(),
            "tcg".into(),
            "-m".into(),
            format!("{}M", self.memory_mib),
            "-object".into(),
            format!(
                "memory-backend-memfd,id=mem,size={}M,share=on",
                self.memory_mib
            ),
            "-machine".into(),
            "memory-backend=mem".into(),
            "-chardev".into(),
            chardev,
            "-device".into(),
            self.device_arg(),
            "-nographic".into(),
            "-L".into(),
            self.firmware_dir.display().to_string(),
            "-nic".into(),
            "none".into(),
        ];
        if let Some(qmp) = &self.qmp_socket {
            args.push("-qmp".into());
            args.push(format!("unix:{},server=on,wait=off", qmp.display()));
        }
        if self.paused {
            args.push("-S".into());
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_spec() {
        assert_eq!(VIRTIO_ID_MEDIA_REDIR, 57);
        assert_eq!(PCI_DEVICE_ID_MEDIA_REDIR, 0x1079);
    }

    #[test]
    fn default_command_line() {
        let cmd = QemuCommand::new("/run/vhost-device-media/vm1.sock");
        assert_eq!(cmd.num_vqs(), 7);
        assert_eq!(
            cmd.args().join(" "),
            "-M q35 -accel tcg -m 256M \
             -object memory-backend-memfd,id=mem,size=256M,share=on \
             -machine memory-backend=mem \
             -chardev socket,id=vdm,path=/run/vhost-device-media/vm1.sock \
             -device vhost-user-device-pci,id=vdm0,chardev=vdm,virtio-id=57,num_vqs=7,vq_size=256,config_size=48 \
             -nographic -L /usr/share/seabios -nic none"
        );
    }

    #[test]
    fn options_show_up() {
        let mut cmd = QemuCommand::new("/s");
        cmd.flavor = DeviceFlavor::Test;
        cmd.memory_mib = 1024;
        cmd.num_txqs = 1;
        cmd.reconnect_ms = Some(1000);
        cmd.paused = true;
        cmd.qmp_socket = Some("/q".into());
        let args = cmd.args();
        assert!(args.contains(&"1024M".to_string()));
        assert!(args.contains(&"memory-backend-memfd,id=mem,size=1024M,share=on".to_string()));
        assert!(args.contains(&"socket,id=vdm,path=/s,reconnect-ms=1000".to_string()));
        assert!(args.contains(
            &"vhost-user-test-device-pci,id=vdm0,chardev=vdm,virtio-id=57,num_vqs=4,vq_size=256,config_size=48"
                .to_string()
        ));
        assert_eq!(
            &args[args.len() - 3..],
            ["-qmp", "unix:/q,server=on,wait=off", "-S"]
        );
    }

    #[test]
    fn versions_parse_and_pick_the_device() {
        assert_eq!(
            parse_qemu_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\nCopyright"),
            Some((10, 0, 2))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.15"),
            Some((7, 2, 15))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 10.2.0-rc1"),
            Some((10, 2, 0))
        );
        assert_eq!(parse_qemu_version("nonsense"), None);
        assert_eq!(DeviceFlavor::for_version(10, 0), DeviceFlavor::Legacy);
        assert_eq!(DeviceFlavor::for_version(10, 1), DeviceFlavor::Legacy);
        assert_eq!(DeviceFlavor::for_version(10, 2), DeviceFlavor::Test);
        assert_eq!(DeviceFlavor::for_version(11, 0), DeviceFlavor::Test);
    }
}

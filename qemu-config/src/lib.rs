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
//! With [`QemuCommand::spice`] and [`QemuCommand::vga`] the same QEMU also
//! serves the VM's desktop over Spice (QEMU's own Spice server, the
//! standard VGA as its display), as a VDI host runs it; [`MediaRelay`]
//! (patch 0004) puts the media port into that Spice session.

mod relay;

use std::path::PathBuf;

pub use relay::MediaRelay;

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

/// Where QEMU's Spice server listens (`-spice port=,addr=` or
/// `-spice unix=on,addr=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpiceListen {
    /// TCP on `addr:port`.
    Tcp {
        /// The address to bind (`127.0.0.1` for a loopback-only desktop).
        addr: String,
        /// The TCP port.
        port: u16,
    },
    /// A Unix socket at this path.
    Unix(PathBuf),
}

/// QEMU's own Spice server: the VM's desktop (display, keyboard, mouse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiceServer {
    /// Where it listens.
    pub listen: SpiceListen,
    /// A file holding the ticket (password) clients must give; `None`
    /// turns ticketing off (`disable-ticketing=on`). QEMU reads it through
    /// a `secret` object (`password-secret=`; QEMU 9 removed `password=`).
    pub password_file: Option<PathBuf>,
}

impl SpiceServer {
    /// The id of the `secret` object holding the password.
    pub const SECRET_ID: &'static str = "spice-password";

    /// A server without ticketing on `listen`.
    pub fn new(listen: SpiceListen) -> Self {
        Self {
            listen,
            password_file: None,
        }
    }

    /// The arguments: `-object secret,...` (with a password) and `-spice ...`.
    pub fn args(&self) -> Vec<String> {
        let mut spice = match &self.listen {
            SpiceListen::Tcp { addr, port } => format!("port={port},addr={addr}"),
            SpiceListen::Unix(path) => format!("unix=on,addr={}", path.display()),
        };
        let mut args = Vec::new();
        match &self.password_file {
            Some(file) => {
                args.push("-object".into());
                args.push(format!(
                    "secret,id={},file={}",
                    Self::SECRET_ID,
                    file.display()
                ));
                spice.push_str(&format!(",password-secret={}", Self::SECRET_ID));
            }
            None => spice.push_str(",disable-ticketing=on"),
        }
        args.push("-spice".into());
        args.push(spice);
        args
    }
}

/// The guest's display adapter (`-vga`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vga {
    /// The standard VGA (`-vga std`, PCI `1234:1111`, Bochs VBE): what the
    /// firmware and every guest draw on without a driver of their own.
    Std,
    /// No display adapter (`-vga none`).
    None,
    /// QXL (`qxl-vga`) with up to `outputs` monitors, all in one Spice
    /// display channel (as Linux guests with the qxl DRM driver use them).
    /// Without its VGA BIOS (`romfile=`): for guests booted straight into
    /// their kernel, which drives the device itself.
    Qxl {
        /// `max_outputs`: the monitors the guest may enable.
        outputs: u16,
    },
}

impl Vga {
    /// The arguments that add it.
    pub fn args(self) -> Vec<String> {
        let vga = |v: &str| vec!["-vga".to_owned(), v.to_owned()];
        match self {
            Vga::Std => vga("std"),
            Vga::None => vga("none"),
            Vga::Qxl { outputs } => {
                let mut args = vga("none");
                args.push("-device".into());
                args.push(format!("qxl-vga,max_outputs={outputs},romfile="));
                args
            }
        }
    }
}

/// A VM desktop without a guest OS, for the viewer's tests and demo: the
/// standard VGA, no disk, so that the firmware (SeaBIOS) draws its boot
/// messages and "No bootable device" on a text screen and stays there (no
/// reboot), served by QEMU's Spice server, with QMP for `screendump`.
#[derive(Debug, Clone)]
pub struct FirmwareDesktop {
    /// The desktop's Spice server.
    pub spice: SpiceServer,
    /// QMP's Unix socket.
    pub qmp: PathBuf,
    /// Firmware directory (`-L`): Debian's seabios package.
    pub firmware_dir: PathBuf,
    /// Displays beyond the first: each a `secondary-vga` (id `vgaN`), its
    /// own Spice display channel, showing QEMU's "not initialized" screen
    /// (the firmware draws on the first only).
    pub extra_displays: u32,
    /// The media port in the desktop's Spice session, relayed to the
    /// daemon (needs patch 0004).
    pub media_relay: Option<MediaRelay>,
}

impl FirmwareDesktop {
    /// Spice and QMP on these Unix sockets, no ticketing.
    pub fn new(spice: PathBuf, qmp: PathBuf) -> Self {
        Self {
            spice: SpiceServer::new(SpiceListen::Unix(spice)),
            qmp,
            firmware_dir: PathBuf::from("/usr/share/seabios"),
            extra_displays: 0,
            media_relay: None,
        }
    }

    /// The arguments (without the program name).
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "-machine",
            "pc",
            "-m",
            "64",
            "-nodefaults",
            "-nic",
            "none",
            "-display",
            "none",
            "-vga",
            "std",
            "-boot",
            "reboot-timeout=-1",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        for n in 1..=self.extra_displays {
            args.push("-device".into());
            args.push(format!("secondary-vga,id=vga{n}"));
        }
        args.push("-L".into());
        args.push(self.firmware_dir.display().to_string());
        args.extend(self.spice.args());
        if let Some(relay) = &self.media_relay {
            args.extend(relay.args());
        }
        args.push("-qmp".into());
        args.push(format!("unix:{},server=on,wait=off", self.qmp.display()));
        args
    }
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
    /// QEMU's own Spice server (the desktop); `None`: no Spice.
    pub spice: Option<SpiceServer>,
    /// `-vga`; `None` leaves the machine's default (q35: the standard VGA).
    /// The local display is off either way (`-nographic`).
    pub vga: Option<Vga>,
    /// The media port in the Spice session, relayed to the daemon's Unix
    /// uplink (`chardev-relay`, docs/qemu-relay.md); needs `spice`.
    pub media_relay: Option<MediaRelay>,
}

impl QemuCommand {
    /// The defaults: 256 MiB, the daemon's 4 transmit queues, ring size 256,
    /// the patched 10.0.2 device, no reconnect, not paused, no QMP, no
    /// Spice, the machine's default VGA.
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
            spice: None,
            vga: None,
            media_relay: None,
        }
    }

    /// Adds the VM's Spice desktop: QEMU's Spice server on `spice` and the
    /// standard VGA as the display it shows.
    pub fn with_spice_desktop(mut self, spice: SpiceServer) -> Self {
        self.spice = Some(spice);
        self.vga = Some(Vga::Std);
        self
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
        if let Some(vga) = self.vga {
            args.extend(vga.args());
        }
        if let Some(spice) = &self.spice {
            args.extend(spice.args());
            if let Some(relay) = &self.media_relay {
                args.extend(relay.args());
            }
        }
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
    fn firmware_desktop_command_line() {
        let d = FirmwareDesktop::new("/tmp/s.sock".into(), "/tmp/q.sock".into());
        let args = d.args().join(" ");
        assert!(args.contains("-vga std"), "{args}");
        assert!(args.contains("-boot reboot-timeout=-1"), "{args}");
        assert!(
            args.contains("-spice unix=on,addr=/tmp/s.sock,disable-ticketing=on"),
            "{args}"
        );
        assert!(
            args.contains("-qmp unix:/tmp/q.sock,server=on,wait=off"),
            "{args}"
        );
        assert!(args.contains("-L /usr/share/seabios"), "{args}");
        assert!(!args.contains("vhost"), "no media device: {args}");
        assert!(!args.contains("secondary-vga"), "{args}");
        let two = FirmwareDesktop {
            extra_displays: 1,
            ..d.clone()
        };
        assert!(
            two.args()
                .join(" ")
                .contains("-device secondary-vga,id=vga1"),
            "a second display channel"
        );
        assert!(!args.contains("chardev"), "no media port: {args}");
        let relayed = FirmwareDesktop {
            media_relay: Some(MediaRelay::new("org.example.0", "/tmp/u.sock")),
            ..d
        };
        let args = relayed.args().join(" ");
        assert!(
            args.contains("-chardev spiceport,id=mediaport,name=org.example.0"),
            "{args}"
        );
        assert!(args.contains("-object chardev-relay,"), "{args}");
    }

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
    fn spice_desktop_on_loopback() {
        let cmd = QemuCommand::new("/s").with_spice_desktop(SpiceServer::new(SpiceListen::Tcp {
            addr: "127.0.0.1".into(),
            port: 5900,
        }));
        let args = cmd.args().join(" ");
        let default = QemuCommand::new("/s").args().join(" ");
        assert_eq!(
            args,
            format!("{default} -vga std -spice port=5900,addr=127.0.0.1,disable-ticketing=on")
        );
        // The media port rides that session only when there is one.
        let relay = Some(MediaRelay::new("org.example.0", "/u.sock"));
        let relayed = QemuCommand {
            media_relay: relay.clone(),
            ..cmd
        };
        assert_eq!(
            relayed.args().join(" "),
            format!("{args} {}", relay.clone().unwrap().args().join(" "))
        );
        let no_spice = QemuCommand {
            media_relay: relay,
            ..QemuCommand::new("/s")
        };
        assert_eq!(no_spice.args().join(" "), default);
    }

    #[test]
    fn spice_on_a_unix_socket_with_a_password() {
        let mut cmd = QemuCommand::new("/s");
        cmd.spice = Some(SpiceServer {
            listen: SpiceListen::Unix("/run/vm1/spice.sock".into()),
            password_file: Some("/etc/vm1.pass".into()),
        });
        cmd.qmp_socket = Some("/q".into());
        cmd.paused = true;
        let args = cmd.args();
        let tail: Vec<&str> = args[args.len() - 7..].iter().map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                "-object",
                "secret,id=spice-password,file=/etc/vm1.pass",
                "-spice",
                "unix=on,addr=/run/vm1/spice.sock,password-secret=spice-password",
                "-qmp",
                "unix:/q,server=on,wait=off",
                "-S"
            ]
        );
        assert!(!args.contains(&"-vga".to_string()));
        cmd.vga = Some(Vga::None);
        assert!(
            cmd.args()
                .join(" ")
                .contains(" -nic none -vga none -object secret,")
        );
        cmd.vga = Some(Vga::Qxl { outputs: 2 });
        assert!(
            cmd.args()
                .join(" ")
                .contains(" -vga none -device qxl-vga,max_outputs=2,romfile= -object secret,")
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

//! A PCI function through sysfs: finding it, binding it to
//! `uio_pci_generic`, its configuration space and its BARs.
//!
//! Debian's guest kernels have no VFIO no-IOMMU mode, so the userspace
//! driver does what DPDK does with `uio_pci_generic`: the kernel driver only
//! owns the interrupt (see [`super::uio`]); the driver maps the memory BARs
//! through `/sys/bus/pci/devices/<BDF>/resource<N>` and reads and writes the
//! configuration space through `.../config`. The driver must turn on bus
//! mastering itself (`uio_pci_generic` does not), or the device may not
//! access memory.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::{MmapOptions, MmapRaw};

use super::PciError;

/// Where PCI functions appear.
pub const SYSFS_PCI_DEVICES: &str = "/sys/bus/pci/devices";
/// The kernel driver the function must be bound to.
pub const UIO_DRIVER: &str = "uio_pci_generic";
/// Command register offset and its bits.
const PCI_COMMAND: u64 = 0x04;
const COMMAND_MEMORY: u16 = 1 << 1;
const COMMAND_MASTER: u16 = 1 << 2;

fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> PciError {
    let op = op.into();
    move |source| PciError::Io { op, source }
}

/// Parses a sysfs hexadecimal attribute (`0x1af4\n`).
pub fn parse_hex_attr(text: &str) -> Option<u32> {
    let t = text.trim();
    u32::from_str_radix(t.strip_prefix("0x").unwrap_or(t), 16).ok()
}

/// Finds the functions with `vendor:device` under `root` (normally
/// [`SYSFS_PCI_DEVICES`]); their BDFs, sorted.
pub fn find(root: &Path, vendor: u16, device: u16) -> Result<Vec<String>, PciError> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(root).map_err(io(format!("reading {}", root.display())))?;
    for entry in entries {
        let entry = entry.map_err(io("reading a PCI directory entry"))?;
        let dir = entry.path();
        let attr = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .ok()
                .and_then(|t| parse_hex_attr(&t))
        };
        if attr("vendor") == Some(u32::from(vendor)) && attr("device") == Some(u32::from(device)) {
            found.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    found.sort();
    Ok(found)
}

/// One PCI function in sysfs.
#[derive(Debug)]
pub struct PciFunction {
    dir: PathBuf,
    bdf: String,
    config: File,
}

impl PciFunction {
    /// Opens function `bdf` (e.g. `0000:00:03.0`) under `root`.
    pub fn open(root: &Path, bdf: &str) -> Result<PciFunction, PciError> {
        if bdf.is_empty() || bdf.contains('/') || bdf.starts_with('.') {
            return Err(PciError::NoDevice(format!("invalid BDF {bdf:?}")));
        }
        let dir = root.join(bdf);
        let config = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join("config"))
            .map_err(io(format!("opening {}/config", dir.display())))?;
        Ok(PciFunction {
            dir,
            bdf: bdf.to_owned(),
            config,
        })
    }

    /// Its BDF.
    pub fn bdf(&self) -> &str {
        &self.bdf
    }

    /// The kernel driver bound to it, if any.
    pub fn driver(&self) -> Option<String> {
        std::fs::read_link(self.dir.join("driver"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    /// Binds the function to `uio_pci_generic` (module loaded beforehand),
    /// unbinding another driver first; with `driver_override`, so no other
    /// function of the same ID is affected.
    pub fn bind_uio(&self) -> Result<(), PciError> {
        if self.driver().as_deref() == Some(UIO_DRIVER) {
            return Ok(());
        }
        if self.driver().is_some() {
            std::fs::write(self.dir.join("driver/unbind"), &self.bdf)
                .map_err(io(format!("unbinding {}", self.bdf)))?;
        }
        std::fs::write(self.dir.join("driver_override"), UIO_DRIVER)
            .map_err(io("writing driver_override"))?;
        std::fs::write("/sys/bus/pci/drivers_probe", &self.bdf)
            .map_err(io(format!("probing {}", self.bdf)))?;
        match self.driver() {
            Some(d) if d == UIO_DRIVER => Ok(()),
            other => Err(PciError::NoDevice(format!(
                "{} is bound to {other:?}, not {UIO_DRIVER} (is the module loaded?)",
                self.bdf
            ))),
        }
    }

    /// The `/dev/uioN` of the function (it must be bound to
    /// `uio_pci_generic`).
    pub fn uio_device(&self) -> Result<PathBuf, PciError> {
        let dir = self.dir.join("uio");
        let entries = std::fs::read_dir(&dir).map_err(io(format!(
            "reading {} (not bound to {UIO_DRIVER}?)",
            dir.display()
        )))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("uio") {
                return Ok(Path::new("/dev").join(name));
            }
        }
        Err(PciError::NoDevice(format!(
            "{} has no uio device",
            self.bdf
        )))
    }

    /// Reads `buf.len()` configuration space bytes at `offset`.
    pub fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<usize, PciError> {
        self.config
            .read_at(buf, offset)
            .map_err(io("reading the configuration space"))
    }

    /// Another handle on the configuration file (for the interrupt).
    pub fn config_file(&self) -> Result<File, PciError> {
        self.config
            .try_clone()
            .map_err(io("duplicating the config fd"))
    }

    /// The whole configuration space sysfs shows (256 or 4096 bytes).
    pub fn config_space(&self) -> Result<Vec<u8>, PciError> {
        let mut buf = vec![0u8; 4096];
        let n = self.read_config(0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Turns on memory decoding and bus mastering (DMA).
    pub fn enable_bus_master(&self) -> Result<(), PciError> {
        let mut cmd = [0u8; 2];
        self.config
            .read_exact_at(&mut cmd, PCI_COMMAND)
            .map_err(io("reading the command register"))?;
        let value = u16::from_le_bytes(cmd) | COMMAND_MEMORY | COMMAND_MASTER;
        self.config
            .write_all_at(&value.to_le_bytes(), PCI_COMMAND)
            .map_err(io("writing the command register"))
    }

    /// Maps memory BAR `index` through `resource<index>`.
    pub fn map_bar(&self, index: u8) -> Result<Bar, PciError> {
        if index > 5 {
            return Err(PciError::NoDevice(format!("BAR {index}")));
        }
        let path = self.dir.join(format!("resource{index}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(format!("opening {} (an I/O BAR?)", path.display())))?;
        let len = file
            .metadata()
            .map_err(io(format!("stat {}", path.display())))?
            .len();
        let len = usize::try_from(len).map_err(|_| PciError::NoDevice("BAR too large".into()))?;
        Bar::map(&file, len)
    }
}

/// A register width: `u8`, `u16` or `u32` (virtio allows no other access
/// to its PCI structures; 64-bit fields are written as two halves).
pub trait Register: Copy + private::Sealed {}
impl Register for u8 {}
impl Register for u16 {}
impl Register for u32 {}

mod private {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
}

/// A memory BAR mapped into this process. Accesses are volatile, bounds
/// checked and naturally aligned (device registers).
#[derive(Debug)]
pub struct Bar {
    /// memmap2's shared mapping (unmapped on drop): raw pointers only, never
    /// a reference to device memory.
    map: MmapRaw,
    /// Send but not Sync: two threads never race on a register.
    _not_sync: PhantomData<Cell<()>>,
}

impl Bar {
    fn map(file: &File, len: usize) -> Result<Bar, PciError> {
        if len == 0 {
            return Err(PciError::NoDevice("empty BAR".into()));
        }
        let map = MmapOptions::new()
            .len(len)
            .map_raw(file)
            .map_err(io("mapping a BAR"))?;
        Ok(Bar {
            map,
            _not_sync: PhantomData,
        })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the BAR is empty (never: mapping refuses it).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    fn at<T: Register>(&self, offset: usize) -> Result<*mut T, PciError> {
        let size = size_of::<T>();
        if !offset.is_multiple_of(size) || offset.checked_add(size).is_none_or(|e| e > self.len()) {
            return Err(PciError::BadAccess { offset, size });
        }
        // In bounds: `offset + size <= len`.
        Ok(self.map.as_mut_ptr().wrapping_add(offset).cast::<T>())
    }

    /// Volatile read of a `u8`, `u16` or `u32` register.
    pub fn read<T: Register>(&self, offset: usize) -> Result<T, PciError> {
        let p = self.at::<T>(offset)?;
        // SAFETY: `p` is in bounds and aligned (checked by `at`; the mapping
        // is page aligned) and the mapping lives as long as `self`; any bit
        // pattern is a valid `T` (an integer).
        Ok(unsafe { p.read_volatile() })
    }

    /// Volatile write of a `u8`, `u16` or `u32` register.
    pub fn write<T: Register>(&self, offset: usize, value: T) -> Result<(), PciError> {
        let p = self.at::<T>(offset)?;
        // SAFETY: as in `read`.
        unsafe { p.write_volatile(value) };
        Ok(())
    }
}

/// Test-only: a BAR over anonymous memory.
#[cfg(test)]
pub(crate) fn anonymous_bar(len: usize) -> Bar {
    let map = MmapOptions::new().len(len).map_anon().unwrap();
    Bar {
        map: map.into(),
        _not_sync: PhantomData,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_attributes() {
        assert_eq!(parse_hex_attr("0x1af4\n"), Some(0x1af4));
        assert_eq!(parse_hex_attr("1079"), Some(0x1079));
        assert_eq!(parse_hex_attr("zz"), None);
    }

    #[test]
    fn finds_functions_in_a_fake_tree() {
        let tmp = test_support::scratch("pci-find");
        let root = tmp.path().to_path_buf();
        for (bdf, vendor, device) in [
            ("0000:00:04.0", "0x1af4", "0x1079"),
            ("0000:00:02.0", "0x8086", "0x1079"),
            ("0000:00:03.0", "0x1af4", "0x1079"),
        ] {
            let dir = root.join(bdf);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("vendor"), format!("{vendor}\n")).unwrap();
            std::fs::write(dir.join("device"), format!("{device}\n")).unwrap();
        }
        let found = find(&root, 0x1af4, 0x1079).unwrap();
        drop(tmp);
        assert_eq!(found, vec!["0000:00:03.0", "0000:00:04.0"]);
        assert!(PciFunction::open(&root, "../x").is_err());
    }

    #[test]
    fn bar_accesses_are_checked() {
        let bar = anonymous_bar(4096);
        bar.write::<u32>(8, 0xdead_beef).unwrap();
        assert_eq!(bar.read::<u32>(8).unwrap(), 0xdead_beef);
        assert_eq!(bar.read::<u16>(10).unwrap(), 0xdead);
        assert!(bar.read::<u32>(4094).is_err(), "past the end");
        assert!(bar.read::<u32>(2).is_err(), "misaligned");
        assert!(bar.write::<u8>(4096, 0).is_err());
    }
}

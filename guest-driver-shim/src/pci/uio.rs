//! The interrupt of a function bound to `uio_pci_generic`, through its
//! `/dev/uioN`.
//!
//! `uio_pci_generic` handles the legacy INTx line only: on an interrupt it
//! masks INTx (the command register's Interrupt Disable bit) and bumps an
//! event counter that a `read` of 4 bytes returns. The driver then reads the
//! virtio ISR status (which deasserts the line) and unmasks INTx again by
//! clearing Interrupt Disable in the command register through the sysfs
//! configuration file (`uio_pci_generic` has no `irqcontrol`: writing 1 to
//! the fd fails with ENOSYS). An interrupt raised between the ISR read and
//! the unmask is not lost: the line is asserted again and fires once
//! unmasked. MSI-X is not used (the kernel driver cannot route it to us).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use mediaredir_player::seqpacket::wait_readable;

use super::PciError;

/// The interrupt of one uio device.
#[derive(Debug)]
pub struct UioIrq {
    file: File,
    /// The function's sysfs `config` file (command register).
    config: File,
    count: u32,
}

/// Command register offset and its Interrupt Disable bit.
const PCI_COMMAND: u64 = 0x04;
const COMMAND_INTX_DISABLE: u16 = 1 << 10;

impl UioIrq {
    /// Opens `/dev/uioN` and unmasks the interrupt; `config` is the
    /// function's sysfs configuration file.
    pub fn open(path: &Path, config: File) -> Result<UioIrq, PciError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| PciError::Io {
                op: format!("opening {}", path.display()),
                source,
            })?;
        let irq = UioIrq {
            file,
            config,
            count: 0,
        };
        irq.unmask()?;
        Ok(irq)
    }

    /// Unmasks INTx (clears Interrupt Disable in the command register).
    pub fn unmask(&self) -> Result<(), PciError> {
        let io = |source| PciError::Io {
            op: "unmasking the interrupt".into(),
            source,
        };
        let mut cmd = [0u8; 2];
        self.config
            .read_exact_at(&mut cmd, PCI_COMMAND)
            .map_err(io)?;
        let value = u16::from_le_bytes(cmd);
        if value & COMMAND_INTX_DISABLE != 0 {
            let value = value & !COMMAND_INTX_DISABLE;
            self.config
                .write_all_at(&value.to_le_bytes(), PCI_COMMAND)
                .map_err(io)?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for an interrupt; `true` when one came (it is
    /// consumed: the caller reads the ISR and calls [`UioIrq::unmask`]).
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, PciError> {
        let ready = wait_readable(&self.file, timeout).map_err(|source| PciError::Io {
            op: "polling the uio device".into(),
            source,
        })?;
        if !ready {
            return Ok(false);
        }
        let mut count = [0u8; 4];
        (&self.file)
            .read_exact(&mut count)
            .map_err(|source| PciError::Io {
                op: "reading the uio event count".into(),
                source,
            })?;
        self.count = u32::from_ne_bytes(count);
        Ok(true)
    }

    /// Interrupts seen so far (the uio event counter).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The fd: readable when an interrupt is pending.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

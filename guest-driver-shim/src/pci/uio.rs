//! The interrupt of a function bound to `uio_pci_generic`, through its
//! `/dev/uioN`.
//!
//! `uio_pci_generic` handles the legacy INTx line only: on an interrupt it
//! masks INTx (the command register's Interrupt Disable bit) and bumps an
//! event counter that a `read` of 4 bytes returns. The driver then reads the
//! virtio ISR status (which deasserts the line) and writes 1 (4 bytes) to
//! the fd to unmask INTx again. An interrupt raised between the ISR read and
//! the unmask is not lost: the line is asserted again and fires once
//! unmasked. MSI-X is not used (the kernel driver cannot route it to us).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::time::Duration;

use super::PciError;

/// The interrupt of one uio device.
#[derive(Debug)]
pub struct UioIrq {
    file: File,
    count: u32,
}

impl UioIrq {
    /// Opens `/dev/uioN` and unmasks the interrupt.
    pub fn open(path: &Path) -> Result<UioIrq, PciError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| PciError::Io {
                op: format!("opening {}", path.display()),
                source,
            })?;
        let irq = UioIrq { file, count: 0 };
        irq.unmask()?;
        Ok(irq)
    }

    /// Unmasks INTx (uio `irqcontrol`: write 1).
    pub fn unmask(&self) -> Result<(), PciError> {
        (&self.file)
            .write_all(&1u32.to_ne_bytes())
            .map_err(|source| PciError::Io {
                op: "unmasking the interrupt".into(),
                source,
            })
    }

    /// Waits up to `timeout` for an interrupt; `true` when one came (it is
    /// consumed: the caller reads the ISR and calls [`UioIrq::unmask`]).
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, PciError> {
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `pfd` is one valid pollfd that outlives the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(PciError::Io {
                op: "polling the uio device".into(),
                source: e,
            });
        }
        if n == 0 {
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

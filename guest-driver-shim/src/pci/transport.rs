//! [`PciTransport`]: the [`Transport`] over a modern virtio PCI function
//! bound to `uio_pci_generic`.
//!
//! Every [`Transport`] call is a direct access to the common configuration
//! structure (virtio 1.x, "Common configuration structure layout"); queue
//! addresses and descriptors carry the physical addresses of the hugepage
//! DMA memory. Used-buffer notifications arrive as the function's one INTx
//! interrupt, whichever queue they are for (waking a waiter of another
//! queue is a spurious wake-up the driver core tolerates); with
//! [`PciOptions::poll`] the transport sleeps briefly instead.

use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::caps::{self, CapRegion, VirtioCaps};
use super::sysfs::{self, Bar, PciFunction, Register};
use super::uio::UioIrq;
use super::{MEDIA_REDIR_DEVICE, PciError, VIRTIO_VENDOR};
use crate::dma::{DmaMemory, HUGEPAGE_DRIVER_BASE, HUGEPAGE_SIZE};
use crate::transport::{Transport, TransportError, forget_memory, status};
use crate::virtqueue::QueueLayout;

/// Common configuration registers (offsets).
mod common {
    pub(super) const DEVICE_FEATURE_SELECT: usize = 0x00;
    pub(super) const DEVICE_FEATURE: usize = 0x04;
    pub(super) const DRIVER_FEATURE_SELECT: usize = 0x08;
    pub(super) const DRIVER_FEATURE: usize = 0x0c;
    pub(super) const MSIX_CONFIG: usize = 0x10;
    pub(super) const NUM_QUEUES: usize = 0x12;
    pub(super) const DEVICE_STATUS: usize = 0x14;
    pub(super) const CONFIG_GENERATION: usize = 0x15;
    pub(super) const QUEUE_SELECT: usize = 0x16;
    pub(super) const QUEUE_SIZE: usize = 0x18;
    pub(super) const QUEUE_MSIX_VECTOR: usize = 0x1a;
    pub(super) const QUEUE_ENABLE: usize = 0x1c;
    pub(super) const QUEUE_NOTIFY_OFF: usize = 0x1e;
    pub(super) const QUEUE_DESC: usize = 0x20;
    pub(super) const QUEUE_DRIVER: usize = 0x28;
    pub(super) const QUEUE_DEVICE: usize = 0x30;
}

/// Driver address distance between two memories of one transport.
const MEMORY_SPACING: u64 = 1 << 40;

/// "No MSI-X vector": interrupts go through INTx and the ISR.
const NO_VECTOR: u16 = 0xffff;
/// ISR bits.
const ISR_QUEUE: u8 = 1;
const ISR_CONFIG: u8 = 2;

/// Settings of the PCI transport.
#[derive(Debug, Clone)]
pub struct PciOptions {
    /// DMA memory in bytes (rounded up to 2 MiB hugepages).
    pub dma_size: usize,
    /// Poll the rings instead of waiting for interrupts.
    pub poll: bool,
    /// How long a poll sleeps between looks at the rings.
    pub poll_interval: Duration,
    /// Bind the function to `uio_pci_generic` if it is not yet.
    pub bind: bool,
    /// Where PCI functions appear (`/sys/bus/pci/devices`).
    pub sysfs_root: std::path::PathBuf,
}

impl Default for PciOptions {
    fn default() -> Self {
        PciOptions {
            dma_size: 32 << 20,
            poll: false,
            poll_interval: Duration::from_micros(500),
            bind: true,
            sysfs_root: sysfs::SYSFS_PCI_DEVICES.into(),
        }
    }
}

/// The low and high 32 bits of `value`.
fn split(value: u64) -> (u32, u32) {
    let low = u32::try_from(value & 0xffff_ffff).unwrap_or(0);
    let high = u32::try_from(value >> 32).unwrap_or(0);
    (low, high)
}

fn pci(e: PciError) -> TransportError {
    TransportError::Io {
        op: "virtio-pci",
        source: std::io::Error::other(e),
    }
}

/// A virtio PCI function bound to `uio_pci_generic`.
#[derive(Debug)]
pub struct PciTransport {
    function: PciFunction,
    caps: VirtioCaps,
    bars: [Option<Bar>; 6],
    irq: Option<UioIrq>,
    dma: Arc<DmaMemory>,
    /// Notify offset (in the notify BAR) of each set-up queue.
    notify: Vec<Option<usize>>,
    /// Driver address of the next memory from [`Transport::new_memory`].
    next_memory_base: u64,
    /// Memory made by [`Transport::new_memory`] and not yet released.
    extra: Vec<Arc<DmaMemory>>,
    config_changed: bool,
    options: PciOptions,
}

impl PciTransport {
    /// Opens the function `bdf`, or the first media-redirection device
    /// (`1af4:1079`) when `bdf` is `None`: binds it to `uio_pci_generic`
    /// (if asked), enables bus mastering, maps its BARs, parses its virtio
    /// capabilities and allocates the hugepage DMA memory.
    pub fn open(bdf: Option<&str>, options: PciOptions) -> Result<PciTransport, PciError> {
        let bdf = match bdf {
            Some(b) => b.to_owned(),
            None => sysfs::find(&options.sysfs_root, VIRTIO_VENDOR, MEDIA_REDIR_DEVICE)?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    PciError::NoDevice(format!(
                        "no {VIRTIO_VENDOR:04x}:{MEDIA_REDIR_DEVICE:04x} function"
                    ))
                })?,
        };
        let function = PciFunction::open(Path::new(&options.sysfs_root), &bdf)?;
        if options.bind {
            function.bind_uio()?;
        }
        let caps = caps::parse(&function.config_space()?)?;
        log::info!("{bdf}: virtio capabilities {caps:x?}");
        function.enable_bus_master()?;
        let mut bars: [Option<Bar>; 6] = Default::default();
        let regions = [
            Some(caps.common),
            Some(caps.notify),
            Some(caps.isr),
            caps.device,
        ];
        for region in regions.into_iter().flatten() {
            let slot = &mut bars[usize::from(region.bar)];
            if slot.is_none() {
                *slot = Some(function.map_bar(region.bar)?);
            }
        }
        let irq = if options.poll {
            None
        } else {
            Some(UioIrq::open(
                &function.uio_device()?,
                function.config_file()?,
            )?)
        };
        let size = options.dma_size.max(1).next_multiple_of(HUGEPAGE_SIZE);
        let dma = DmaMemory::new_hugepages(size)?;
        let transport = PciTransport {
            function,
            caps,
            bars,
            irq,
            dma,
            notify: Vec::new(),
            next_memory_base: HUGEPAGE_DRIVER_BASE + MEMORY_SPACING,
            extra: Vec::new(),
            config_changed: false,
            options,
        };
        for region in regions.into_iter().flatten() {
            transport.check_region(region)?;
        }
        Ok(transport)
    }

    /// The function's BDF.
    pub fn bdf(&self) -> &str {
        self.function.bdf()
    }

    fn check_region(&self, region: CapRegion) -> Result<(), PciError> {
        let bar = self.bar(region.bar)?;
        let end = u64::from(region.offset) + u64::from(region.length);
        if end > bar.len() as u64 {
            return Err(PciError::Caps(caps::CapsError::Bad {
                what: "region",
                reason: "extends past its BAR",
            }));
        }
        Ok(())
    }

    fn bar(&self, index: u8) -> Result<&Bar, PciError> {
        self.bars
            .get(usize::from(index))
            .and_then(Option::as_ref)
            .ok_or_else(|| PciError::NoDevice(format!("BAR {index} not mapped")))
    }

    fn region_read<T: Register>(
        &self,
        region: CapRegion,
        offset: usize,
    ) -> Result<T, TransportError> {
        self.bar(region.bar)
            .and_then(|bar| bar.read(region.offset as usize + offset))
            .map_err(pci)
    }

    fn region_write<T: Register>(
        &self,
        region: CapRegion,
        offset: usize,
        value: T,
    ) -> Result<(), TransportError> {
        self.bar(region.bar)
            .and_then(|bar| bar.write(region.offset as usize + offset, value))
            .map_err(pci)
    }

    fn read_common<T: Register>(&self, offset: usize) -> Result<T, TransportError> {
        self.region_read(self.caps.common, offset)
    }

    fn write_common<T: Register>(&self, offset: usize, value: T) -> Result<(), TransportError> {
        self.region_write(self.caps.common, offset, value)
    }

    fn write_common_u64(&self, offset: usize, value: u64) -> Result<(), TransportError> {
        // Two 32-bit halves, low first (virtio allows no 64-bit access).
        let (low, high) = split(value);
        self.write_common(offset, low)?;
        self.write_common(offset + 4, high)
    }

    fn status(&self) -> Result<u8, TransportError> {
        self.read_common(common::DEVICE_STATUS)
    }

    fn select_queue(&mut self, queue: u16) -> Result<(), TransportError> {
        if queue >= self.read_common::<u16>(common::NUM_QUEUES)? {
            return Err(TransportError::NoSuchQueue(queue));
        }
        self.write_common(common::QUEUE_SELECT, queue)
    }

    /// Reads (and so clears) the ISR status; remembers a config change.
    fn read_isr(&mut self) -> Result<u8, TransportError> {
        let isr: u8 = self.region_read(self.caps.isr, 0)?;
        if isr & ISR_CONFIG != 0 {
            self.config_changed = true;
        }
        Ok(isr)
    }
}

impl Transport for PciTransport {
    fn dma(&self) -> &Arc<DmaMemory> {
        &self.dma
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        self.write_common::<u8>(common::DEVICE_STATUS, 0)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.status()? != 0 {
            if Instant::now() >= deadline {
                return Err(TransportError::BadState("the device did not reset"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.notify.clear();
        let _ = self.read_isr()?;
        if let Some(irq) = &self.irq {
            irq.unmask().map_err(pci)?;
        }
        self.write_common(common::MSIX_CONFIG, NO_VECTOR)
    }

    fn set_status(&mut self, bits: u8) -> Result<(), TransportError> {
        let value = self.status()? | bits;
        self.write_common(common::DEVICE_STATUS, value)
    }

    fn device_features(&mut self) -> Result<u64, TransportError> {
        self.write_common(common::DEVICE_FEATURE_SELECT, 0u32)?;
        let low: u32 = self.read_common(common::DEVICE_FEATURE)?;
        self.write_common(common::DEVICE_FEATURE_SELECT, 1u32)?;
        let high: u32 = self.read_common(common::DEVICE_FEATURE)?;
        Ok(u64::from(high) << 32 | u64::from(low))
    }

    fn set_driver_features(&mut self, features: u64) -> Result<(), TransportError> {
        self.write_common(common::DRIVER_FEATURE_SELECT, 0u32)?;
        let (low, high) = split(features);
        self.write_common(common::DRIVER_FEATURE, low)?;
        self.write_common(common::DRIVER_FEATURE_SELECT, 1u32)?;
        self.write_common(common::DRIVER_FEATURE, high)?;
        self.set_status(status::FEATURES_OK)?;
        if self.status()? & status::FEATURES_OK == 0 {
            return Err(TransportError::FeaturesRejected(features));
        }
        Ok(())
    }

    fn read_config(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), TransportError> {
        let len = buf.len();
        let config_error = |reason: &str| TransportError::Config {
            offset,
            len,
            reason: reason.to_owned(),
        };
        let region = self
            .caps
            .device
            .ok_or_else(|| config_error("no device configuration"))?;
        if u64::from(offset) + buf.len() as u64 > u64::from(region.length) {
            return Err(config_error("outside the device configuration"));
        }
        for _ in 0..16 {
            let before: u8 = self.read_common(common::CONFIG_GENERATION)?;
            let mut at = 0;
            while at < buf.len() {
                let pos = offset as usize + at;
                if pos.is_multiple_of(4) && buf.len() - at >= 4 {
                    let v: u32 = self.region_read(region, pos)?;
                    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
                    at += 4;
                } else {
                    buf[at] = self.region_read(region, pos)?;
                    at += 1;
                }
            }
            if self.read_common::<u8>(common::CONFIG_GENERATION)? == before {
                return Ok(());
            }
        }
        Err(config_error("the configuration kept changing"))
    }

    fn num_queues(&mut self) -> Result<u16, TransportError> {
        self.read_common(common::NUM_QUEUES)
    }

    fn queue_max_size(&mut self, queue: u16) -> Result<u16, TransportError> {
        self.select_queue(queue)?;
        self.read_common(common::QUEUE_SIZE)
    }

    fn setup_queue(&mut self, queue: u16, layout: &QueueLayout) -> Result<(), TransportError> {
        let bad = |reason| TransportError::BadQueue { queue, reason };
        self.select_queue(queue)?;
        let max: u16 = self.read_common(common::QUEUE_SIZE)?;
        if layout.size == 0 || layout.size > max {
            return Err(bad("size is 0 or above the device's maximum"));
        }
        let size = u64::from(layout.size);
        let desc = self.dma.device_address(layout.desc, size * 16)?;
        let avail = self.dma.device_address(layout.avail, 6 + 2 * size)?;
        let used = self.dma.device_address(layout.used, 6 + 8 * size)?;
        self.write_common(common::QUEUE_SIZE, layout.size)?;
        self.write_common(common::QUEUE_MSIX_VECTOR, NO_VECTOR)?;
        self.write_common_u64(common::QUEUE_DESC, desc)?;
        self.write_common_u64(common::QUEUE_DRIVER, avail)?;
        self.write_common_u64(common::QUEUE_DEVICE, used)?;
        let off: u16 = self.read_common(common::QUEUE_NOTIFY_OFF)?;
        let at = u64::from(off) * u64::from(self.caps.notify_off_multiplier);
        if at + 2 > u64::from(self.caps.notify.length) {
            return Err(bad("notify address outside the notify structure"));
        }
        self.write_common(common::QUEUE_ENABLE, 1u16)?;
        let index = usize::from(queue);
        if self.notify.len() <= index {
            self.notify.resize(index + 1, None);
        }
        let at = usize::try_from(at).map_err(|_| bad("notify address overflows"))?;
        self.notify[index] = Some(at);
        Ok(())
    }

    fn activate(&mut self) -> Result<(), TransportError> {
        self.set_status(status::DRIVER_OK)?;
        if self.status()? & status::DEVICE_NEEDS_RESET != 0 {
            return Err(TransportError::BadState("the device needs a reset"));
        }
        Ok(())
    }

    fn notify(&mut self, queue: u16) -> Result<(), TransportError> {
        let at = self
            .notify
            .get(usize::from(queue))
            .copied()
            .flatten()
            .ok_or(TransportError::NoSuchQueue(queue))?;
        self.region_write(self.caps.notify, at, queue)
    }

    fn wait_used(&mut self, _queue: u16, timeout: Duration) -> Result<bool, TransportError> {
        let Some(irq) = &mut self.irq else {
            std::thread::sleep(timeout.min(self.options.poll_interval));
            return Ok(true);
        };
        if !irq.wait(timeout).map_err(pci)? {
            return Ok(false);
        }
        let isr = self.read_isr()?;
        if let Some(irq) = &self.irq {
            irq.unmask().map_err(pci)?;
        }
        Ok(isr & (ISR_QUEUE | ISR_CONFIG) != 0 || isr == 0)
    }

    fn used_fd(&self, _queue: u16) -> Option<BorrowedFd<'_>> {
        self.irq.as_ref().map(UioIrq::fd)
    }

    fn config_changed(&mut self) -> Result<bool, TransportError> {
        if self.irq.is_none() {
            let _ = self.read_isr()?;
        }
        Ok(std::mem::take(&mut self.config_changed))
    }

    /// More DMA memory in hugepages of its own (a `MFD_HUGETLB` memfd the
    /// broker shares as a buffer pool), `size` rounded up to 2 MiB, with
    /// driver addresses disjoint from every other memory of this transport.
    /// The device reaches all guest RAM, so nothing is announced to it:
    /// descriptors into the memory carry its physical addresses (the
    /// virtqueue translates each segment with the memory that owns it).
    fn new_memory(&mut self, size: usize) -> Result<Arc<DmaMemory>, TransportError> {
        let size = size.max(1).next_multiple_of(HUGEPAGE_SIZE);
        if size as u64 > MEMORY_SPACING {
            return Err(TransportError::Unsupported("DMA memory above 1 TiB"));
        }
        let memory = DmaMemory::new_hugepages_at(size, self.next_memory_base)?;
        self.next_memory_base += MEMORY_SPACING;
        self.extra.push(Arc::clone(&memory));
        Ok(memory)
    }

    /// Forgets memory from [`Transport::new_memory`]; its hugepages go back
    /// to the kernel when the last mapping (the broker's, the players') is
    /// gone.
    fn release_memory(&mut self, memory: &Arc<DmaMemory>) -> Result<(), TransportError> {
        forget_memory(&mut self.extra, memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::dma::{DmaMemory, PhysPages};
    use crate::pci::caps::tests::qemu_like_config;
    use crate::pci::sysfs::anonymous_bar;
    use crate::virtqueue::{QueueFeatures, Virtqueue};
    use test_support::{TempDir, scratch};
    use vm_memory::{FileOffset, MmapRegion};

    /// A transport over a fake function: config file in a temp dir, BAR 4
    /// as anonymous memory (registers read back what was written), DMA
    /// memory whose 4 KiB "pages" sit at scattered physical addresses.
    fn fake() -> (PciTransport, TempDir) {
        let root = scratch("pci-transport");
        let dir = root.path().join("0000:00:03.0");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("config"), qemu_like_config()).unwrap();
        let function = PciFunction::open(root.path(), "0000:00:03.0").unwrap();
        let caps = caps::parse(&function.config_space().unwrap()).unwrap();
        let mut bars: [Option<Bar>; 6] = Default::default();
        bars[4] = Some(anonymous_bar(0x4000));
        let region = {
            let mem = DmaMemory::new_memfd(16 * 4096, 0).unwrap();
            let file = mem.file().unwrap().try_clone().unwrap();
            MmapRegion::from_file(FileOffset::new(file, 0), 16 * 4096).unwrap()
        };
        let pages = (0..16u64).map(|i| 0x100_0000 - i * 0x1_0000).collect();
        let phys = PhysPages {
            page_size: 4096,
            pages,
        };
        let dma = DmaMemory::from_mmap_region_translated(region, 1 << 46, phys).unwrap();
        let t = PciTransport {
            function,
            caps,
            bars,
            irq: None,
            dma,
            notify: Vec::new(),
            next_memory_base: HUGEPAGE_DRIVER_BASE + MEMORY_SPACING,
            extra: Vec::new(),
            config_changed: false,
            options: PciOptions {
                poll: true,
                ..PciOptions::default()
            },
        };
        t.write_common(common::NUM_QUEUES, 7u16).unwrap();
        t.write_common(common::QUEUE_SIZE, 256u16).unwrap();
        t.write_common(common::QUEUE_NOTIFY_OFF, 3u16).unwrap();
        (t, root)
    }

    #[test]
    fn queue_registers_get_physical_addresses() {
        let (mut t, _root) = fake();
        let dma = Arc::clone(t.dma());
        let vq = Virtqueue::new(&dma, 2, 64, QueueFeatures::default()).unwrap();
        let layout = vq.layout();
        t.setup_queue(2, &layout).unwrap();
        let read64 = |t: &PciTransport, off| {
            let low: u32 = t.read_common(off).unwrap();
            let high: u32 = t.read_common(off + 4).unwrap();
            u64::from(high) << 32 | u64::from(low)
        };
        assert_eq!(
            read64(&t, common::QUEUE_DESC),
            dma.device_address(layout.desc, 64 * 16).unwrap()
        );
        assert!(
            read64(&t, common::QUEUE_DESC) < 0x100_1000,
            "a physical address"
        );
        assert_eq!(
            read64(&t, common::QUEUE_DEVICE),
            dma.device_address(layout.used, 6 + 8 * 64).unwrap()
        );
        assert_eq!(t.read_common::<u16>(common::QUEUE_ENABLE).unwrap(), 1);
        assert_eq!(
            t.read_common::<u16>(common::QUEUE_MSIX_VECTOR).unwrap(),
            NO_VECTOR
        );
        // queue_notify_off 3 * multiplier 4 into the notify structure.
        t.notify(2).unwrap();
        let notify = t.caps.notify;
        assert_eq!(t.region_read::<u16>(notify, 12).unwrap(), 2);
        assert!(matches!(t.notify(5), Err(TransportError::NoSuchQueue(5))));
        assert!(matches!(
            t.setup_queue(9, &layout),
            Err(TransportError::NoSuchQueue(9))
        ));
    }

    #[test]
    fn status_features_and_config() {
        let (mut t, _root) = fake();
        t.reset().unwrap();
        t.set_status(status::ACKNOWLEDGE).unwrap();
        t.set_status(status::DRIVER).unwrap();
        assert_eq!(t.status().unwrap(), status::ACKNOWLEDGE | status::DRIVER);
        t.set_driver_features(0x1_0000_0002).unwrap();
        assert_eq!(t.read_common::<u32>(common::DRIVER_FEATURE).unwrap(), 1);
        let device = t.caps.device.unwrap();
        for (i, b) in (0u8..48).enumerate() {
            t.region_write(device, i, b).unwrap();
        }
        let mut buf = [0u8; 7];
        t.read_config(3, &mut buf).unwrap();
        assert_eq!(buf, [3, 4, 5, 6, 7, 8, 9]);
        let mut big = [0u8; 8];
        assert!(
            t.read_config(0x1000 - 4, &mut big).is_err(),
            "past the structure"
        );
        assert!(t.wait_used(0, Duration::from_millis(1)).unwrap(), "polling");
    }

    #[test]
    fn options_default_to_interrupts_and_hugepages() {
        let o = PciOptions::default();
        assert!(!o.poll);
        assert!(o.bind);
        assert_eq!(o.dma_size % HUGEPAGE_SIZE, 0);
    }
}

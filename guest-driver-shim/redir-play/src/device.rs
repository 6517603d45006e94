//! Opens the device for either transport: vhost-user (the player plays the
//! guest's part on the host, next to the daemon) or virtio-pci (a real
//! guest, the function bound to `uio_pci_generic`). The player itself only
//! sees `MediaDevice<AnyTransport>`.

use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use guest_driver_shim::{
    DmaMemory, DriverOptions, MediaDevice, PciOptions, PciTransport, QueueLayout, Transport,
    TransportError, VhostUserOptions, VhostUserTransport,
};

/// Where the device is.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// The daemon's vhost-user socket.
    VhostUser(PathBuf),
    /// A PCI function (`None`: the first `1af4:1079`); `poll` instead of
    /// interrupts.
    Pci { bdf: Option<String>, poll: bool },
}

/// Either transport.
#[derive(Debug)]
pub(crate) enum AnyTransport {
    /// vhost-user (host tests).
    VhostUser(VhostUserTransport),
    /// virtio-pci (a guest).
    Pci(PciTransport),
}

macro_rules! each {
    ($self:expr, $t:ident => $body:expr) => {
        match $self {
            AnyTransport::VhostUser($t) => $body,
            AnyTransport::Pci($t) => $body,
        }
    };
}

impl Transport for AnyTransport {
    fn dma(&self) -> &Arc<DmaMemory> {
        each!(self, t => t.dma())
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        each!(self, t => t.reset())
    }
    fn set_status(&mut self, bits: u8) -> Result<(), TransportError> {
        each!(self, t => t.set_status(bits))
    }
    fn device_features(&mut self) -> Result<u64, TransportError> {
        each!(self, t => t.device_features())
    }
    fn set_driver_features(&mut self, features: u64) -> Result<(), TransportError> {
        each!(self, t => t.set_driver_features(features))
    }
    fn read_config(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), TransportError> {
        each!(self, t => t.read_config(offset, buf))
    }
    fn num_queues(&mut self) -> Result<u16, TransportError> {
        each!(self, t => t.num_queues())
    }
    fn queue_max_size(&mut self, queue: u16) -> Result<u16, TransportError> {
        each!(self, t => t.queue_max_size(queue))
    }
    fn setup_queue(&mut self, queue: u16, layout: &QueueLayout) -> Result<(), TransportError> {
        each!(self, t => t.setup_queue(queue, layout))
    }
    fn activate(&mut self) -> Result<(), TransportError> {
        each!(self, t => t.activate())
    }
    fn notify(&mut self, queue: u16) -> Result<(), TransportError> {
        each!(self, t => t.notify(queue))
    }
    fn wait_used(&mut self, queue: u16, timeout: Duration) -> Result<bool, TransportError> {
        each!(self, t => t.wait_used(queue, timeout))
    }
    fn used_fd(&self, queue: u16) -> Option<BorrowedFd<'_>> {
        each!(self, t => t.used_fd(queue))
    }
    fn config_changed(&mut self) -> Result<bool, TransportError> {
        each!(self, t => t.config_changed())
    }
}

/// Opens and initialises the device at `target`.
pub(crate) fn open(target: &Target) -> anyhow::Result<MediaDevice<AnyTransport>> {
    let transport = match target {
        Target::VhostUser(socket) => AnyTransport::VhostUser(
            VhostUserTransport::connect_new(socket, VhostUserOptions::default())
                .with_context(|| format!("connecting to {}", socket.display()))?,
        ),
        Target::Pci { bdf, poll } => {
            let options = PciOptions {
                poll: *poll,
                ..PciOptions::default()
            };
            AnyTransport::Pci(
                PciTransport::open(bdf.as_deref(), options)
                    .with_context(|| format!("opening PCI function {bdf:?}"))?,
            )
        }
    };
    if let Some(pages) = transport.dma().phys_pages() {
        eprintln!(
            "redir-play: DMA memory: {} hugepages in {} physically contiguous runs",
            pages.pages.len(),
            pages.runs()
        );
    }
    MediaDevice::new(transport, DriverOptions::default()).context("initialising the device")
}

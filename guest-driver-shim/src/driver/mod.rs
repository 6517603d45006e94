//! The media-redirection device driver on top of any [`Transport`].
//!
//! [`MediaDevice`] runs the virtio initialisation sequence (reset,
//! ACKNOWLEDGE, DRIVER, feature negotiation, FEATURES_OK, configuration,
//! queues, event buffers, DRIVER_OK) and then speaks the device's protocol:
//! control requests on the controlq, data buffers on the txqs, events from
//! the eventq (layouts in `mediaredir-proto`).
//!
//! The device is untrusted and may be gone: every wait has a deadline, every
//! answer is decoded by the proto crate's checked decoders, and the buffers
//! of a chain stay allocated until the device returns the chain or is reset,
//! even when the driver stopped waiting for it (a late answer must never land
//! in reused memory).
//!
//! Control requests can be waited for ([`MediaDevice::control`]) or, by a
//! caller with a poll loop of its own such as the broker, submitted and
//! collected later ([`MediaDevice::submit_control`],
//! [`MediaDevice::poll_control_answers`]): one mechanism either way.
//!
//! Conformance tests reach below the protocol through [`MediaDevice::queue_mut`],
//! [`MediaDevice::kick`], [`MediaDevice::wait_used`] and
//! [`MediaDevice::control_raw`].
//!
//! One file per job: `error` (why an operation failed), `init` (the
//! initialisation sequence), `control` (controlq requests), `data` (txq
//! buffers and their completions), `events` (the eventq), `capture` (the
//! capq), `raw` (access below the protocol for conformance tests). This
//! file holds the settings, the device handle and its state, memory, the
//! transport and the configuration space.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediaredir_proto::device::{
    self, CONFIG_SIZE, DeviceConfig, F_CALL, F_CAPTURE, F_CLIPPING, F_LINK_QUALITY,
};

use crate::dma::DmaMemory;
use crate::transport::Transport;
use crate::virtqueue::{ExtraMemory, QueueError, UsedElem, Virtqueue};

mod capture;
mod control;
mod data;
mod error;
mod events;
mod init;
mod raw;

pub use capture::CapturedSample;
pub use control::{ControlAnswer, ControlToken, RawResponse};
pub use data::{DataCompletion, DataToken};
pub use error::DriverError;

use capture::CapturePool;
use control::{ControlPending, ReadyAnswers};
use data::DataPending;
use events::EventPool;

/// `VIRTIO_F_VERSION_1` as a mask.
pub const FEATURE_VERSION_1: u64 = 1 << device::transport::F_VERSION_1;
/// `VIRTIO_F_RING_EVENT_IDX` as a mask.
pub const FEATURE_EVENT_IDX: u64 = 1 << device::transport::F_EVENT_IDX;
/// `VIRTIO_F_INDIRECT_DESC` as a mask.
pub const FEATURE_INDIRECT_DESC: u64 = 1 << device::transport::F_INDIRECT_DESC;
/// `VIRTIO_MEDIA_REDIR_F_CAPTURE` as a mask.
pub const FEATURE_CAPTURE: u64 = 1 << F_CAPTURE;
/// `VIRTIO_MEDIA_REDIR_F_CALL` as a mask.
pub const FEATURE_CALL: u64 = 1 << F_CALL;
/// `VIRTIO_MEDIA_REDIR_F_CLIPPING` as a mask.
pub const FEATURE_CLIPPING: u64 = 1 << F_CLIPPING;
/// `VIRTIO_MEDIA_REDIR_F_LINK_QUALITY` as a mask.
pub const FEATURE_LINK_QUALITY: u64 = 1 << F_LINK_QUALITY;
/// Every feature this driver can use.
pub const DRIVER_FEATURES: u64 = FEATURE_VERSION_1
    | FEATURE_EVENT_IDX
    | FEATURE_INDIRECT_DESC
    | FEATURE_CAPTURE
    | FEATURE_CALL
    | FEATURE_CLIPPING
    | FEATURE_LINK_QUALITY;

/// Settings of the driver.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// Queue size wanted (capped by the transport, rounded down to a power
    /// of two).
    pub queue_size: u16,
    /// Longest wait for an answer to a control request.
    pub timeout: Duration,
    /// Event buffers (64 bytes each) kept posted on the eventq.
    pub event_buffers: u16,
    /// Features the driver accepts (intersected with the device's offer;
    /// VERSION_1 is always required).
    pub features: u64,
    /// Data chains with more segments than this go through an indirect
    /// table when INDIRECT_DESC was negotiated.
    pub indirect_threshold: usize,
    /// Buffers kept posted on capq when F_CAPTURE was negotiated (spec
    /// DRV-CAP-2), and the payload bytes each holds (after the 48-byte
    /// header).
    pub capture_buffers: u16,
    /// Payload bytes of each capq buffer.
    pub capture_buffer_bytes: usize,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            queue_size: 256,
            // Above the 10 s a device may take to answer CALL_CREATE
            // (DEV-CALL-2).
            timeout: Duration::from_secs(12),
            event_buffers: 64,
            features: DRIVER_FEATURES,
            indirect_threshold: 2,
            capture_buffers: 16,
            capture_buffer_bytes: 256 << 10,
        }
    }
}

/// Everything set up by one initialisation.
#[derive(Debug)]
struct State {
    features: u64,
    config: DeviceConfig,
    queues: Vec<Virtqueue>,
    events: EventPool,
    control: HashMap<u16, ControlPending>,
    control_ready: ReadyAnswers,
    data: HashMap<u16, HashMap<u16, DataPending>>,
    capture: Option<CapturePool>,
}

/// Waits for the next used entry on `vq` until `deadline`.
fn next_used<T: Transport>(
    transport: &mut T,
    vq: &mut Virtqueue,
    deadline: Instant,
) -> Result<Option<UsedElem>, DriverError> {
    loop {
        if let Some(used) = vq.poll_used() {
            return Ok(Some(used));
        }
        if vq.has_used() {
            continue;
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        transport.wait_used(vq.index(), deadline - now)?;
    }
}

fn notify_if_needed<T: Transport>(
    transport: &mut T,
    vq: &mut Virtqueue,
) -> Result<(), DriverError> {
    if vq.needs_notify() {
        transport.notify(vq.index())?;
    }
    Ok(())
}

fn queue_full(queue: u16) -> impl FnOnce(QueueError) -> DriverError {
    move |e| match e {
        QueueError::Full { .. } => DriverError::QueueFull(queue),
        other => other.into(),
    }
}

/// The media-redirection device, driven through transport `T`.
#[derive(Debug)]
pub struct MediaDevice<T: Transport> {
    transport: T,
    /// Memory made by [`MediaDevice::new_memory`] (buffer pools).
    extra: ExtraMemory,
    options: DriverOptions,
    state: Option<State>,
    next_token: u64,
}

impl<T: Transport> MediaDevice<T> {
    /// Initialises the device behind `transport`.
    pub fn new(transport: T, options: DriverOptions) -> Result<MediaDevice<T>, DriverError> {
        let mut device = MediaDevice {
            transport,
            extra: ExtraMemory::default(),
            options,
            state: None,
            next_token: 1,
        };
        device.state = Some(Self::init(
            &mut device.transport,
            &device.options,
            &device.extra,
        )?);
        Ok(device)
    }

    fn state(&self) -> Result<&State, DriverError> {
        self.state.as_ref().ok_or(DriverError::NotReady)
    }

    /// Resets the device and initialises it again (after STALE,
    /// NEEDS_RESET, a daemon restart, or to drop everything in flight).
    /// Buffers in flight are released once the device has stopped.
    pub fn reset(&mut self) -> Result<(), DriverError> {
        self.transport.reset()?;
        self.state = None;
        self.state = Some(Self::init(&mut self.transport, &self.options, &self.extra)?);
        Ok(())
    }

    /// New DMA memory in a file of its own that data buffers may lie in
    /// ([`Transport::new_memory`]): a broker's buffer pool.
    pub fn new_memory(&mut self, size: usize) -> Result<Arc<DmaMemory>, DriverError> {
        let memory = self.transport.new_memory(size)?;
        self.extra
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::clone(&memory));
        Ok(memory)
    }

    /// Withdraws memory from [`MediaDevice::new_memory`]; the device must
    /// hold no buffer in it.
    pub fn release_memory(&mut self, memory: &Arc<DmaMemory>) -> Result<(), DriverError> {
        self.extra
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|m| !Arc::ptr_eq(m, memory));
        self.transport.release_memory(memory)?;
        Ok(())
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, e.g. to reconnect it before [`MediaDevice::reset`].
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back (dropping the driver state).
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// The DMA memory buffers must live in.
    pub fn dma(&self) -> &Arc<DmaMemory> {
        self.transport.dma()
    }

    /// Negotiated feature bits.
    pub fn features(&self) -> Result<u64, DriverError> {
        Ok(self.state()?.features)
    }

    /// The configuration read at initialisation (or by the last
    /// [`MediaDevice::config`]).
    pub fn cached_config(&self) -> Result<DeviceConfig, DriverError> {
        Ok(self.state()?.config)
    }

    /// Generation of the device instance, as last read.
    pub fn generation(&self) -> Result<u32, DriverError> {
        Ok(self.state()?.config.generation)
    }

    /// Reads the configuration space again and caches it.
    pub fn config(&mut self) -> Result<DeviceConfig, DriverError> {
        let mut raw = [0u8; CONFIG_SIZE];
        self.transport.read_config(0, &mut raw)?;
        let config = DeviceConfig::decode(&raw)?;
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        if config.generation != state.config.generation {
            log::warn!(
                "device generation changed {:#x} -> {:#x}: the device must be reset",
                state.config.generation,
                config.generation
            );
        }
        if config.limits.num_txqs != state.config.limits.num_txqs {
            log::warn!("num_txqs changed under a running driver; keeping the old queue set");
        }
        state.config = config;
        Ok(config)
    }

    /// When the transport announced a configuration change, re-reads it.
    pub fn poll_config_change(&mut self) -> Result<Option<DeviceConfig>, DriverError> {
        if self.transport.config_changed()? {
            self.config().map(Some)
        } else {
            Ok(None)
        }
    }
}

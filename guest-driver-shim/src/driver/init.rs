//! The virtio initialisation sequence (reset, ACKNOWLEDGE, DRIVER, feature
//! negotiation, FEATURES_OK, configuration, queues, event and capture
//! buffers, DRIVER_OK), run at start and at every reset. A device that
//! offers too little is marked FAILED.

use std::collections::HashMap;
use std::sync::Arc;

use mediaredir_proto::device::{self, CAPQ, CONFIG_SIZE, DeviceConfig, EVENTQ};

use super::{
    CapturePool, DriverError, DriverOptions, EventPool, FEATURE_CAPTURE, FEATURE_EVENT_IDX,
    FEATURE_INDIRECT_DESC, FEATURE_VERSION_1, MediaDevice, State, notify_if_needed,
};
use crate::transport::{Transport, status};
use crate::virtqueue::{ExtraMemory, QueueFeatures, Virtqueue};

impl<T: Transport> MediaDevice<T> {
    /// Marks the device FAILED (best effort) and returns `error`.
    fn fail<E>(transport: &mut T, error: E) -> E {
        if let Err(e) = transport.set_status(status::FAILED) {
            log::debug!("cannot set FAILED: {e}");
        }
        error
    }

    /// Runs the initialisation sequence on `transport` and returns what it
    /// set up.
    pub(super) fn init(
        transport: &mut T,
        options: &DriverOptions,
        extra: &ExtraMemory,
    ) -> Result<State, DriverError> {
        transport.reset()?;
        transport.set_status(status::ACKNOWLEDGE)?;
        transport.set_status(status::DRIVER)?;
        let offered = transport.device_features()?;
        if offered & FEATURE_VERSION_1 == 0 {
            return Err(Self::fail(
                transport,
                DriverError::Features(format!(
                    "the device offers {offered:#x}, without VIRTIO_F_VERSION_1"
                )),
            ));
        }
        let features = offered & (options.features | FEATURE_VERSION_1);
        if let Err(e) = transport.set_driver_features(features) {
            return Err(Self::fail(
                transport,
                DriverError::Features(format!("features {features:#x}: {e}")),
            ));
        }
        let mut raw = [0u8; CONFIG_SIZE];
        transport.read_config(0, &mut raw)?;
        let config = match DeviceConfig::decode(&raw) {
            Ok(config) => config,
            Err(e) => return Err(Self::fail(transport, e.into())),
        };
        let needed = device::queue_count(config.limits.num_txqs);
        let available = transport.num_queues()?;
        let count = u16::try_from(needed)
            .ok()
            .filter(|&n| n <= available)
            .ok_or_else(|| Self::fail(transport, DriverError::QueueCount { needed, available }))?;
        let queue_features = QueueFeatures {
            event_idx: features & FEATURE_EVENT_IDX != 0,
            indirect: features & FEATURE_INDIRECT_DESC != 0,
        };
        let dma = Arc::clone(transport.dma());
        let mut queues = Vec::with_capacity(usize::from(count));
        for index in 0..count {
            let max = transport.queue_max_size(index)?.min(options.queue_size);
            let size = if max == 0 {
                0
            } else {
                1 << (15 - max.leading_zeros().min(15))
            };
            let mut vq = Virtqueue::new(&dma, index, size, queue_features)?;
            vq.set_extra_memory(Arc::clone(extra));
            transport.setup_queue(index, &vq.layout())?;
            queues.push(vq);
        }
        let events = EventPool::post(
            &dma,
            &mut queues[usize::from(EVENTQ)],
            options.event_buffers,
        )?;
        let capture = if features & FEATURE_CAPTURE != 0 && options.capture_buffers > 0 {
            Some(CapturePool::post(
                &dma,
                &mut queues[usize::from(CAPQ)],
                options.capture_buffers,
                options.capture_buffer_bytes,
            )?)
        } else {
            None
        };
        transport.activate()?;
        notify_if_needed(transport, &mut queues[usize::from(EVENTQ)])?;
        notify_if_needed(transport, &mut queues[usize::from(CAPQ)])?;
        log::info!(
            "media device ready: features {features:#x}, generation {:#x}, {} txqs, queue size {}",
            config.generation,
            config.limits.num_txqs,
            queues[0].size()
        );
        Ok(State {
            features,
            config,
            queues,
            events,
            control: HashMap::new(),
            control_ready: Default::default(),
            data: HashMap::new(),
            capture,
        })
    }
}

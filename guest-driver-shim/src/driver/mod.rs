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
//! Conformance tests reach below the protocol through [`MediaDevice::queue_mut`],
//! [`MediaDevice::kick`], [`MediaDevice::wait_used`] and
//! [`MediaDevice::control_raw`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediaredir_proto::ProtoError;
use mediaredir_proto::control::{
    ControlRequest, MAX_CODECS, MAX_SOURCES, Request, RequestCode, ResponseHeader,
};
use mediaredir_proto::data::{Clip, DATA_HDR_SIZE, DATA_STATUS_SIZE, DataHeader, decode_status};
use mediaredir_proto::device::{
    self, CAPQ, CONFIG_SIZE, CONTROLQ, DeviceConfig, EVENTQ, F_CALL, F_CAPTURE, F_CLIPPING,
    HARD_MAX_SDP, TXQ_BASE,
};
use mediaredir_proto::event::{EVENT_SIZE, Event};
use mediaredir_proto::response::{
    RawCallStats, RawCapsHdr, RawCodecCap, RawPosition, RawSource, ResponseBody,
};
use mediaredir_proto::status::Status;

use crate::dma::{DmaBuffer, DmaError, DmaMemory};
use crate::transport::{Transport, TransportError, status};
use crate::virtqueue::{ExtraMemory, QueueError, QueueFeatures, UsedElem, Virtqueue};

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
/// Every feature this driver can use.
pub const DRIVER_FEATURES: u64 = FEATURE_VERSION_1
    | FEATURE_EVENT_IDX
    | FEATURE_INDIRECT_DESC
    | FEATURE_CAPTURE
    | FEATURE_CALL
    | FEATURE_CLIPPING;

/// Why a driver operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The transport failed (or the device went away).
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// A virtqueue operation failed.
    #[error("virtqueue: {0}")]
    Queue(QueueError),
    /// DMA memory problem (e.g. exhausted).
    #[error("DMA memory: {0}")]
    Dma(#[from] DmaError),
    /// The device did not answer in time.
    #[error("no answer on queue {queue} within {after:?}")]
    Timeout {
        /// Queue waited on.
        queue: u16,
        /// How long.
        after: Duration,
    },
    /// No free descriptors on a queue.
    #[error("queue {0} is full")]
    QueueFull(u16),
    /// The device answered with data the spec does not allow.
    #[error("the device answered malformed data: {0}")]
    Malformed(#[from] ProtoError),
    /// Feature negotiation failed.
    #[error("feature negotiation failed: {0}")]
    Features(String),
    /// The device has fewer queues than its configuration needs.
    #[error("the device has {available} queues, its configuration needs {needed}")]
    QueueCount {
        /// Queues needed (3 + num_txqs).
        needed: u32,
        /// Queues the transport reports.
        available: u16,
    },
    /// A playback queue the device does not have.
    #[error("no playback queue {0}")]
    NoSuchTxq(u16),
    /// A queue index the device does not have.
    #[error("no queue {0}")]
    NoSuchQueue(u16),
    /// The device is not initialised (a reset or init failed).
    #[error("the device is not initialised")]
    NotReady,
}

impl From<QueueError> for DriverError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Dma(e) => DriverError::Dma(e),
            other => DriverError::Queue(other),
        }
    }
}

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

/// Identifies a submitted data buffer until it completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataToken(pub u64);

/// A completed data buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCompletion {
    /// The token [`MediaDevice::submit_data`] returned.
    pub token: DataToken,
    /// The 8-byte status the device wrote (or why it is unusable).
    pub status: Result<Status, ProtoError>,
    /// Used length the device reported (8 for a well-formed completion).
    pub used_len: u32,
}

/// The raw answer to [`MediaDevice::control_raw`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// Used length the device reported (clamped to the buffer).
    pub used_len: u32,
    /// The first `used_len` bytes of the response buffer.
    pub bytes: Vec<u8>,
}

/// A sample the device wrote into a capq buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedSample {
    /// Its data header (stream, generation, flags, times).
    pub header: DataHeader,
    /// The sample.
    pub payload: Vec<u8>,
}

/// Buffers posted on capq.
#[derive(Debug)]
struct CapturePool {
    buffer: DmaBuffer,
    slot: usize,
    by_head: HashMap<u16, usize>,
}

/// Buffers of a control chain in flight.
#[derive(Debug)]
struct ControlPending {
    _request: DmaBuffer,
    response: DmaBuffer,
}

/// Buffers of a data chain in flight.
#[derive(Debug)]
struct DataPending {
    token: DataToken,
    /// Header (48 bytes) followed by the status (8 bytes).
    header: DmaBuffer,
    _payload: Option<DmaBuffer>,
}

/// Event buffers posted on the eventq.
#[derive(Debug)]
struct EventPool {
    buffer: DmaBuffer,
    by_head: HashMap<u16, usize>,
}

/// Everything set up by one initialisation.
#[derive(Debug)]
struct State {
    features: u64,
    config: DeviceConfig,
    queues: Vec<Virtqueue>,
    events: EventPool,
    control: HashMap<u16, ControlPending>,
    data: HashMap<u16, HashMap<u16, DataPending>>,
    capture: Option<CapturePool>,
}

/// Response buffer size for a request code (header + largest body).
fn response_capacity(code: RequestCode, config: &DeviceConfig) -> usize {
    let body = match code {
        RequestCode::GetCaps => size_of::<RawCapsHdr>() + MAX_CODECS * size_of::<RawCodecCap>(),
        RequestCode::EnumSources => 8 + MAX_SOURCES * size_of::<RawSource>(),
        RequestCode::PresQueryPosition => size_of::<RawPosition>(),
        RequestCode::CallCreate => 8 + config.max_sdp.min(HARD_MAX_SDP) as usize,
        RequestCode::CallStats => size_of::<RawCallStats>(),
        _ => 0,
    };
    ResponseHeader::SIZE + body
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

    fn fail<E>(transport: &mut T, error: E) -> E {
        if let Err(e) = transport.set_status(status::FAILED) {
            log::debug!("cannot set FAILED: {e}");
        }
        error
    }

    fn init(
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
        let needed = device::queue_count(config.num_txqs);
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
        let eventq = &mut queues[usize::from(EVENTQ)];
        let n = usize::from(options.event_buffers.min(eventq.size()).max(1));
        let buffer = dma.alloc(n * EVENT_SIZE, 64)?;
        let mut by_head = HashMap::with_capacity(n);
        for slot in 0..n {
            let segment = buffer.segment(slot * EVENT_SIZE, EVENT_SIZE)?;
            let head = eventq.add_chain(&[], &[segment])?;
            by_head.insert(head, slot);
        }
        let capture = if features & FEATURE_CAPTURE != 0 && options.capture_buffers > 0 {
            let capq = &mut queues[usize::from(CAPQ)];
            let count = usize::from(options.capture_buffers.min(capq.size()));
            let slot = (DATA_HDR_SIZE + options.capture_buffer_bytes).next_multiple_of(64);
            let buffer = dma.alloc(count * slot, 64)?;
            let mut by_head = HashMap::with_capacity(count);
            for i in 0..count {
                let head = capq.add_chain(&[], &[buffer.segment(i * slot, slot)?])?;
                by_head.insert(head, i);
            }
            Some(CapturePool {
                buffer,
                slot,
                by_head,
            })
        } else {
            None
        };
        transport.activate()?;
        notify_if_needed(transport, &mut queues[usize::from(EVENTQ)])?;
        notify_if_needed(transport, &mut queues[usize::from(CAPQ)])?;
        log::info!(
            "media device ready: features {features:#x}, generation {:#x}, {} txqs, queue size {}",
            config.generation,
            config.num_txqs,
            queues[0].size()
        );
        Ok(State {
            features,
            config,
            queues,
            events: EventPool { buffer, by_head },
            control: HashMap::new(),
            data: HashMap::new(),
            capture,
        })
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
        if config.num_txqs != state.config.num_txqs {
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

    /// Sends `request` for `target` with the current generation, waits for
    /// the answer (at most the configured timeout) and decodes it. The body
    /// is [`ResponseBody::None`] unless the status is OK.
    pub fn control(
        &mut self,
        request: Request,
        target: u32,
    ) -> Result<(ResponseHeader, ResponseBody), DriverError> {
        let config = self.state()?.config;
        let code = request.code();
        let bytes = ControlRequest {
            generation: config.generation,
            target,
            request,
        }
        .encode();
        let answer = self.control_raw(&bytes, response_capacity(code, &config))?;
        if (answer.used_len as usize) < ResponseHeader::SIZE {
            return Err(ProtoError::Truncated {
                what: "response header",
                need: ResponseHeader::SIZE,
                got: answer.used_len as usize,
            }
            .into());
        }
        let (header, rest) = ResponseHeader::decode(&answer.bytes)?;
        let body = if header.status.is_ok() {
            ResponseBody::decode(code, rest)?
        } else {
            ResponseBody::None
        };
        Ok((header, body))
    }

    /// Bytes of response buffer a request with `code` needs (header plus
    /// its largest body), for callers of [`MediaDevice::control_raw`] that
    /// forward encoded requests (the broker).
    pub fn response_capacity(&self, code: RequestCode) -> Result<usize, DriverError> {
        Ok(response_capacity(code, &self.state()?.config))
    }

    /// Sends arbitrary bytes as the readable part of a control chain with a
    /// writable buffer of `response_capacity` bytes, and returns what the
    /// device wrote. For conformance tests of malformed requests.
    pub fn control_raw(
        &mut self,
        request: &[u8],
        response_capacity: usize,
    ) -> Result<RawResponse, DriverError> {
        let timeout = self.options.timeout;
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        let dma = Arc::clone(self.transport.dma());
        let request_buffer = dma.alloc(request.len().max(1), 8)?;
        request_buffer.write_at(0, request)?;
        let response = dma.alloc(response_capacity.max(1), 8)?;
        let vq = &mut state.queues[usize::from(CONTROLQ)];
        let head = vq
            .add_chain(
                &[request_buffer.segment(0, request.len())?],
                &[response.segment(0, response_capacity)?],
            )
            .map_err(queue_full(CONTROLQ))?;
        state.control.insert(
            head,
            ControlPending {
                _request: request_buffer,
                response,
            },
        );
        notify_if_needed(&mut self.transport, vq)?;
        let deadline = Instant::now() + timeout;
        loop {
            let Some(used) = next_used(&mut self.transport, vq, deadline)? else {
                log::warn!("control request (head {head}) unanswered after {timeout:?}");
                return Err(DriverError::Timeout {
                    queue: CONTROLQ,
                    after: timeout,
                });
            };
            let Some(pending) = state.control.remove(&used.head) else {
                log::warn!("controlq: used head {} has no request", used.head);
                continue;
            };
            if used.head != head {
                log::info!("controlq: late answer to an abandoned request dropped");
                continue;
            }
            let len = (used.len as usize).min(response_capacity);
            let bytes = pending.response.read_vec(0, len)?;
            return Ok(RawResponse {
                used_len: used.len,
                bytes,
            });
        }
    }

    fn txq_queue(&self, txq: u16) -> Result<u16, DriverError> {
        let state = self.state()?;
        if u32::from(txq) >= state.config.num_txqs {
            return Err(DriverError::NoSuchTxq(txq));
        }
        Ok(TXQ_BASE + txq)
    }

    /// Queues a data buffer on playback queue `txq`: `header` (generation 0
    /// is replaced by the current one; every other field is sent as given)
    /// followed by `payload` segments, which must lie in
    /// [`MediaDevice::dma`] memory and stay untouched until completion.
    pub fn submit_data(
        &mut self,
        txq: u16,
        header: &DataHeader,
        payload: &[(u64, u32)],
    ) -> Result<DataToken, DriverError> {
        self.submit(txq, header, payload, None)
    }

    /// Like [`MediaDevice::submit_data`], copying `payload` into new DMA
    /// memory first; `header.payload_len` is set to its length.
    pub fn submit_data_copy(
        &mut self,
        txq: u16,
        header: &DataHeader,
        payload: &[u8],
    ) -> Result<DataToken, DriverError> {
        let buffer = self.dma().alloc(payload.len().max(1), 64)?;
        buffer.write_at(0, payload)?;
        let segment = buffer.segment(0, payload.len())?;
        let header = DataHeader {
            payload_len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            ..*header
        };
        let segments: &[(u64, u32)] = if payload.is_empty() { &[] } else { &[segment] };
        self.submit(txq, &header, segments, Some(buffer))
    }

    fn submit(
        &mut self,
        txq: u16,
        header: &DataHeader,
        payload: &[(u64, u32)],
        owned: Option<DmaBuffer>,
    ) -> Result<DataToken, DriverError> {
        let queue = self.txq_queue(txq)?;
        let threshold = self.options.indirect_threshold;
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        let mut header = *header;
        if header.generation == 0 {
            header.generation = state.config.generation;
        }
        if state.features & FEATURE_CLIPPING == 0 {
            // Without F_CLIPPING the bytes are reserved (spec, 7.8): the
            // audio plays untrimmed rather than being refused.
            header.clip = Clip::NONE;
        }
        let dma = Arc::clone(self.transport.dma());
        let head_buffer = dma.alloc(DATA_HDR_SIZE + DATA_STATUS_SIZE, 64)?;
        head_buffer.write_at(0, &header.to_bytes())?;
        let mut readable = Vec::with_capacity(payload.len() + 1);
        readable.push(head_buffer.segment(0, DATA_HDR_SIZE)?);
        readable.extend_from_slice(payload);
        let writable = [head_buffer.segment(DATA_HDR_SIZE, DATA_STATUS_SIZE)?];
        let vq = &mut state.queues[usize::from(queue)];
        let indirect = vq.features().indirect && readable.len() + 1 > threshold;
        let head = if indirect {
            vq.add_indirect_chain(&readable, &writable)
        } else {
            vq.add_chain(&readable, &writable)
        }
        .map_err(queue_full(queue))?;
        let token = DataToken(self.next_token);
        self.next_token += 1;
        state.data.entry(queue).or_default().insert(
            head,
            DataPending {
                token,
                header: head_buffer,
                _payload: owned,
            },
        );
        notify_if_needed(&mut self.transport, vq)?;
        Ok(token)
    }

    fn collect_completions(
        state: &mut State,
        queue: u16,
        used: UsedElem,
        out: &mut Vec<DataCompletion>,
    ) {
        let Some(pending) = state
            .data
            .get_mut(&queue)
            .and_then(|map| map.remove(&used.head))
        else {
            log::warn!("txq {queue}: used head {} has no data buffer", used.head);
            return;
        };
        let status = if (used.len as usize) < DATA_STATUS_SIZE {
            Err(ProtoError::Truncated {
                what: "data status",
                need: DATA_STATUS_SIZE,
                got: used.len as usize,
            })
        } else {
            pending
                .header
                .read_vec(DATA_HDR_SIZE, DATA_STATUS_SIZE)
                .map_err(|_| ProtoError::Truncated {
                    what: "data status",
                    need: DATA_STATUS_SIZE,
                    got: 0,
                })
                .and_then(|bytes| decode_status(&bytes))
        };
        out.push(DataCompletion {
            token: pending.token,
            status,
            used_len: used.len,
        });
    }

    /// Completed data buffers of `txq`, without waiting.
    pub fn poll_data_completions(&mut self, txq: u16) -> Result<Vec<DataCompletion>, DriverError> {
        let queue = self.txq_queue(txq)?;
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        let mut out = Vec::new();
        while let Some(used) = state.queues[usize::from(queue)].poll_used() {
            Self::collect_completions(state, queue, used, &mut out);
        }
        Ok(out)
    }

    /// Completed data buffers of `txq`, waiting up to `timeout` for the first
    /// one (an empty list on timeout).
    pub fn wait_data_completions(
        &mut self,
        txq: u16,
        timeout: Duration,
    ) -> Result<Vec<DataCompletion>, DriverError> {
        let queue = self.txq_queue(txq)?;
        let deadline = Instant::now() + timeout;
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        let mut out = Vec::new();
        while out.is_empty() {
            let vq = &mut state.queues[usize::from(queue)];
            let Some(used) = next_used(&mut self.transport, vq, deadline)? else {
                break;
            };
            Self::collect_completions(state, queue, used, &mut out);
        }
        while let Some(used) = state.queues[usize::from(queue)].poll_used() {
            Self::collect_completions(state, queue, used, &mut out);
        }
        Ok(out)
    }

    /// Data buffers of `txq` the device still holds.
    pub fn data_in_flight(&self, txq: u16) -> Result<usize, DriverError> {
        let queue = self.txq_queue(txq)?;
        Ok(self.state()?.data.get(&queue).map_or(0, HashMap::len))
    }

    /// The next event, waiting up to `timeout` (`None` on timeout), with the
    /// generation it carries. The event buffer is posted again at once.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<(Event, u32)>, DriverError> {
        let deadline = Instant::now() + timeout;
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        loop {
            let vq = &mut state.queues[usize::from(EVENTQ)];
            let Some(used) = next_used(&mut self.transport, vq, deadline)? else {
                return Ok(None);
            };
            let Some(slot) = state.events.by_head.remove(&used.head) else {
                log::warn!("eventq: used head {} is not an event buffer", used.head);
                continue;
            };
            let offset = slot * EVENT_SIZE;
            let bytes = state.events.buffer.read_vec(offset, EVENT_SIZE)?;
            // Repost at once, zeroed so a short write cannot show stale data.
            state.events.buffer.write_at(offset, &[0u8; EVENT_SIZE])?;
            let segment = state.events.buffer.segment(offset, EVENT_SIZE)?;
            let head = vq.add_chain(&[], &[segment])?;
            state.events.by_head.insert(head, slot);
            notify_if_needed(&mut self.transport, vq)?;
            if (used.len as usize) < EVENT_SIZE {
                return Err(ProtoError::Truncated {
                    what: "event",
                    need: EVENT_SIZE,
                    got: used.len as usize,
                }
                .into());
            }
            return Event::decode(&bytes).map(Some).map_err(Into::into);
        }
    }

    // ----- raw access for conformance tests -----

    /// A virtqueue, for raw chains ([`Virtqueue::add_raw_descriptors`]).
    /// Chains added this way are reported by [`MediaDevice::wait_used`].
    pub fn queue_mut(&mut self, queue: u16) -> Result<&mut Virtqueue, DriverError> {
        self.state
            .as_mut()
            .ok_or(DriverError::NotReady)?
            .queues
            .get_mut(usize::from(queue))
            .ok_or(DriverError::NoSuchQueue(queue))
    }

    /// Notifies the device about `queue`, whatever notification suppression
    /// says.
    pub fn kick(&mut self, queue: u16) -> Result<(), DriverError> {
        self.queue_mut(queue)?;
        self.transport.notify(queue)?;
        Ok(())
    }

    /// The next used entry of `queue`, waiting up to `timeout` (`None` on
    /// timeout). Bypasses the protocol bookkeeping: use it on queues driven
    /// through [`MediaDevice::queue_mut`] only.
    pub fn wait_used(
        &mut self,
        queue: u16,
        timeout: Duration,
    ) -> Result<Option<UsedElem>, DriverError> {
        let deadline = Instant::now() + timeout;
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        let vq = state
            .queues
            .get_mut(usize::from(queue))
            .ok_or(DriverError::NoSuchQueue(queue))?;
        next_used(&mut self.transport, vq, deadline)
    }

    /// Samples the device wrote into capq buffers since the last call,
    /// without waiting; each buffer is posted again at once. Samples of
    /// another generation are dropped (DRV-CAP-3).
    pub fn poll_captures(&mut self) -> Result<Vec<CapturedSample>, DriverError> {
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        let generation = state.config.generation;
        let Some(pool) = state.capture.as_mut() else {
            return Ok(Vec::new());
        };
        let vq = &mut state.queues[usize::from(CAPQ)];
        let mut out = Vec::new();
        while let Some(used) = vq.poll_used() {
            let Some(slot) = pool.by_head.remove(&used.head) else {
                log::warn!("capq: used head {} is not a capture buffer", used.head);
                continue;
            };
            let offset = slot * pool.slot;
            let len = (used.len as usize).min(pool.slot);
            let bytes = pool.buffer.read_vec(offset, len)?;
            let head = vq.add_chain(&[], &[pool.buffer.segment(offset, pool.slot)?])?;
            pool.by_head.insert(head, slot);
            let Some(header) = bytes
                .get(..DATA_HDR_SIZE)
                .and_then(|h| DataHeader::decode(h, u32::MAX).ok())
            else {
                log::warn!("capq: a buffer came back with {len} bytes and no valid header");
                continue;
            };
            let end = DATA_HDR_SIZE + header.payload_len as usize;
            if header.generation != generation || end > len {
                log::warn!(
                    "capq: sample of stream {} dropped (generation {:#x}, {} of {len} bytes)",
                    header.stream_id,
                    header.generation,
                    end
                );
                continue;
            }
            out.push(CapturedSample {
                header,
                payload: bytes[DATA_HDR_SIZE..end].to_vec(),
            });
        }
        notify_if_needed(&mut self.transport, &mut state.queues[usize::from(CAPQ)])?;
        Ok(out)
    }

    /// Index of the capture queue (buffers for it go through
    /// [`MediaDevice::queue_mut`] for now).
    pub fn capture_queue(&self) -> u16 {
        CAPQ
    }
}

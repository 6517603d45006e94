//! The queue layer and the device core driven without vhost-user: a plain
//! anonymous guest memory and a [`Virtqueue`] over a `VecDeque` of heads,
//! the driver's side played by writing descriptors by hand.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use mediaredir_proto::control::{ControlRequest, Request, ResponseHeader};
use mediaredir_proto::data::{DATA_HDR_SIZE, DataHeader, FLAG_KEYFRAME};
use mediaredir_proto::event::{EVENT_SIZE, Event};
use mediaredir_proto::status::Status;
use mediaredir_proto::wire;
use virtio_queue::desc::split::Descriptor;
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use super::*;
use crate::capture::{CaptureSink, Delivery};
use crate::core::EventSink;
use crate::guest_buffer::{GuestBuffer, Waker};
use crate::limits::Limits;
use crate::memory::is_in_guest_memory;
use crate::model::tests::{client_caps, video};
use crate::uplink::{ClientEvents, Uplink};

const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const QUEUE_SIZE: u16 = 16;

/// A virtqueue in plain memory: the table at `table`, the available ring a
/// `VecDeque` of heads, the used ring a list.
struct TestQueue {
    mem: Arc<GuestMemoryMmap>,
    table: GuestAddress,
    avail: Mutex<VecDeque<u16>>,
    last: Mutex<Option<u16>>,
    used: Mutex<Vec<(u16, u32)>>,
}

impl TestQueue {
    fn new(mem: &Arc<GuestMemoryMmap>, table: u64) -> Arc<TestQueue> {
        Arc::new(TestQueue {
            mem: Arc::clone(mem),
            table: GuestAddress(table),
            avail: Mutex::new(VecDeque::new()),
            last: Mutex::new(None),
            used: Mutex::new(Vec::new()),
        })
    }

    /// Posts a chain of `(addr, len, writable)` buffers as descriptors
    /// `first..`, and makes it available.
    fn post(&self, first: u16, buffers: &[(u64, u32, bool)]) {
        for (i, &(addr, len, writable)) in buffers.iter().enumerate() {
            let index = first + u16::try_from(i).unwrap();
            let mut flags = if writable { F_WRITE } else { 0 };
            if i + 1 < buffers.len() {
                flags |= F_NEXT;
            }
            let desc = Descriptor::new(addr, len, flags, index + 1);
            self.mem
                .write_obj(desc, self.table.unchecked_add(u64::from(index) * 16))
                .unwrap();
        }
        self.avail.lock().unwrap().push_back(first);
    }

    fn used(&self) -> Vec<(u16, u32)> {
        self.used.lock().unwrap().clone()
    }
}

impl UsedRing for TestQueue {
    fn complete(&self, head: u16, len: u32) {
        self.used.lock().unwrap().push((head, len));
    }
}

impl Virtqueue for TestQueue {
    fn memory(&self) -> Arc<dyn GuestRam> {
        self.mem.clone()
    }

    fn pop(&self) -> Option<Avail> {
        let head = self.avail.lock().unwrap().pop_front()?;
        *self.last.lock().unwrap() = Some(head);
        Some(Avail {
            head,
            table: self.table,
            size: QUEUE_SIZE,
        })
    }

    fn unpop(&self) {
        if let Some(head) = self.last.lock().unwrap().take() {
            self.avail.lock().unwrap().push_front(head);
        }
    }

    fn disable_notification(&self) {}

    fn enable_notification(&self) -> bool {
        !self.avail.lock().unwrap().is_empty()
    }
}

/// An uplink that keeps the samples it is given.
#[derive(Default)]
struct KeepingUplink {
    samples: Mutex<Vec<(wire::SampleHeader, GuestBuffer)>>,
}

impl Uplink for KeepingUplink {
    fn send(&self, _msg: wire::Message) {}
    fn send_sample(&self, sample: wire::SampleHeader, buffer: GuestBuffer) {
        self.samples.lock().unwrap().push((sample, buffer));
    }
    fn cancel(&self, _stream: u32, _status: Status) {}
    fn forget(&self, _stream: u32) {}
    fn shutdown(&self) {}
}

struct NoWaker;

impl Waker for NoWaker {
    fn wake(&self) {}
}

fn memory() -> Arc<GuestMemoryMmap> {
    Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap())
}

/// A core with a connected client, its uplink, and a context over it.
fn core() -> (Arc<DeviceCore>, Arc<KeepingUplink>) {
    let uplink = Arc::new(KeepingUplink::default());
    let core = DeviceCore::new(
        Limits::default(),
        uplink.clone(),
        Arc::new(Counters::default()),
    );
    core.client_connected(client_caps());
    (core, uplink)
}

fn context(core: &Arc<DeviceCore>) -> QueueContext<'_> {
    QueueContext {
        core,
        indirect: false,
        event_idx: true,
        max_payload: Limits::default().device.max_buffer_bytes,
    }
}

/// Sends `request` on the control queue (descriptors 0 and 1, request at
/// 0x1_0000, response at 0x2_0000) and returns the response header.
fn control(
    core: &Arc<DeviceCore>,
    mem: &Arc<GuestMemoryMmap>,
    target: u32,
    request: Request,
) -> ResponseHeader {
    control_draining(core, mem, target, request, &|_, _| {})
}

/// [`control`] with the txq drainer the vhost-user adapter passes.
fn control_draining(
    core: &Arc<DeviceCore>,
    mem: &Arc<GuestMemoryMmap>,
    target: u32,
    request: Request,
    drainer: TxqDrainer<'_>,
) -> ResponseHeader {
    let queue = TestQueue::new(mem, 0x1000);
    let bytes = ControlRequest {
        generation: core.model().generation(),
        target,
        request,
    }
    .encode();
    mem.write_slice(&bytes, GuestAddress(0x1_0000)).unwrap();
    queue.post(
        0,
        &[
            (0x1_0000, u32::try_from(bytes.len()).unwrap(), false),
            (0x2_0000, 512, true),
        ],
    );
    let dyn_queue: Arc<dyn Virtqueue> = queue.clone();
    let more = process_controlq(&context(core), &dyn_queue, drainer);
    assert!(!more);
    let used = queue.used();
    assert_eq!(used.len(), 1);
    assert!(used[0].1 >= u32::try_from(ResponseHeader::SIZE).unwrap());
    let mut out = [0u8; 64];
    mem.read_slice(&mut out, GuestAddress(0x2_0000)).unwrap();
    ResponseHeader::decode(&out).unwrap().0
}

/// A keyframe's header at pts 0 for `stream_id` in the model's current
/// generation.
fn keyframe_header(
    core: &DeviceCore,
    stream_id: u32,
    payload_len: u32,
    duration: Option<u64>,
) -> DataHeader {
    DataHeader {
        clip: Default::default(),
        stream_id,
        generation: core.model().generation(),
        flags: FLAG_KEYFRAME,
        payload_len,
        pts: Some(0),
        dts: None,
        duration,
    }
}

#[test]
fn playback_buffer_goes_to_the_uplink_in_place_and_completes_on_drop() {
    let mem = memory();
    let (core, uplink) = core();
    let pres = control(&core, &mem, 0, Request::PresCreate { live: false });
    assert_eq!(pres.status, Status::Ok);
    let stream = control(&core, &mem, pres.id, Request::StreamCreate(video(0)));
    assert_eq!(stream.status, Status::Ok);

    let header = keyframe_header(&core, stream.id, 1000, Some(1_000_000));
    mem.write_slice(&header.to_bytes(), GuestAddress(0x3_0000))
        .unwrap();
    mem.write_slice(&[0xAB; 1000], GuestAddress(0x4_0000))
        .unwrap();
    let txq = TestQueue::new(&mem, 0x8000);
    // A malformed chain first (no status), then the buffer: header, payload
    // in two pieces, status.
    txq.post(0, &[(0x3_0000, 48, false)]);
    txq.post(
        1,
        &[
            (0x3_0000, 48, false),
            (0x4_0000, 600, false),
            (0x4_0000 + 600, 400, false),
            (0x5_0000, 8, true),
        ],
    );
    let dyn_txq: Arc<dyn Virtqueue> = txq.clone();
    let waker: Arc<dyn Waker> = Arc::new(NoWaker);
    assert!(!process_txq(&context(&core), &dyn_txq, 0, &waker));
    assert_eq!(txq.used(), vec![(0, 0)], "the malformed chain is returned");

    let (sample, mut buffer) = uplink.samples.lock().unwrap().pop().unwrap();
    assert_eq!(sample.stream, stream.id);
    assert_eq!(buffer.payload_len(), 1000);
    assert!(
        buffer.slices().iter().all(|s| is_in_guest_memory(&*mem, s)),
        "the payload stays in guest memory"
    );
    buffer.set_status(Status::Ok);
    drop(buffer);
    assert_eq!(txq.used(), vec![(0, 0), (1, 8)]);
    let status: u32 = mem.read_obj(GuestAddress(0x5_0000)).unwrap();
    assert_eq!(status, Status::Ok.as_u32());
    let counters = core.counters().snapshot();
    assert_eq!(counters.payload_bytes_copied, 0);
}

#[test]
fn destroying_a_stream_cancels_its_buffers_still_on_the_txq() {
    // Spec DEV-STRM-4: a buffer on the txq that the device has not taken
    // (held back for credit while paused, say) comes back CANCELLED as the
    // destroy is answered: the player frees its pool once every buffer is
    // back, and nothing else would look at that queue again.
    let mem = memory();
    let (core, _uplink) = core();
    let pres = control(&core, &mem, 0, Request::PresCreate { live: false });
    let stream = control(&core, &mem, pres.id, Request::StreamCreate(video(0)));
    assert_eq!(stream.status, Status::Ok);
    let header = keyframe_header(&core, stream.id, 16, None);
    mem.write_slice(&header.to_bytes(), GuestAddress(0x3_0000))
        .unwrap();
    let txq = TestQueue::new(&mem, 0x8000);
    txq.post(
        0,
        &[
            (0x3_0000, 48, false),
            (0x4_0000, 16, false),
            (0x5_0000, 8, true),
        ],
    );
    let dyn_txq: Arc<dyn Virtqueue> = txq.clone();
    let ctx = context(&core);
    let drainer = |index: u32, id: u32| {
        assert_eq!(index, 0, "the stream's own txq");
        drain_stream(&ctx, dyn_txq.as_ref(), index, id);
    };
    let destroyed = control_draining(&core, &mem, stream.id, Request::StreamDestroy, &drainer);
    assert_eq!(destroyed.status, Status::Ok);
    assert_eq!(txq.used(), vec![(0, 8)]);
    let status: u32 = mem.read_obj(GuestAddress(0x5_0000)).unwrap();
    assert_eq!(status, Status::Cancelled.as_u32());
}

#[test]
fn event_queue_rejects_what_is_not_a_writable_buffer() {
    let mem = memory();
    let (core, _uplink) = core();
    let queue = TestQueue::new(&mem, 0x1000);
    queue.post(0, &[(0x2_0000, 64, false)]);
    queue.post(1, &[(0x2_0000, 32, true)]);
    queue.post(2, &[(0x3_0000, 64, true)]);
    let sink = EventqSink::new(queue.clone(), false, Arc::clone(core.counters()));
    // The device's start and the client's connection are pending events.
    core.set_event_sink(Some(Arc::new(sink)));
    assert_eq!(queue.used(), vec![(0, 0), (1, 0), (2, 64)]);
    let mut event = [0u8; EVENT_SIZE];
    mem.read_slice(&mut event, GuestAddress(0x3_0000)).unwrap();
    let generation = core.model().generation();
    assert!(matches!(Event::decode(&event), Ok((_, g)) if g == generation));
    let sink = EventqSink::new(queue.clone(), false, Arc::clone(core.counters()));
    assert!(!sink.try_deliver(&[0; EVENT_SIZE]), "no buffer left");
}

#[test]
fn capture_queue_keeps_a_small_buffer_and_counts_the_copy() {
    let mem = memory();
    let counters = Arc::new(Counters::default());
    let queue = TestQueue::new(&mem, 0x1000);
    queue.post(0, &[(0x2_0000, 64, false)]);
    queue.post(1, &[(0x3_0000, 60, true)]);
    let sink = CapqSink::new(queue.clone(), false, Arc::clone(&counters));
    let header = [7u8; DATA_HDR_SIZE];
    assert_eq!(sink.try_deliver(&header, &[1; 100]), Delivery::TooSmall);
    assert_eq!(queue.used(), vec![(0, 0)], "the readable chain is returned");
    assert_eq!(sink.try_deliver(&header, &[1; 12]), Delivery::Written);
    assert_eq!(queue.used(), vec![(0, 0), (1, 60)]);
    assert_eq!(sink.try_deliver(&header, &[1; 12]), Delivery::NoBuffer);
    let mut body = [0u8; 12];
    mem.read_slice(&mut body, GuestAddress(0x3_0000 + 48))
        .unwrap();
    assert_eq!(body, [1; 12]);
    assert_eq!(counters.snapshot().payload_bytes_copied, 12);
}

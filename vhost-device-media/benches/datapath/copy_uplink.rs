//! The copying baseline: an uplink that does what a daemon without zero
//! copy does, copying each payload out of guest memory before sending it.

use std::collections::VecDeque;
use std::io::{BufReader, Read};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{self, FrameReader, Message, SampleHeader};
use vhost_user_mediaredir::counters::Counters;
use vhost_user_mediaredir::guest_buffer::{GuestBuffer, RawSlice};
use vhost_user_mediaredir::uplink::Uplink;
use vhost_user_mediaredir::uplink::stream::ClientStream;

enum CopyItem {
    Message(Message),
    Sample(SampleHeader, Vec<u8>, GuestBuffer),
}

/// Samples written and waiting for the client's cumulative ack.
#[derive(Default)]
struct CopyBook {
    /// Highest ack seen (an ack can overtake the writer's bookkeeping).
    acked: u64,
    unacked: VecDeque<(u64, GuestBuffer)>,
}

struct CopyShared {
    queue: Mutex<VecDeque<CopyItem>>,
    wake: Condvar,
    book: Mutex<CopyBook>,
    counters: Arc<Counters>,
    stream: ClientStream,
    closed: AtomicBool,
}

/// An uplink that copies each payload out of guest memory into a fresh `Vec`
/// before sending it: the baseline. Same queue, writer thread, `writev`,
/// hold-until-ack and completion as the socket uplink; only the copy differs.
pub(crate) struct CopyUplink {
    shared: Arc<CopyShared>,
}

impl CopyUplink {
    /// Serves a connected socket (no handshake: the client is known).
    pub(crate) fn new(stream: UnixStream, counters: Arc<Counters>) -> CopyUplink {
        let acks = stream.try_clone().expect("clone socket");
        let shared = Arc::new(CopyShared {
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            book: Mutex::new(CopyBook::default()),
            counters,
            stream: ClientStream::Unix(stream),
            closed: AtomicBool::new(false),
        });
        let writer = Arc::clone(&shared);
        thread::Builder::new()
            .name("copy-writer".into())
            .spawn(move || copy_write_loop(&writer))
            .expect("spawn writer");
        let reader = Arc::clone(&shared);
        thread::Builder::new()
            .name("copy-acks".into())
            .spawn(move || copy_ack_loop(&reader, acks))
            .expect("spawn ack reader");
        CopyUplink { shared }
    }

    fn enqueue(&self, item: CopyItem) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(item);
        self.shared.wake.notify_all();
    }
}

/// Copies the payload of `buffer` into a new `Vec` (not zeroed first).
fn copy_payload(buffer: &GuestBuffer) -> Vec<u8> {
    let len = buffer.payload_len() as usize;
    let mut copy: Vec<u8> = Vec::with_capacity(len);
    for slice in buffer.slices() {
        let dst = copy.spare_capacity_mut()[..slice.len]
            .as_mut_ptr()
            .cast::<u8>();
        // SAFETY: `slice` lies in guest memory that `buffer` keeps mapped;
        // `dst` has room for `slice.len` bytes (the spare capacity was just
        // sliced to that length) and is a fresh allocation, so the two do not
        // overlap. Guest memory is read as raw bytes, never as a reference.
        unsafe { std::ptr::copy_nonoverlapping(slice.ptr, dst, slice.len) };
        let filled = copy.len() + slice.len;
        // SAFETY: the bytes up to `filled` were initialised just above.
        unsafe { copy.set_len(filled) };
    }
    copy
}

impl Uplink for CopyUplink {
    fn send(&self, msg: Message) {
        self.enqueue(CopyItem::Message(msg));
    }

    fn send_sample(&self, sample: SampleHeader, buffer: GuestBuffer) {
        let copy = copy_payload(&buffer);
        Counters::add(
            &self.shared.counters.payload_bytes_copied,
            copy.len() as u64,
        );
        self.enqueue(CopyItem::Sample(sample, copy, buffer));
    }

    fn cancel(&self, _stream: u32, status: Status) {
        let doomed: Vec<(u64, GuestBuffer)> = self
            .shared
            .book
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unacked
            .drain(..)
            .collect();
        for (_, mut buf) in doomed {
            buf.set_status(status);
        }
    }

    fn forget(&self, stream: u32) {
        self.cancel(stream, Status::Cancelled);
    }

    fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.shared.stream.shutdown();
        self.shared.wake.notify_all();
    }
}

fn copy_write_loop(shared: &CopyShared) {
    let mut fbb = wire::FlatBufferBuilder::new();
    let mut head = Vec::new();
    loop {
        let item = {
            let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if shared.closed.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(item) = q.pop_front() {
                    break item;
                }
                q = shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let (msg, payload, buffer) = match item {
            CopyItem::Message(msg) => (msg, Vec::new(), None),
            CopyItem::Sample(sample, copy, buffer) => (Message::Sample(sample), copy, Some(buffer)),
        };
        wire::encode_frame_into(&mut fbb, &msg, payload.len(), &mut head).expect("encode frame");
        let slices = [RawSlice {
            ptr: payload.as_ptr(),
            len: payload.len(),
        }];
        if shared.stream.write_frame(&head, &slices).is_err() {
            return;
        }
        drop(payload);
        if let (Message::Sample(sample), Some(buffer)) = (msg, buffer) {
            Counters::add(
                &shared.counters.payload_bytes,
                u64::from(buffer.payload_len()),
            );
            let mut book = shared.book.lock().unwrap_or_else(|p| p.into_inner());
            if sample.seq > book.acked {
                book.unacked.push_back((sample.seq, buffer));
            } else {
                drop(book);
                let mut buffer = buffer;
                buffer.set_status(Status::Ok);
            }
        }
    }
}

fn copy_ack_loop(shared: &CopyShared, stream: UnixStream) {
    let mut stream = BufReader::new(stream);
    let mut reader = FrameReader::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        while let Some((msg, _)) = reader.next_frame() {
            if let Message::Ack { seq, status, .. } = msg {
                let mut done = Vec::new();
                {
                    let mut book = shared.book.lock().unwrap_or_else(|p| p.into_inner());
                    book.acked = book.acked.max(seq);
                    while book.unacked.front().is_some_and(|(n, _)| *n <= seq) {
                        done.extend(book.unacked.pop_front().map(|(_, b)| b));
                    }
                }
                for mut buffer in done {
                    buffer.set_status(status);
                }
            }
        }
        let want = reader.wanted().clamp(1, buf.len());
        match stream.read(&mut buf[..want]) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if reader.feed(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

//! The players' API, in the style of V4L2: what a guest application uses
//! to redirect media through the broker (spec §9).
//!
//! | V4L2 | here |
//! |---|---|
//! | `open("/dev/videoN")` | [`MediaRedir::open`] (the broker socket) |
//! | `VIDIOC_QUERYCAP` | [`MediaRedir::query_caps`] (includes what the connected client decodes) |
//! | `VIDIOC_ENUM_FMT` / `VIDIOC_TRY_FMT` | [`MediaRedir::enum_formats`] / [`MediaRedir::try_format`] |
//! | `VIDIOC_S_FMT` | [`MediaRedir::create_stream`] (in a presentation: one clock for audio and video) |
//! | `VIDIOC_REQBUFS` + `mmap` | [`MediaRedir::request_buffers`] (a pool of the broker's DMA memory, mapped here) |
//! | fill the mapped buffer | [`MediaRedir::buffer_mut`] (in place: no copy anywhere in the guest) |
//! | `VIDIOC_QBUF` / `VIDIOC_DQBUF` | [`MediaRedir::queue_buffer`] / [`MediaRedir::dequeue_buffer`] |
//! | `VIDIOC_STREAMON` / `STREAMOFF` | [`MediaRedir::stream_on`] / [`MediaRedir::stream_off`] |
//! | `VIDIOC_DQEVENT` | [`MediaRedir::dequeue_event`] (client connected/gone, EOS, position, errors, QoS, link quality) |
//! | `VIDIOC_S_CTRL` (volume, mute) | [`MediaRedir::set_volume`] |
//! | `VIDIOC_S_SELECTION` | [`MediaRedir::set_geometry`] (overlay rectangle, visibility) |
//! | `poll()` | the fd from [`AsFd`]: readable when a reply, completion or event waits |
//!
//! Blocking by default; [`MediaRedir::set_nonblocking`] makes
//! [`MediaRedir::dequeue_buffer`] and [`MediaRedir::dequeue_event`] fail
//! with [`PlayerError::WouldBlock`] instead of waiting (like `EAGAIN`).
//! Packets are read from the socket into internal queues, so after `poll`
//! reports the fd readable a caller dequeues until `WouldBlock`, as with an
//! edge-triggered `epoll`. Control calls always wait for their answer.
//!
//! One file per part of the API: the connection and its lifecycle here,
//! the socket exchange with the broker in `socket` (over [`seqpacket`]),
//! control requests in `control`, calls in `calls`, playback buffers in
//! `streaming` (their bookkeeping in `buffers`, the mapped pool in
//! `mapping`), capture in `capture`, events in `events`.
//!
//! This crate is what every player links, so it holds no driver code: the
//! broker that owns the device, and a broker started in a tool's own
//! process (`--pci`, `--vhost-user`), are in `guest-driver-shim`, which
//! depends on this crate and never the reverse.

mod buffers;
mod calls;
mod capture;
mod control;
mod error;
mod events;
mod mapping;
pub mod seqpacket;
mod socket;
mod streaming;

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use buffers::BufferQueue;
pub use buffers::Dequeued;
pub use capture::Captured;
pub use control::{Capabilities, playback_format};
pub use error::PlayerError;
use mediaredir_proto::broker::{BROKER_VERSION, BrokerMessage, DEFAULT_SOCKET, MAX_MESSAGE};
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;
pub use streaming::BufferInfo;

use crate::seqpacket::SeqpacketConn;

/// A connection to the broker: the player's handle on the device.
#[derive(Debug)]
pub struct MediaRedir {
    conn: SeqpacketConn,
    next_tag: u32,
    generation: u32,
    nonblocking: bool,
    timeout: Duration,
    replies: HashMap<u32, (BrokerMessage, Option<OwnedFd>)>,
    completions: HashMap<u32, Status>,
    events: VecDeque<Event>,
    queues: HashMap<u32, BufferQueue>,
    buf: Vec<u8>,
}

impl AsFd for MediaRedir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }
}

impl MediaRedir {
    /// Connects to the broker at `path` and says `HELLO`.
    pub fn open(path: impl AsRef<Path>) -> Result<MediaRedir, PlayerError> {
        let conn = SeqpacketConn::connect(path.as_ref())?;
        conn.set_nonblocking(true)?;
        let mut me = MediaRedir {
            conn,
            next_tag: 1,
            generation: 0,
            nonblocking: false,
            timeout: Duration::from_secs(10),
            replies: HashMap::new(),
            completions: HashMap::new(),
            events: VecDeque::new(),
            queues: HashMap::new(),
            buf: vec![0; MAX_MESSAGE],
        };
        me.hello()?;
        Ok(me)
    }

    /// Connects to the broker's default socket (`/run/mediaredir/broker.sock`).
    pub fn open_default() -> Result<MediaRedir, PlayerError> {
        Self::open(DEFAULT_SOCKET)
    }

    /// Says `HELLO` again (needed after the device restarted, when the
    /// broker answers `STALE`); returns the device generation.
    pub fn hello(&mut self) -> Result<u32, PlayerError> {
        match self.request(&BrokerMessage::Hello {
            version: BROKER_VERSION,
        })? {
            (BrokerMessage::HelloReply { generation, .. }, _) => {
                self.generation = generation;
                Ok(generation)
            }
            (BrokerMessage::Status { status }, _) => Err(PlayerError::Status {
                what: "HELLO",
                status,
            }),
            _ => Err(PlayerError::Usage("unexpected reply to HELLO")),
        }
    }

    /// Starts over after the device restarted (`STALE` answers and
    /// completions, a `DEVICE_STARTED` event): waits up to `timeout` until
    /// the broker gave back every queued buffer (it completes them `STALE`
    /// when it resets the device), frees every buffer pool, drops pending
    /// events and says `HELLO` again. The player's presentations and
    /// streams are gone with the old device instance; it creates them anew.
    /// Returns the new device generation.
    pub fn recover(&mut self, timeout: Duration) -> Result<u32, PlayerError> {
        let deadline = Instant::now() + timeout;
        loop {
            // Completions that already came in first: waiting on the
            // socket before looking at them would wait for nothing.
            self.pump_all()?;
            let streams: Vec<u32> = self.queues.keys().copied().collect();
            for stream in streams {
                while self.take_completed(stream).is_some() {}
            }
            if self.queues.values().all(BufferQueue::all_dequeued) {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PlayerError::Timeout(timeout));
            }
            self.pump(Some(left))?;
        }
        let pools: Vec<u32> = self.queues.drain().map(|(_, q)| q.pool_id).collect();
        for pool_id in pools {
            self.destroy_pool(pool_id)?;
        }
        self.pump_all()?;
        self.events.clear();
        self.hello()
    }

    /// The device generation from the last `HELLO`.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Non-blocking mode for [`MediaRedir::dequeue_buffer`] and
    /// [`MediaRedir::dequeue_event`].
    pub fn set_nonblocking(&mut self, on: bool) {
        self.nonblocking = on;
    }

    /// Longest wait for an answer (and, in blocking mode, for a buffer or
    /// event) (10 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }
}

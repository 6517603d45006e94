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
//! | `VIDIOC_DQEVENT` | [`MediaRedir::dequeue_event`] (client connected/gone, EOS, position, errors, QoS) |
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

mod buffers;
mod connect;
mod device_args;
mod mapping;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use buffers::BufferQueue;
pub use buffers::Dequeued;
pub use connect::{ConnectError, Connection, Target};
pub use device_args::DeviceArgs;
use mapping::Mapping;
use mediaredir_proto::ProtoError;
use mediaredir_proto::broker::{
    BROKER_VERSION, BrokerMessage, DEFAULT_SOCKET, MAX_MESSAGE, Sender,
};
use mediaredir_proto::control::{
    ControlRequest, Direction, Geometry, Request, RequestCode, ResponseHeader, StreamFormat,
};
use mediaredir_proto::data::{Clip, DataHeader};
use mediaredir_proto::event::Event;
use mediaredir_proto::response::CodecCap;
use mediaredir_proto::response::{CapsInfo, PositionInfo, ResponseBody};
use mediaredir_proto::status::Status;

use crate::seqpacket::{Received, SeqpacketConn};

/// Why a player call failed.
#[derive(Debug, thiserror::Error)]
pub enum PlayerError {
    /// The broker socket failed or closed.
    #[error("broker connection: {0}")]
    Io(#[from] io::Error),
    /// The broker or the device refused the request.
    #[error("{what}: {status:?}")]
    Status {
        /// The request.
        what: &'static str,
        /// The status it got.
        status: Status,
    },
    /// The broker sent something that is not valid protocol.
    #[error("broker sent a malformed message: {0}")]
    Protocol(#[from] ProtoError),
    /// Non-blocking mode and nothing is ready.
    #[error("would block")]
    WouldBlock,
    /// No answer in time.
    #[error("no answer from the broker within {0:?}")]
    Timeout(Duration),
    /// A call that does not fit the buffers' state (an index the player
    /// does not hold, a payload larger than the buffer, no buffers).
    #[error("{0}")]
    Usage(&'static str),
}

impl PlayerError {
    /// The protocol status, when the broker or device answered with one.
    pub fn status(&self) -> Option<Status> {
        match self {
            PlayerError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What [`MediaRedir::query_caps`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Device generation (changes when the host daemon restarts).
    pub generation: u32,
    /// Whether a client is connected to the device.
    pub client_connected: bool,
    /// The client's feature bits.
    pub client_features: u32,
    /// What the client can decode (empty without a client).
    pub codecs: Vec<CodecCap>,
}

/// Timing and flags of one queued buffer (V4L2's `struct v4l2_buffer`
/// fields). Times in nanoseconds of stream time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferInfo {
    /// Payload bytes at the start of the buffer.
    pub bytes_used: u32,
    /// Presentation time.
    pub pts: Option<u64>,
    /// Decoding time (`None` when equal to `pts` or unknown).
    pub dts: Option<u64>,
    /// Duration.
    pub duration: Option<u64>,
    /// `FLAG_*` bits of `mediaredir_proto::data` (keyframe, EOS, ...).
    pub flags: u32,
    /// Audio: decoded samples to drop at the start and end of this buffer
    /// (encoder delay, pre-skip, padding; `F_CLIPPING`).
    pub clip: Clip,
}

/// A capture buffer the device filled (or the broker returned unfilled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Captured {
    /// The stream whose buffers it belongs to ([`MediaRedir::queue_capture_buffer`]).
    pub stream: u32,
    /// The buffer index.
    pub index: u32,
    /// `Ok` when filled; otherwise why it came back empty (`LIMIT`: the
    /// sample was larger than the buffer; `CANCELLED`; `STALE`).
    pub status: Status,
    /// The sample's header when filled: its `stream_id` (any of this
    /// player's capture streams: posts are shared), flags, times and
    /// `payload_len` (the bytes at the start of the buffer).
    pub header: Option<DataHeader>,
}

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

fn status_of(what: &'static str, status: Status) -> Result<(), PlayerError> {
    if status == Status::Ok {
        Ok(())
    } else {
        Err(PlayerError::Status { what, status })
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

    // ----- transport -----

    fn tag(&mut self) -> u32 {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        tag
    }

    fn send(&mut self, tag: u32, message: &BrokerMessage) -> Result<(), PlayerError> {
        let packet = message.encode(tag);
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.conn.send(&packet, None) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The broker is not reading: take what it sent meanwhile
                    // (it may be waiting for us to drain), then retry.
                    self.pump(Some(Duration::from_millis(10)))?;
                    if Instant::now() >= deadline {
                        return Err(PlayerError::Timeout(self.timeout));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads one packet, waiting up to `wait` (`None`: do not wait).
    /// Returns whether one arrived.
    fn pump(&mut self, wait: Option<Duration>) -> Result<bool, PlayerError> {
        if let Some(wait) = wait {
            let mut fds = [libc::pollfd {
                fd: self.conn.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            let ms = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
            // SAFETY: one valid pollfd, exclusively borrowed for the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e.into());
                }
            }
        }
        let (len, fd) = match self.conn.recv(&mut self.buf) {
            Ok(Received::Packet { len, fd, .. }) => (len, fd),
            Ok(Received::Closed) => {
                return Err(
                    io::Error::new(io::ErrorKind::ConnectionReset, "the broker closed").into(),
                );
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let (tag, message) = BrokerMessage::decode(&self.buf[..len], Sender::Broker)?;
        match message {
            BrokerMessage::Event(raw) => {
                let (event, _) = Event::decode(&raw)?;
                self.events.push_back(event);
            }
            BrokerMessage::Complete { status } => {
                self.completions.insert(tag, status);
            }
            other => {
                self.replies.insert(tag, (other, fd));
            }
        }
        Ok(true)
    }

    /// Reads everything the socket holds now.
    fn pump_all(&mut self) -> Result<(), PlayerError> {
        while self.pump(None)? {}
        Ok(())
    }

    /// Sends `message` and waits for the reply with its tag.
    fn request(
        &mut self,
        message: &BrokerMessage,
    ) -> Result<(BrokerMessage, Option<OwnedFd>), PlayerError> {
        let tag = self.tag();
        self.send(tag, message)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(reply) = self.replies.remove(&tag) {
                return Ok(reply);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PlayerError::Timeout(self.timeout));
            }
            self.pump(Some(left))?;
        }
    }

    /// Sends a control request for `target`; the response header and body
    /// (any status).
    pub fn control(
        &mut self,
        request: Request,
        target: u32,
    ) -> Result<(ResponseHeader, ResponseBody), PlayerError> {
        let code = request.code();
        let bytes = ControlRequest {
            generation: 0,
            target,
            request,
        }
        .encode();
        match self.request(&BrokerMessage::Control(bytes))? {
            (BrokerMessage::ControlReply(answer), _) => {
                let (header, rest) = ResponseHeader::decode(&answer)?;
                let body = if header.status == Status::Ok {
                    ResponseBody::decode(code, rest)?
                } else {
                    ResponseBody::None
                };
                Ok((header, body))
            }
            (BrokerMessage::Status { status }, _) => Err(PlayerError::Status {
                what: code_name(code),
                status,
            }),
            _ => Err(PlayerError::Usage("unexpected reply to CONTROL")),
        }
    }

    /// Like [`MediaRedir::control`], failing unless the status is OK;
    /// returns the id and body.
    fn control_ok(
        &mut self,
        request: Request,
        target: u32,
    ) -> Result<(u32, ResponseBody), PlayerError> {
        let code = request.code();
        let (header, body) = self.control(request, target)?;
        status_of(code_name(code), header.status)?;
        Ok((header.id, body))
    }

    // ----- capabilities and formats -----

    /// `VIDIOC_QUERYCAP`: the device and what the connected client decodes.
    pub fn query_caps(&mut self) -> Result<Capabilities, PlayerError> {
        let (_, body) = self.control_ok(Request::GetCaps, 0)?;
        let ResponseBody::Caps(CapsInfo {
            client_connected,
            client_features,
            codecs,
            ..
        }) = body
        else {
            return Err(PlayerError::Usage("GET_CAPS answered without capabilities"));
        };
        Ok(Capabilities {
            generation: self.generation,
            client_connected,
            client_features,
            codecs,
        })
    }

    /// Waits up to `timeout` for a client to be connected to the device;
    /// its capabilities.
    pub fn wait_client(&mut self, timeout: Duration) -> Result<Capabilities, PlayerError> {
        let deadline = Instant::now() + timeout;
        loop {
            let caps = self.query_caps()?;
            if caps.client_connected {
                return Ok(caps);
            }
            if Instant::now() >= deadline {
                return Err(PlayerError::Timeout(timeout));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `VIDIOC_ENUM_FMT`: the codecs the client decodes.
    pub fn enum_formats(&mut self) -> Result<Vec<CodecCap>, PlayerError> {
        Ok(self.query_caps()?.codecs)
    }

    /// `VIDIOC_TRY_FMT`: whether a stream of `format` would be accepted
    /// (`UNSUPPORTED` when the client cannot decode it, `NO_CLIENT`).
    pub fn try_format(&mut self, format: &StreamFormat) -> Result<(), PlayerError> {
        self.control_ok(Request::CheckFormat(format.clone()), 0)
            .map(drop)
    }

    // ----- presentations and streams -----

    /// Creates a presentation (one clock for its streams); its id.
    pub fn create_presentation(&mut self, live: bool) -> Result<u32, PlayerError> {
        Ok(self.control_ok(Request::PresCreate { live }, 0)?.0)
    }

    /// Destroys a presentation and its streams; their queued buffers
    /// complete `CANCELLED` (and can be dequeued).
    pub fn destroy_presentation(&mut self, presentation: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::PresDestroy, presentation)
            .map(drop)
    }

    /// `VIDIOC_S_FMT`: creates a stream of `format` in `presentation`; its
    /// id. `format.txq` picks the playback queue (one per stream of a
    /// presentation).
    pub fn create_stream(
        &mut self,
        presentation: u32,
        format: &StreamFormat,
    ) -> Result<u32, PlayerError> {
        Ok(self
            .control_ok(Request::StreamCreate(format.clone()), presentation)?
            .0)
    }

    /// Destroys a stream (its buffers must be dequeued first to reuse them;
    /// the device cancels queued ones).
    pub fn destroy_stream(&mut self, stream: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::StreamDestroy, stream).map(drop)?;
        self.release_when_idle(stream)
    }

    /// `VIDIOC_STREAMON` for a presentation: play.
    pub fn stream_on(&mut self, presentation: u32) -> Result<(), PlayerError> {
        self.play(presentation)
    }

    /// `VIDIOC_STREAMOFF`: pause and drop what is queued (the buffers come
    /// back `CANCELLED`).
    pub fn stream_off(&mut self, presentation: u32) -> Result<(), PlayerError> {
        self.pause(presentation)?;
        self.seek(presentation, 0)
    }

    /// Plays a presentation.
    pub fn play(&mut self, presentation: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::PresPlay, presentation).map(drop)
    }

    /// Pauses a presentation.
    pub fn pause(&mut self, presentation: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::PresPause, presentation).map(drop)
    }

    /// Flushes a presentation for a seek: queued buffers come back
    /// `CANCELLED`; the next buffers start at `position_ns`.
    pub fn seek(&mut self, presentation: u32, position_ns: u64) -> Result<(), PlayerError> {
        self.control_ok(Request::PresFlush { position_ns }, presentation)
            .map(drop)
    }

    /// Playback rate (1.0 normal).
    pub fn set_rate(&mut self, presentation: u32, rate: f64) -> Result<(), PlayerError> {
        if !(rate.is_finite() && rate > 0.0 && rate <= 65535.0) {
            return Err(PlayerError::Usage("rate out of range"));
        }
        // In range (checked above), so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rate_q16 = (rate * 65536.0).round() as u32;
        self.control_ok(Request::PresSetRate { rate_q16 }, presentation)
            .map(drop)
    }

    /// `VIDIOC_S_SELECTION`: where and whether the client shows the video.
    pub fn set_geometry(
        &mut self,
        presentation: u32,
        geometry: Geometry,
    ) -> Result<(), PlayerError> {
        self.control_ok(Request::PresSetGeometry(geometry), presentation)
            .map(drop)
    }

    /// Where playback is.
    pub fn query_position(&mut self, presentation: u32) -> Result<PositionInfo, PlayerError> {
        match self.control_ok(Request::PresQueryPosition, presentation)?.1 {
            ResponseBody::Position(p) => Ok(p),
            _ => Err(PlayerError::Usage(
                "PRES_QUERY_POSITION answered without a position",
            )),
        }
    }

    /// `VIDIOC_S_CTRL` volume/mute: `volume` 1.0 is unity gain.
    pub fn set_volume(&mut self, stream: u32, volume: f64, mute: bool) -> Result<(), PlayerError> {
        if !(volume.is_finite() && (0.0..=65535.0).contains(&volume)) {
            return Err(PlayerError::Usage("volume out of range"));
        }
        // In range (checked above), so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let volume_q16 = (volume * 65536.0).round() as u32;
        self.control_ok(Request::StreamSetVolume { volume_q16, mute }, stream)
            .map(drop)
    }

    // ----- calls (spec 7.12) -----

    /// Creates a call media session: with the remote peer's SDP offer
    /// (an incoming call), or `None` for the client to make an offer. The
    /// client's SDP (answer or offer) comes back with the session id.
    pub fn call_create(
        &mut self,
        remote_offer: Option<&str>,
    ) -> Result<(u32, String), PlayerError> {
        let sdp = remote_offer.map(str::to_owned);
        match self.control_ok(Request::CallCreate { sdp }, 0)? {
            (id, ResponseBody::CallSdp(local)) => Ok((id, local)),
            _ => Err(PlayerError::Usage("CALL_CREATE answered without SDP")),
        }
    }

    /// Gives the remote peer's answer to the client's offer.
    pub fn call_set_remote(&mut self, session: u32, answer: &str) -> Result<(), PlayerError> {
        self.control_ok(
            Request::CallSetRemote {
                sdp: answer.to_owned(),
            },
            session,
        )
        .map(drop)
    }

    /// Starts the call's media.
    pub fn call_start(&mut self, session: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::CallStart, session).map(drop)
    }

    /// Holds (`true`) or resumes the call.
    pub fn call_hold(&mut self, session: u32, hold: bool) -> Result<(), PlayerError> {
        self.control_ok(Request::CallHold { hold }, session)
            .map(drop)
    }

    /// Sends a DTMF event (RFC 4733: 0-9, `*` 10, `#` 11, A-D 12-15).
    pub fn call_dtmf(
        &mut self,
        session: u32,
        event: u32,
        duration_ms: u32,
    ) -> Result<(), PlayerError> {
        self.control_ok(Request::CallDtmf { event, duration_ms }, session)
            .map(drop)
    }

    /// Mutes or unmutes the call's media (`media`: audio 1, video 2).
    pub fn call_mute(&mut self, session: u32, media: u32, mute: bool) -> Result<(), PlayerError> {
        self.control_ok(Request::CallMute { media, mute }, session)
            .map(drop)
    }

    /// The call's last statistics.
    pub fn call_stats(
        &mut self,
        session: u32,
    ) -> Result<mediaredir_proto::response::CallStatsInfo, PlayerError> {
        match self.control_ok(Request::CallStats, session)?.1 {
            ResponseBody::CallStats(stats) => Ok(stats),
            _ => Err(PlayerError::Usage("CALL_STATS answered without statistics")),
        }
    }

    /// Ends the call (also after it ended by itself: DRV-CALL-1).
    pub fn call_end(&mut self, session: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::CallEnd, session).map(drop)
    }

    // ----- capture -----

    /// The client's capture sources (microphones, cameras).
    pub fn enum_sources(&mut self) -> Result<Vec<mediaredir_proto::response::Source>, PlayerError> {
        match self.control_ok(Request::EnumSources, 0)?.1 {
            ResponseBody::Sources(sources, _) => Ok(sources),
            _ => Err(PlayerError::Usage("ENUM_SOURCES answered without sources")),
        }
    }

    /// Starts a capture stream: the client captures and encodes.
    pub fn start_capture(&mut self, stream: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::StreamStart, stream).map(drop)
    }

    /// Stops a capture stream.
    pub fn stop_capture(&mut self, stream: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::StreamStop, stream).map(drop)
    }

    /// Asks the client's encoder of a capture stream for a keyframe.
    pub fn request_keyframe(&mut self, stream: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::StreamRequestKeyframe, stream)
            .map(drop)
    }

    /// `VIDIOC_QBUF` on a capture queue: offers buffer `index` of
    /// `stream`'s buffers for the next captured sample of any of this
    /// player's capture streams.
    pub fn queue_capture_buffer(&mut self, stream: u32, index: u32) -> Result<(), PlayerError> {
        let queue = self
            .queues
            .get(&stream)
            .ok_or(PlayerError::Usage("no buffers requested for this stream"))?;
        if !queue.is_players(index) {
            return Err(PlayerError::Usage("buffer index not held by the player"));
        }
        let message = BrokerMessage::CapturePost {
            pool_id: queue.pool_id,
            offset: queue.offset(index),
            len: queue.slot_size() as u64,
        };
        let tag = self.tag();
        self.send(tag, &message)?;
        if let Some(q) = self.queues.get_mut(&stream) {
            q.mark_queued(index, tag);
        }
        Ok(())
    }

    fn take_captured(&mut self) -> Option<Captured> {
        let found = self.queues.iter().find_map(|(&stream, q)| {
            q.queued_tags()
                .find(|(_, tag)| {
                    matches!(
                        self.replies.get(tag),
                        Some((
                            BrokerMessage::CaptureFilled { .. } | BrokerMessage::Status { .. },
                            _
                        ))
                    )
                })
                .map(|(index, tag)| (stream, index, tag))
        })?;
        let (stream, index, tag) = found;
        let (reply, _) = self.replies.remove(&tag)?;
        if let Some(q) = self.queues.get_mut(&stream) {
            q.mark_dequeued(index);
        }
        let (status, header) = match reply {
            BrokerMessage::CaptureFilled { header } => (Status::Ok, Some(header)),
            BrokerMessage::Status { status } => (status, None),
            _ => (Status::Io, None),
        };
        Some(Captured {
            stream,
            index,
            status,
            header,
        })
    }

    /// `VIDIOC_DQBUF` on the capture side: the next capture buffer back.
    pub fn dequeue_capture(&mut self) -> Result<Captured, PlayerError> {
        self.pump_all()?;
        if let Some(c) = self.take_captured() {
            return Ok(c);
        }
        if self.nonblocking {
            return Err(PlayerError::WouldBlock);
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PlayerError::Timeout(self.timeout));
            }
            self.pump(Some(left))?;
            if let Some(c) = self.take_captured() {
                return Ok(c);
            }
        }
    }

    /// Buffer `index` of `stream` for reading a captured sample (the
    /// player holds it after [`MediaRedir::dequeue_capture`]).
    pub fn buffer(&mut self, stream: u32, index: u32) -> Option<&[u8]> {
        self.buffer_mut(stream, index).map(|b| &*b)
    }

    // ----- buffers -----

    /// `VIDIOC_REQBUFS` + `mmap`: `count` buffers of at least `size` bytes
    /// each for `stream`, in a pool of the broker's DMA memory mapped into
    /// this process. Returns the count. `count` 0 frees the buffers (all of
    /// them must be dequeued).
    pub fn request_buffers(
        &mut self,
        stream: u32,
        count: u32,
        size: usize,
    ) -> Result<u32, PlayerError> {
        if let Some(old) = self.queues.get(&stream) {
            if !old.all_dequeued() {
                return Err(PlayerError::Usage("buffers still queued"));
            }
            let pool_id = old.pool_id;
            self.queues.remove(&stream);
            self.destroy_pool(pool_id)?;
        }
        if count == 0 {
            return Ok(0);
        }
        let slot = BufferQueue::slot_size_for(size).ok_or(PlayerError::Usage("buffer size"))?;
        let total = slot
            .checked_mul(count as usize)
            .ok_or(PlayerError::Usage("buffer count times size overflows"))?;
        let (pool_id, actual, fd) =
            match self.request(&BrokerMessage::PoolCreate { size: total as u64 })? {
                (BrokerMessage::PoolCreateReply { pool_id, size }, Some(fd)) => (pool_id, size, fd),
                (BrokerMessage::Status { status }, _) => {
                    return Err(PlayerError::Status {
                        what: "POOL_CREATE",
                        status,
                    });
                }
                _ => return Err(PlayerError::Usage("unexpected reply to POOL_CREATE")),
            };
        let len = usize::try_from(actual).map_err(|_| PlayerError::Usage("pool size"))?;
        let mapping = Mapping::new(fd, len)?;
        self.queues
            .insert(stream, BufferQueue::new(pool_id, mapping, count, slot));
        Ok(count)
    }

    fn destroy_pool(&mut self, pool_id: u32) -> Result<(), PlayerError> {
        match self.request(&BrokerMessage::PoolDestroy { pool_id })? {
            (BrokerMessage::Status { status }, _) => status_of("POOL_DESTROY", status),
            _ => Err(PlayerError::Usage("unexpected reply to POOL_DESTROY")),
        }
    }

    /// Frees the buffers of a destroyed stream once they are all back.
    fn release_when_idle(&mut self, stream: u32) -> Result<(), PlayerError> {
        let deadline = Instant::now() + self.timeout;
        while self.queues.get(&stream).is_some_and(|q| !q.all_dequeued()) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PlayerError::Timeout(self.timeout));
            }
            self.pump(Some(left))?;
            while self.take_completed(stream).is_some() {}
        }
        if let Some(q) = self.queues.remove(&stream) {
            self.destroy_pool(q.pool_id)?;
        }
        Ok(())
    }

    /// Buffer count and size of each buffer of `stream`.
    pub fn buffer_layout(&self, stream: u32) -> Option<(u32, usize)> {
        self.queues.get(&stream).map(|q| (q.count(), q.slot_size()))
    }

    /// Buffer `index` of `stream` for filling in place; `None` unless the
    /// player holds it (not queued).
    pub fn buffer_mut(&mut self, stream: u32, index: u32) -> Option<&mut [u8]> {
        self.queues.get_mut(&stream)?.player_slot(index)
    }

    /// The mapped pool of `stream` (start address, bytes), for checks that
    /// payloads are written in place.
    pub fn pool_mapping(&self, stream: u32) -> Option<(*const u8, usize)> {
        self.queues.get(&stream).map(|q| (q.base(), q.mapped()))
    }

    /// `VIDIOC_QBUF`: hands buffer `index` (its first `info.bytes_used`
    /// bytes) to the device. It comes back through
    /// [`MediaRedir::dequeue_buffer`].
    pub fn queue_buffer(
        &mut self,
        stream: u32,
        index: u32,
        info: &BufferInfo,
    ) -> Result<(), PlayerError> {
        let queue = self
            .queues
            .get(&stream)
            .ok_or(PlayerError::Usage("no buffers requested for this stream"))?;
        if !queue.is_players(index) {
            return Err(PlayerError::Usage("buffer index not held by the player"));
        }
        if info.bytes_used as usize > queue.slot_size() {
            return Err(PlayerError::Usage("bytes_used larger than the buffer"));
        }
        let message = BrokerMessage::Queue {
            pool_id: queue.pool_id,
            offset: queue.offset(index),
            header: DataHeader {
                clip: info.clip,
                stream_id: stream,
                generation: 0,
                flags: info.flags,
                payload_len: info.bytes_used,
                pts: info.pts,
                dts: info.dts,
                duration: info.duration,
            },
        };
        let tag = self.tag();
        self.send(tag, &message)?;
        if let Some(q) = self.queues.get_mut(&stream) {
            q.mark_queued(index, tag);
        }
        Ok(())
    }

    fn take_completed(&mut self, stream: u32) -> Option<Dequeued> {
        let queue = self.queues.get_mut(&stream)?;
        let (index, tag) = queue
            .queued_tags()
            .find(|(_, tag)| self.completions.contains_key(tag))?;
        let status = self.completions.remove(&tag)?;
        queue.mark_dequeued(index);
        Some(Dequeued { index, status })
    }

    /// `VIDIOC_DQBUF`: the next buffer of `stream` the device gave back,
    /// with its status.
    pub fn dequeue_buffer(&mut self, stream: u32) -> Result<Dequeued, PlayerError> {
        if !self.queues.contains_key(&stream) {
            return Err(PlayerError::Usage("no buffers requested for this stream"));
        }
        self.pump_all()?;
        if let Some(done) = self.take_completed(stream) {
            return Ok(done);
        }
        if self
            .queues
            .get(&stream)
            .is_some_and(BufferQueue::all_dequeued)
        {
            return Err(PlayerError::Usage("no buffer queued"));
        }
        if self.nonblocking {
            return Err(PlayerError::WouldBlock);
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PlayerError::Timeout(self.timeout));
            }
            self.pump(Some(left))?;
            if let Some(done) = self.take_completed(stream) {
                return Ok(done);
            }
        }
    }

    /// Buffers of `stream` the device holds.
    pub fn queued_count(&self, stream: u32) -> usize {
        self.queues
            .get(&stream)
            .map_or(0, |q| q.queued_tags().count())
    }

    /// `VIDIOC_DQEVENT`: the next event of this player's objects (or a
    /// broadcast one: client connected/gone, events lost, device started).
    pub fn dequeue_event(&mut self) -> Result<Event, PlayerError> {
        self.pump_all()?;
        if let Some(event) = self.events.pop_front() {
            return Ok(event);
        }
        if self.nonblocking {
            return Err(PlayerError::WouldBlock);
        }
        self.wait_event(self.timeout)?
            .ok_or(PlayerError::Timeout(self.timeout))
    }

    /// The next event, waiting up to `timeout` (`None` on timeout) whatever
    /// the blocking mode.
    pub fn wait_event(&mut self, timeout: Duration) -> Result<Option<Event>, PlayerError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump_all()?;
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.pump(Some(left))?;
        }
    }
}

/// A request code's name for errors.
fn code_name(code: RequestCode) -> &'static str {
    use RequestCode as C;
    match code {
        C::GetCaps => "GET_CAPS",
        C::CheckFormat => "CHECK_FORMAT",
        C::EnumSources => "ENUM_SOURCES",
        C::PresCreate => "PRES_CREATE",
        C::PresDestroy => "PRES_DESTROY",
        C::PresPlay => "PRES_PLAY",
        C::PresPause => "PRES_PAUSE",
        C::PresFlush => "PRES_FLUSH",
        C::PresSetRate => "PRES_SET_RATE",
        C::PresSetGeometry => "PRES_SET_GEOMETRY",
        C::PresQueryPosition => "PRES_QUERY_POSITION",
        C::StreamCreate => "STREAM_CREATE",
        C::StreamDestroy => "STREAM_DESTROY",
        C::StreamSetVolume => "STREAM_SET_VOLUME",
        C::StreamStart => "STREAM_START",
        C::StreamStop => "STREAM_STOP",
        C::StreamRequestKeyframe => "STREAM_REQUEST_KEYFRAME",
        C::CallCreate => "CALL_CREATE",
        C::CallSetRemote => "CALL_SET_REMOTE",
        C::CallStart => "CALL_START",
        C::CallHold => "CALL_HOLD",
        C::CallDtmf => "CALL_DTMF",
        C::CallMute => "CALL_MUTE",
        C::CallStats => "CALL_STATS",
        C::CallEnd => "CALL_END",
    }
}

/// A playback stream format with everything but the codec fields zeroed
/// (a starting point for [`MediaRedir::create_stream`]).
pub fn playback_format(codec: mediaredir_proto::codec::Codec, txq: u32) -> StreamFormat {
    StreamFormat {
        codec,
        direction: Direction::Playback,
        txq,
        source_id: 0,
        width: 0,
        height: 0,
        fps_num: 0,
        fps_den: 0,
        sample_rate: 0,
        channels: 0,
        bitrate: 0,
        codec_data: Vec::new(),
    }
}

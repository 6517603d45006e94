//! The `mediaredirsink` implementation: a `GstBaseSink` over the player API
//! (`guest_driver_shim::player`).
//!
//! - Caps: the sink pad's caps query (and so accept-caps, which
//!   `playbin`'s autoplugging asks before plugging a decoder) answers the
//!   template structures of the codecs the connected client decodes, asked
//!   of the broker (`GET_CAPS`, cached for a second); no broker, no client
//!   or no common codec gives empty caps. `set_caps` creates the stream
//!   (`CHECK_FORMAT` first) in the presentation shared with the other sinks
//!   of the pipeline ([`crate::group`]) and requests its buffers.
//! - Data: `render` copies each buffer into a free pool buffer (grown when a
//!   buffer does not fit) and queues it with its stream-time timestamps;
//!   when the device holds every buffer it waits for one to come back (the
//!   device's flow control), checking the `unlock` flag, and while paused it
//!   waits for preroll like an audio sink, so flushes and state changes
//!   never hang. The client schedules presentation; the sink still syncs
//!   to the pipeline clock, `LEAD_NS` ahead (`ts-offset`), so the sinks of
//!   a pipeline stay together.
//! - EOS: an EOS buffer is queued and the client's EOS event awaited before
//!   `GstBaseSink` posts EOS. The presentation is flushed (once for all its
//!   sinks) at the segment's position before its first buffer and before
//!   the first buffer after a flushing seek, so the client's segment starts
//!   where the pipeline's does, whichever sink queues first. PAUSED<->PLAYING pause and play the presentation.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::glib::translate::IntoGlib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_audio as gst_audio;
use gstreamer_base as gst_base;
use gstreamer_base::prelude::*;
use gstreamer_base::subclass::prelude::*;

use guest_driver_shim::player::{BufferInfo, PlayerError};
use mediaredir_proto::broker::DEFAULT_SOCKET;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::{Geometry, Rect, StreamFormat};
use mediaredir_proto::data::{Clip, FLAG_DECODE_ONLY, FLAG_DISCONT, FLAG_EOS, FLAG_KEYFRAME};
use mediaredir_proto::status::Status;

use super::clip;
use crate::caps;
use crate::group::{self, Group, Shared};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "mediaredirsink",
        gst::DebugColorFlags::empty(),
        Some("Media redirection sink"),
    )
});

/// How long the client's codec list answers caps queries.
const CAPS_CACHE: Duration = Duration::from_secs(1);
/// How far ahead of the pipeline clock buffers go to the device (ns).
const LEAD_NS: i64 = 500_000_000;
/// How often waits look at the flush flag.
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
struct Settings {
    socket: PathBuf,
    group: String,
    buffers: u32,
    volume: f64,
    mute: bool,
    x: i32,
    y: i32,
    width: u32,
    height: u32,
    visible: bool,
    display: u32,
    /// Whether a geometry property was set (else the client places the
    /// video itself).
    geometry_set: bool,
    eos_timeout: u32,
    stall_timeout: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            socket: PathBuf::from(DEFAULT_SOCKET),
            group: String::new(),
            buffers: 16,
            volume: 1.0,
            mute: false,
            x: 0,
            y: 0,
            width: 0,
            height: 0,
            visible: true,
            display: 0,
            geometry_set: false,
            eos_timeout: 60,
            stall_timeout: 20,
        }
    }
}

impl Settings {
    fn geometry(&self) -> Geometry {
        Geometry {
            display_id: self.display,
            visible: self.visible,
            z: 0,
            dest: Rect {
                x: self.x,
                y: self.y,
                width: self.width,
                height: self.height,
            },
            source: Rect::default(),
            clip: Vec::new(),
        }
    }
}

/// The negotiated stream (streaming thread).
#[derive(Debug)]
struct Stream {
    group: Arc<Group>,
    id: u32,
    format: StreamFormat,
    /// Buffer indices the sink holds.
    free: Vec<u32>,
    count: u32,
    size: usize,
    /// Samples the client decodes from each buffer (audio).
    decoded: clip::Decoded,
}

/// What the application thread (properties, state changes) reaches.
#[derive(Debug, Clone)]
struct Handle {
    group: Arc<Group>,
    id: u32,
    audio: bool,
}

/// The element.
#[derive(Debug)]
pub struct MediaRedirSink {
    settings: Mutex<Settings>,
    stream: Mutex<Option<Stream>>,
    handle: Mutex<Option<Handle>>,
    codecs: Mutex<Option<(Instant, Vec<Codec>)>>,
    /// Set by `unlock` (flush, shutdown, PLAYING -> PAUSED): waits go to
    /// `wait_preroll`.
    flushing: AtomicBool,
    /// Not PLAYING: nothing comes back from the device, wait for preroll.
    paused: AtomicBool,
}

impl Default for MediaRedirSink {
    fn default() -> Self {
        MediaRedirSink {
            settings: Mutex::new(Settings::default()),
            stream: Mutex::new(None),
            handle: Mutex::new(None),
            codecs: Mutex::new(None),
            flushing: AtomicBool::new(false),
            paused: AtomicBool::new(true),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn nanos(t: Option<gst::ClockTime>) -> Option<u64> {
    t.map(gst::ClockTime::nseconds)
}

#[glib::object_subclass]
impl ObjectSubclass for MediaRedirSink {
    const NAME: &'static str = "GstMediaRedirSink";
    type Type = super::MediaRedirSink;
    type ParentType = gst_base::BaseSink;

    fn type_init(type_: &mut glib::subclass::InitializingType<Self>) {
        // GstStreamVolume has no virtual methods (only the `volume` and
        // `mute` properties, overridden below), and gstreamer-audio offers
        // no subclassing glue for it: add it with an empty init.
        let info = glib::gobject_ffi::GInterfaceInfo {
            interface_init: None,
            interface_finalize: None,
            interface_data: std::ptr::null_mut(),
        };
        // SAFETY: a bitwise copy of a GType and a PhantomData (no Drop),
        // the only way to the GType of an `InitializingType` behind `&mut`.
        let gtype = unsafe { std::ptr::read(type_) }.into_glib();
        let iface = gst_audio::StreamVolume::static_type().into_glib();
        // SAFETY: `gtype` is being registered (type_init runs before its
        // class exists), the interface type is registered, and GLib
        // copies `info`.
        unsafe { glib::gobject_ffi::g_type_add_interface_static(gtype, iface, &info) };
    }
}

impl MediaRedirSink {
    fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    /// Posts an element error about `what` and returns the flow error.
    fn fail(&self, what: &str, error: &dyn std::fmt::Display) -> gst::FlowError {
        gst::element_imp_error!(
            self,
            gst::ResourceError::Failed,
            ["media redirection: {}: {}", what, error]
        );
        gst::FlowError::Error
    }

    /// The codecs the connected client decodes (empty without broker or
    /// client).
    fn client_codecs(&self) -> Vec<Codec> {
        let mut cache = lock(&self.codecs);
        if let Some((at, codecs)) = cache.as_ref()
            && at.elapsed() < CAPS_CACHE
        {
            return codecs.clone();
        }
        let socket = self.settings().socket;
        // The negotiated stream's connection answers when there is one.
        let handle = lock(&self.handle).clone();
        let answer = match handle {
            Some(h) => {
                let mut shared = h.group.lock();
                if shared.broken {
                    Err(PlayerError::Usage("the broker or device is gone"))
                } else {
                    let answer = shared.redir.query_caps();
                    shared.check(answer)
                }
            }
            None => group::connect(&socket).and_then(|mut r| r.query_caps()),
        };
        let codecs = match answer {
            Ok(c) if c.client_connected => c.codecs.iter().map(|c| c.codec).collect(),
            Ok(_) => {
                gst::debug!(CAT, imp = self, "no client connected: no caps");
                Vec::new()
            }
            Err(e) => {
                gst::debug!(
                    CAT,
                    imp = self,
                    "broker at {} unreachable ({e}): no caps",
                    socket.display()
                );
                Vec::new()
            }
        };
        *cache = Some((Instant::now(), codecs.clone()));
        codecs
    }

    /// The group key: the `group` property, else the top-level bin.
    fn group_key(&self) -> String {
        let group = self.settings().group;
        if !group.is_empty() {
            return group;
        }
        let mut top: gst::Object = self.obj().upcast_ref::<gst::Object>().clone();
        while let Some(parent) = top.parent() {
            top = parent;
        }
        format!("pipeline@{:p}", top.as_ptr())
    }

    /// Creates the stream of `format` in the group's presentation.
    fn open_stream(&self, format: &StreamFormat) -> Result<Stream, PlayerError> {
        let settings = self.settings();
        let group = Group::join(&settings.socket, &self.group_key())?;
        let mut shared = group.lock();
        shared.redir.try_format(format)?;
        let id = shared.add_stream(format)?;
        let size = if format.codec.is_video() {
            512 << 10
        } else {
            16 << 10
        };
        let count = shared.redir.request_buffers(id, settings.buffers, size)?;
        let size = shared.redir.buffer_layout(id).map_or(size, |(_, s)| s);
        if format.codec.is_video() {
            if settings.geometry_set {
                let presentation = shared.presentation;
                shared
                    .redir
                    .set_geometry(presentation, settings.geometry())?;
            }
        } else if settings.volume != 1.0 || settings.mute {
            shared
                .redir
                .set_volume(id, settings.volume, settings.mute)?;
        }
        if !self.paused.load(Ordering::SeqCst) {
            shared.set_playing(true)?;
        }
        drop(shared);
        Ok(Stream {
            group,
            id,
            format: format.clone(),
            free: (0..count).rev().collect(),
            count,
            size,
            decoded: clip::Decoded::new(format.codec, format.sample_rate, &format.codec_data),
        })
    }

    /// Destroys the stream, if any (its group goes with the last sink).
    fn close_stream(&self) {
        *lock(&self.handle) = None;
        if let Some(stream) = lock(&self.stream).take() {
            let mut shared = stream.group.lock();
            if let Err(e) = shared.remove_stream(stream.id) {
                gst::warning!(CAT, imp = self, "destroying stream {}: {e}", stream.id);
            }
        }
    }

    /// Events, the client's errors on this stream, and buffers back.
    /// `finishing`: the stream's end was queued (`finish`).
    fn service(
        &self,
        shared: &mut Shared,
        stream: &mut Stream,
        finishing: bool,
    ) -> Result<(), gst::FlowError> {
        shared
            .pump_events()
            .map_err(|e| self.fail("reading events", &e))?;
        if let Some(status) = shared.error(stream.id) {
            return Err(self.fail(
                "the client failed to play the stream",
                &format!("{status:?}"),
            ));
        }
        // A client that leaves once this stream has ended (`media-client
        // --once` does, right after its last EOS) stops nothing (spec 7.15,
        // DRV-CONN-3): its disconnection fails the stream only before the
        // stream's EOS.
        if let Some(why) = shared.gone
            && !shared.is_eos(stream.id)
        {
            return Err(self.fail("playback stopped", &why));
        }
        loop {
            match shared.redir.dequeue_buffer(stream.id) {
                Ok(done) => {
                    stream.free.push(done.index);
                    match done.status {
                        Status::Ok | Status::Cancelled | Status::Dropped => {}
                        // Once the end is queued the events decide: the
                        // client's EOS (the buffer was played out, only its
                        // acknowledgement left with the client) or its
                        // disconnection without it. The completion may come
                        // in before those events.
                        Status::NoClient if finishing => {}
                        other => {
                            return Err(self.fail("a buffer came back", &format!("{other:?}")));
                        }
                    }
                }
                Err(PlayerError::WouldBlock | PlayerError::Usage(_)) => return Ok(()),
                Err(e) => return Err(self.fail("taking buffers back", &e)),
            }
        }
    }

    /// Waits for the device. After `unlock` or while paused it waits for
    /// preroll instead, as GstBaseSink wants: `unlock` comes with a flush
    /// or a shutdown (then `wait_preroll` returns FLUSHING) but also with
    /// PLAYING -> PAUSED (then it blocks until PLAYING again, and returning
    /// FLUSHING upstream would stop its streaming thread for good); and
    /// while paused the device gives nothing back.
    fn wait(&self, group: &Group) -> Result<(), gst::FlowError> {
        if self.flushing.load(Ordering::SeqCst) || self.paused.load(Ordering::SeqCst) {
            self.obj().wait_preroll()?;
            return Ok(());
        }
        group.wait(POLL);
        Ok(())
    }

    /// A free buffer of at least `need` bytes (growing the buffers when
    /// they are too small, once the device gave them all back).
    /// Fails when the device holds every buffer for `stall-timeout` while
    /// playing (a device or host daemon that died keeps them for ever).
    fn free_slot(&self, stream: &mut Stream, need: usize) -> Result<u32, gst::FlowError> {
        let stall = Duration::from_secs(u64::from(self.settings().stall_timeout));
        let mut deadline = Instant::now() + stall;
        loop {
            {
                let group = Arc::clone(&stream.group);
                let mut shared = group.lock();
                let held = stream.free.len();
                self.service(&mut shared, stream, false)?;
                if stream.free.len() > held || self.paused.load(Ordering::SeqCst) {
                    deadline = Instant::now() + stall;
                } else if Instant::now() >= deadline {
                    shared.broken = true;
                    return Err(self.fail(
                        "the device gave no buffer back",
                        &format!("within {stall:?}"),
                    ));
                }
                if need > stream.size && shared.redir.queued_count(stream.id) == 0 {
                    let size = need.next_power_of_two();
                    gst::debug!(CAT, imp = self, "buffers grown to {size} bytes");
                    let count = shared
                        .redir
                        .request_buffers(stream.id, stream.count, size)
                        .map_err(|e| self.fail("growing the buffers", &e))?;
                    stream.free = (0..count).rev().collect();
                    stream.size = shared.redir.buffer_layout(stream.id).map_or(size, |l| l.1);
                }
                if need <= stream.size
                    && let Some(slot) = stream.free.pop()
                {
                    return Ok(slot);
                }
            }
            self.wait(&Arc::clone(&stream.group))?;
        }
    }

    /// Flushes the presentation at the segment's start before the first
    /// buffer and after a flushing seek (the first sink of the group to get
    /// here does it, for all).
    fn flush_if_pending(&self, stream: &Stream) -> Result<(), gst::FlowError> {
        let mut shared = stream.group.lock();
        if !shared.flush_pending {
            return Ok(());
        }
        let segment = self.obj().segment();
        let position = segment
            .downcast_ref::<gst::ClockTime>()
            .and_then(|s| s.to_stream_time(s.start()).or(s.start()))
            .map_or(0, gst::ClockTime::nseconds);
        let presentation = shared.presentation;
        let result = shared.redir.seek(presentation, position);
        shared
            .check(result)
            .map_err(|e| self.fail("flushing the presentation", &e))?;
        shared.flush_pending = false;
        shared.clear_eos();
        gst::debug!(CAT, imp = self, "presentation flushed at {position} ns");
        Ok(())
    }

    fn queue(
        &self,
        stream: &mut Stream,
        data: &[u8],
        info: BufferInfo,
    ) -> Result<(), gst::FlowError> {
        self.flush_if_pending(stream)?;
        let slot = self.free_slot(stream, data.len())?;
        let mut shared = stream.group.lock();
        let Some(target) = shared.redir.buffer_mut(stream.id, slot) else {
            return Err(self.fail("a free buffer", &"is not writable"));
        };
        target[..data.len()].copy_from_slice(data);
        let result = shared.redir.queue_buffer(stream.id, slot, &info);
        shared
            .check(result)
            .map_err(|e| self.fail("queueing a buffer", &e))
    }

    /// Queues the end of stream and waits for the client to reach it.
    fn finish(&self, stream: &mut Stream) -> Result<(), gst::FlowError> {
        let info = BufferInfo {
            flags: FLAG_EOS,
            ..BufferInfo::default()
        };
        self.queue(stream, &[], info)?;
        let timeout = Duration::from_secs(u64::from(self.settings().eos_timeout));
        let mut deadline = Instant::now() + timeout;
        loop {
            {
                let group = Arc::clone(&stream.group);
                let mut shared = group.lock();
                self.service(&mut shared, stream, true)?;
                if shared.is_eos(stream.id) {
                    return Ok(());
                }
            }
            if self.paused.load(Ordering::SeqCst) {
                deadline = Instant::now() + timeout;
            }
            if Instant::now() >= deadline {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Failed,
                    [
                        "the client did not report the end of stream within {:?}",
                        timeout
                    ]
                );
                return Ok(());
            }
            self.wait(&Arc::clone(&stream.group))?;
        }
    }

    /// Applies volume and mute to a negotiated audio stream.
    fn apply_volume(&self) {
        let Some(h) = lock(&self.handle).clone() else {
            return;
        };
        if !h.audio {
            return;
        }
        let s = self.settings();
        if let Err(e) = h.group.lock().redir.set_volume(h.id, s.volume, s.mute) {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Failed,
                ["setting the volume: {}", e]
            );
        }
    }

    /// Applies the geometry to a negotiated video stream's presentation.
    fn apply_geometry(&self) {
        let Some(h) = lock(&self.handle).clone() else {
            return;
        };
        if h.audio {
            return;
        }
        let geometry = self.settings().geometry();
        let mut shared = h.group.lock();
        let presentation = shared.presentation;
        if let Err(e) = shared.redir.set_geometry(presentation, geometry) {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Failed,
                ["setting the geometry: {}", e]
            );
        }
    }

    fn set_playing(&self, playing: bool) -> Result<(), gst::StateChangeError> {
        let Some(h) = lock(&self.handle).clone() else {
            return Ok(());
        };
        let result = h.group.lock().set_playing(playing);
        result.map_err(|e| {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Failed,
                [
                    "media redirection: {}: {}",
                    if playing { "play" } else { "pause" },
                    e
                ]
            );
            gst::StateChangeError
        })
    }
}

impl ObjectImpl for MediaRedirSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("socket")
                    .nick("Broker socket")
                    .blurb("Path of the media-redirection broker's socket")
                    .default_value(Some(DEFAULT_SOCKET))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("group")
                    .nick("Presentation group")
                    .blurb(
                        "Sinks with the same group share one presentation (one clock at the \
                         client); empty: the sinks of one pipeline share one",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("buffers")
                    .nick("Buffers")
                    .blurb("Buffers of the stream in the device's shared memory")
                    .minimum(2)
                    .maximum(256)
                    .default_value(16)
                    .mutable_ready()
                    .build(),
                // GstStreamVolume's: playsink (playbin's `volume`, `mute`)
                // finds the sink by that interface.
                glib::ParamSpecOverride::for_interface::<gst_audio::StreamVolume>("volume"),
                glib::ParamSpecOverride::for_interface::<gst_audio::StreamVolume>("mute"),
                glib::ParamSpecInt::builder("x")
                    .nick("X")
                    .blurb("Left edge of the video on the guest display")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecInt::builder("y")
                    .nick("Y")
                    .blurb("Top edge of the video on the guest display")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("width")
                    .nick("Width")
                    .blurb("Width of the video on the guest display (0: the client decides)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("height")
                    .nick("Height")
                    .blurb("Height of the video on the guest display (0: the client decides)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("visible")
                    .nick("Visible")
                    .blurb("Whether the client shows the video")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("display")
                    .nick("Display")
                    .blurb("Guest display the geometry refers to")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("eos-timeout")
                    .nick("EOS timeout")
                    .blurb("Seconds to wait for the client to reach the end of stream")
                    .minimum(1)
                    .default_value(60)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("stall-timeout")
                    .nick("Stall timeout")
                    .blurb(
                        "Seconds without any buffer back from the device while playing before \
                         the sink fails (the device or its host daemon died)",
                    )
                    .minimum(1)
                    .default_value(20)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        let mut volume = false;
        let mut geometry = false;
        match pspec.name() {
            "socket" => {
                s.socket = PathBuf::from(
                    value
                        .get::<Option<String>>()
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| DEFAULT_SOCKET.to_owned()),
                );
            }
            "group" => {
                s.group = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default();
            }
            "buffers" => s.buffers = value.get().unwrap_or(16),
            "volume" => {
                s.volume = value.get().unwrap_or(1.0);
                volume = true;
            }
            "mute" => {
                s.mute = value.get().unwrap_or(false);
                volume = true;
            }
            "x" => s.x = value.get().unwrap_or(0),
            "y" => s.y = value.get().unwrap_or(0),
            "width" => s.width = value.get().unwrap_or(0),
            "height" => s.height = value.get().unwrap_or(0),
            "visible" => s.visible = value.get().unwrap_or(true),
            "display" => s.display = value.get().unwrap_or(0),
            "eos-timeout" => s.eos_timeout = value.get().unwrap_or(60),
            "stall-timeout" => s.stall_timeout = value.get().unwrap_or(20),
            _ => {}
        }
        if matches!(
            pspec.name(),
            "x" | "y" | "width" | "height" | "visible" | "display"
        ) {
            s.geometry_set = true;
            geometry = true;
        }
        drop(s);
        if volume {
            self.apply_volume();
        }
        if geometry {
            self.apply_geometry();
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        match pspec.name() {
            "socket" => s.socket.display().to_string().to_value(),
            "group" => s.group.to_value(),
            "buffers" => s.buffers.to_value(),
            "volume" => s.volume.to_value(),
            "mute" => s.mute.to_value(),
            "x" => s.x.to_value(),
            "y" => s.y.to_value(),
            "width" => s.width.to_value(),
            "height" => s.height.to_value(),
            "visible" => s.visible.to_value(),
            "display" => s.display.to_value(),
            "eos-timeout" => s.eos_timeout.to_value(),
            "stall-timeout" => s.stall_timeout.to_value(),
            _ => None::<String>.to_value(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        // The client schedules presentation from the timestamps, but the
        // sinks of a pipeline must not run apart: unsynchronised, a stream
        // limited only by the device's flow control (audio: many small
        // buffers) lags one that is not (video), and `playbin`'s stream
        // synchronizer then holds the early stream's EOS, so pausing near
        // the end never prerolls. Synced to the pipeline clock with a lead
        // (a negative `ts-offset`), each sink hands its buffers to the
        // device `LEAD` ahead of their time.
        self.obj().set_sync(true);
        self.obj().set_ts_offset(-LEAD_NS);
        // Compressed buffers outside the segment still go to the client:
        // a local decoder decodes them (AAC priming, the packet before a
        // seek target: the next packet's output depends on them) and drops
        // only their output, which the buffer's clip marks (`clip`);
        // video frames outside it go flagged DECODE_ONLY (`render`).
        self.obj().set_drop_out_of_segment(false);
    }
}

impl GstObjectImpl for MediaRedirSink {}

impl ElementImpl for MediaRedirSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Media redirection sink",
                "Sink/Audio/Video",
                "Redirects compressed audio or video to the client of the media-redirection \
                 device (refuses caps when no client can decode them)",
                "The vhost-device-media authors",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps::template_caps(),
                )
                .expect("valid pad template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::PausedToPlaying => {
                self.paused.store(false, Ordering::SeqCst);
                self.set_playing(true)?;
            }
            gst::StateChange::PlayingToPaused => {
                self.paused.store(true, Ordering::SeqCst);
                // Going down never fails for the device's sake.
                let _ = self.set_playing(false);
            }
            _ => {}
        }
        self.parent_change_state(transition)
    }
}

impl BaseSinkImpl for MediaRedirSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.close_stream();
        self.paused.store(true, Ordering::SeqCst);
        *lock(&self.codecs) = None;
        Ok(())
    }

    fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
        let caps = caps::caps_for(&self.client_codecs());
        gst::trace!(CAT, imp = self, "caps {caps}");
        Some(match filter {
            Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let format =
            caps::stream_format(caps).map_err(|e| gst::loggable_error!(CAT, "caps {caps}: {e}"))?;
        // The same stream unless what the decoder needs changed: a demuxer
        // that refines its frame rate (qtdemux on a fragmented MP4) sends
        // new caps mid-stream, and the buffers' times already say it.
        if lock(&self.stream)
            .as_ref()
            .is_some_and(|s| caps::same_stream(&s.format, &format))
        {
            return Ok(());
        }
        self.close_stream();
        let stream = match self.open_stream(&format) {
            Ok(s) => s,
            Err(e) => {
                let what = match e.status() {
                    Some(Status::NoClient) => "no client connected",
                    Some(Status::Unsupported) => "the client cannot decode the stream",
                    _ => "creating the stream",
                };
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ["media redirection: {}: {}", what, e]
                );
                return Err(gst::loggable_error!(CAT, "{what}: {e}"));
            }
        };
        gst::info!(
            CAT,
            imp = self,
            "stream {} ({}) in presentation {}",
            stream.id,
            format.codec,
            stream.group.lock().presentation
        );
        *lock(&self.handle) = Some(Handle {
            group: Arc::clone(&stream.group),
            id: stream.id,
            audio: !format.codec.is_video(),
        });
        *lock(&self.stream) = Some(stream);
        Ok(())
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = lock(&self.stream);
        let Some(stream) = guard.as_mut() else {
            return Err(gst::FlowError::NotNegotiated);
        };
        if buffer.flags().contains(gst::BufferFlags::HEADER)
            && caps::headers_in_codec_data(stream.format.codec)
            && !stream.format.codec_data.is_empty()
        {
            return Ok(gst::FlowSuccess::Ok);
        }
        let map = buffer
            .map_readable()
            .map_err(|_| self.fail("a buffer", &"is not readable"))?;
        let bytes_used =
            u32::try_from(map.len()).map_err(|_| self.fail("a buffer", &"too large"))?;
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let stream_time = |t: Option<gst::ClockTime>| {
            let t = t?;
            Some(
                segment
                    .and_then(|s| s.to_stream_time(t))
                    .unwrap_or(t)
                    .nseconds(),
            )
        };
        let pts = stream_time(buffer.pts());
        let dts = stream_time(buffer.dts()).filter(|d| Some(*d) != pts);
        let mut flags = 0;
        if !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
            flags |= FLAG_KEYFRAME;
        }
        if buffer.flags().contains(gst::BufferFlags::DISCONT) {
            flags |= FLAG_DISCONT;
        }
        // Video outside the segment: decoded for the frames after it, never
        // shown (GstBaseSink no longer drops it: see `constructed`).
        if stream.format.codec.is_video()
            && (buffer.flags().contains(gst::BufferFlags::DECODE_ONLY)
                || buffer.pts().zip(segment).is_some_and(|(t, s)| {
                    clip::Segment::of(s).excludes(t.nseconds(), nanos(buffer.duration()))
                }))
        {
            flags |= FLAG_DECODE_ONLY;
        }
        let discont = buffer.flags().contains(gst::BufferFlags::DISCONT);
        let samples = stream
            .decoded
            .samples(map.as_slice(), discont, nanos(buffer.duration()));
        let clip =
            clip::clip_of(buffer).unwrap_or_else(|| match (samples, buffer.pts(), segment) {
                // What GStreamer's decoder cuts, less what the client's
                // decoder will cut itself: the group flushes the
                // presentation at the segment's start in stream time before
                // the first buffer, so the client clips buffers timed
                // before that (tsdemux's audio before the first picture);
                // clipping those here too would cut twice where the engine
                // trims itself (a52dec, mpg123). qtdemux's edit list starts
                // the segment after the priming at stream time 0, which
                // the client cannot see: the sink clips it.
                (Some(n), Some(t), Some(s)) => {
                    let want = stream
                        .decoded
                        .segment_clip(n, t.nseconds(), &clip::Segment::of(s));
                    let flushed_at = clip::Segment {
                        start: stream_time(Some(s.start().unwrap_or_default())).unwrap_or(0),
                        stop: None,
                    };
                    let client = stream
                        .decoded
                        .segment_clip(n, pts.unwrap_or(0), &flushed_at);
                    Clip::saturating(
                        u64::from(want.start).saturating_sub(u64::from(client.start)),
                        u64::from(want.end),
                    )
                }
                _ => Clip::NONE,
            });
        gst::log!(
            CAT,
            imp = self,
            "buffer pts {:?} dts {:?} duration {:?} flags {flags:#x} clip {clip:?} segment {:?}",
            pts,
            dts,
            buffer.duration(),
            segment.map(clip::Segment::of),
        );
        let info = BufferInfo {
            bytes_used,
            pts,
            dts,
            duration: nanos(buffer.duration()),
            flags,
            clip,
        };
        self.queue(stream, map.as_slice(), info)?;
        Ok(gst::FlowSuccess::Ok)
    }

    fn event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::FlushStart(_) => {
                if let Some(h) = lock(&self.handle).clone() {
                    h.group.lock().flush_pending = true;
                }
            }
            gst::EventView::Eos(_) => {
                // Flushing, or an error already posted: no EOS.
                let mut guard = lock(&self.stream);
                if let Some(stream) = guard.as_mut()
                    && let Err(e) = self
                        .flush_if_pending(stream)
                        .and_then(|()| self.finish(stream))
                {
                    gst::debug!(CAT, imp = self, "end of stream not reached: {e:?}");
                    return false;
                }
            }
            _ => {}
        }
        self.parent_event(event)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(false, Ordering::SeqCst);
        Ok(())
    }
}

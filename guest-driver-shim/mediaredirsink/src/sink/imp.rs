//! The `mediaredirsink` implementation: a `GstBaseSink` over the player API
//! (`mediaredir_player`). The GObject, element and base-sink
//! virtual methods are here; what they do is in the sibling modules:
//!
//! - Caps ([`super::stream`]): the sink pad's caps query (and so
//!   accept-caps, which `playbin`'s autoplugging asks before plugging a
//!   decoder) answers the template structures of the codecs the connected
//!   client decodes, asked of the broker (`GET_CAPS`, cached for a second);
//!   no broker, no client or no common codec gives empty caps. `set_caps`
//!   creates the stream (`CHECK_FORMAT` first) in the presentation shared
//!   with the other sinks of the pipeline ([`crate::group`]) and requests
//!   its buffers.
//! - Data ([`super::buffer`], [`super::submit`]): `render` copies each
//!   buffer into a free pool buffer (grown when a buffer does not fit) and
//!   queues it with its stream-time timestamps; when the device holds every
//!   buffer it waits for one to come back (the device's flow control),
//!   checking the `unlock` flag, and while paused it waits for preroll like
//!   an audio sink, so flushes and state changes never hang. The client
//!   schedules presentation; the sink still syncs to the pipeline clock,
//!   `LEAD_NS` ahead (`ts-offset`), so the sinks of a pipeline stay
//!   together.
//! - EOS ([`super::submit`]): an EOS buffer is queued and the client's EOS
//!   event awaited before `GstBaseSink` posts EOS. The presentation is
//!   flushed (once for all its sinks) at the segment's position before its
//!   first buffer and before the first buffer after a flushing seek, so the
//!   client's segment starts where the pipeline's does, whichever sink
//!   queues first. PAUSED<->PLAYING pause and play the presentation.
//! - Properties: [`super::settings`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use gstreamer as gst;

use crate::lock;
use gstreamer::glib;
use gstreamer::glib::translate::IntoGlib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_audio as gst_audio;
use gstreamer_base as gst_base;
use gstreamer_base::prelude::*;
use gstreamer_base::subclass::prelude::*;

use mediaredir_proto::codec::Codec;
use mediaredir_proto::status::Status;

use super::buffer::buffer_info;
use super::clip;
use super::settings::{self, Change, Settings};
use super::stream::{Handle, Stream};
use crate::caps;

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "mediaredirsink",
        gst::DebugColorFlags::empty(),
        Some("Media redirection sink"),
    )
});

/// How far ahead of the pipeline clock buffers go to the device (ns).
const LEAD_NS: i64 = 500_000_000;

/// The element.
#[derive(Debug)]
pub struct MediaRedirSink {
    pub(super) settings: Mutex<Settings>,
    pub(super) stream: Mutex<Option<Stream>>,
    pub(super) handle: Mutex<Option<Handle>>,
    pub(super) codecs: Mutex<Option<(Instant, Vec<Codec>)>>,
    /// Set by `unlock` (flush, shutdown, PLAYING -> PAUSED): waits go to
    /// `wait_preroll`.
    pub(super) flushing: AtomicBool,
    /// Not PLAYING: nothing comes back from the device, wait for preroll.
    pub(super) paused: AtomicBool,
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

#[glib::object_subclass]
impl ObjectSubclass for MediaRedirSink {
    const NAME: &'static str = "GstMediaRedirSink";
    type Type = super::MediaRedirSink;
    type ParentType = gst_base::BaseSink;

    fn type_init(type_: &mut glib::subclass::InitializingType<Self>) {
        // GstStreamVolume has no virtual methods (only the `volume` and
        // `mute` properties, overridden in `settings::properties`), and
        // gstreamer-audio offers no subclassing glue for it: add it with an
        // empty init.
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
    pub(super) fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    /// Posts an element error about `what` and returns the flow error.
    pub(super) fn fail(&self, what: &str, error: &dyn std::fmt::Display) -> gst::FlowError {
        gst::element_imp_error!(
            self,
            gst::ResourceError::Failed,
            ["media redirection: {}: {}", what, error]
        );
        gst::FlowError::Error
    }
}

impl ObjectImpl for MediaRedirSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(settings::properties);
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let change = lock(&self.settings).set(pspec.name(), value);
        match change {
            Change::Volume => self.apply_volume(),
            Change::Geometry => self.apply_geometry(),
            Change::None => {}
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        lock(&self.settings).get(pspec.name())
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
    sink_element_info!(
        "Media redirection sink",
        "Sink/Audio/Video",
        "Redirects compressed audio or video to the client of the media-redirection \
         device (refuses caps when no client can decode them)",
        caps::template_caps(),
    );

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
        let info = buffer_info(stream, buffer, map.as_slice(), bytes_used, segment);
        gst::log!(
            CAT,
            imp = self,
            "buffer pts {:?} dts {:?} duration {:?} flags {:#x} clip {:?} segment {:?}",
            info.pts,
            info.dts,
            buffer.duration(),
            info.flags,
            info.clip,
            segment.map(clip::Segment::of),
        );
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

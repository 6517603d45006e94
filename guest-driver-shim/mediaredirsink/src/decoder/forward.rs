//! The redirect branch's element: compressed buffers in, to the client
//! through the private device bin ([`super::device`]); placeholders out
//! ([`super::placeholder`]), in presentation order.
//!
//! The device bin's state follows this element's. At the caps, the stream
//! must be created at the client before anything goes downstream (else the
//! decoder falls back to its local branch); at the end of stream, the EOS
//! goes downstream only once the client reached it, so that an application
//! that stops at EOS does not cut the client's last second off.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};

use gstreamer as gst;

use crate::lock;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_audio as gst_audio;
use gstreamer_video as gst_video;

use super::device::Device;
use super::placeholder::{self, REORDER_WINDOW, Silence, Slot, Timeline};
use crate::caps;

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "mediaredirdecoder",
        gst::DebugColorFlags::empty(),
        Some("Media redirection decoder"),
    )
});

/// The placeholder of the negotiated stream.
#[derive(Debug)]
enum Output {
    Video {
        picture: gst::Buffer,
        frame_duration: Option<u64>,
    },
    Audio(Silence),
}

#[derive(Debug, Default)]
struct State {
    /// The compressed caps (for renegotiating the placeholder).
    caps: Option<gst::Caps>,
    output: Option<Output>,
    timeline: Timeline,
}

glib::wrapper! {
    /// The redirect branch's element (not registered: made by the
    /// decoders only).
    pub(super) struct Forward(ObjectSubclass<Imp>)
        @extends gst::Element, gst::Object;
}

impl Forward {
    /// A forwarding element for `video` or audio, whose sink talks to the
    /// broker at `socket` in the presentation of `group`.
    pub(super) fn new(video: bool, socket: &str, group: &str) -> Forward {
        let f: Forward = glib::Object::new();
        let imp = f.imp();
        imp.video.set(video).expect("set once, at creation");
        lock(&imp.state).timeline = Timeline::new(if video { REORDER_WINDOW } else { 0 });
        imp.device.configure(socket, group);
        f
    }

    /// Whether the connected client decodes `caps` (asked of the broker).
    pub(super) fn client_takes(&self, caps: &gst::Caps) -> bool {
        self.imp().device.client_takes(caps)
    }

    /// Whether the stream was created at the client and the placeholder
    /// negotiated.
    pub(super) fn negotiated(&self) -> bool {
        let s = lock(&self.imp().state);
        s.caps.is_some() && s.output.is_some()
    }
}

/// The element's implementation.
#[derive(Debug)]
pub(super) struct Imp {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    device: Device,
    video: std::sync::OnceLock<bool>,
    /// A flush or a shutdown is under way: waits end.
    flushing: AtomicBool,
    state: Mutex<State>,
}

impl Imp {
    fn is_video(&self) -> bool {
        self.video.get().copied().unwrap_or(true)
    }

    fn inner_pad(&self) -> &gst::Pad {
        self.device.pad()
    }

    /// Negotiates the placeholder for `compressed` with downstream.
    fn negotiate(&self, compressed: &gst::Caps) -> bool {
        let Ok(format) = caps::stream_format(compressed) else {
            return false;
        };
        let structure = compressed.structure(0);
        let offered = if self.is_video() {
            let par = structure
                .and_then(|s| s.get::<gst::Fraction>("pixel-aspect-ratio").ok())
                .unwrap_or_else(|| gst::Fraction::new(1, 1));
            placeholder::video_caps(&format, par)
        } else {
            placeholder::audio_caps(&format)
        };
        let caps = self.srcpad.peer_query_caps(Some(&offered));
        let mut caps = if caps.is_empty() { offered } else { caps };
        caps.fixate();
        let output = if self.is_video() {
            let Ok(info) = gst_video::VideoInfo::from_caps(&caps) else {
                return false;
            };
            let Some(picture) = placeholder::key_picture(&info) else {
                return false;
            };
            let fps = info.fps();
            let frame_duration = (fps.numer() > 0).then(|| {
                gst::ClockTime::SECOND
                    .mul_div_floor(fps.denom() as u64, fps.numer() as u64)
                    .map_or(0, gst::ClockTime::nseconds)
            });
            Output::Video {
                picture,
                frame_duration,
            }
        } else {
            let Some(silence) = gst_audio::AudioInfo::from_caps(&caps)
                .ok()
                .as_ref()
                .and_then(Silence::new)
            else {
                return false;
            };
            Output::Audio(silence)
        };
        gst::debug!(CAT, imp = self, "placeholder {caps}");
        lock(&self.state).output = Some(output);
        self.srcpad.push_event(gst::event::Caps::new(&caps))
    }

    /// Pushes the placeholders of `slots`.
    fn push_slots(&self, slots: Vec<Slot>) -> Result<gst::FlowSuccess, gst::FlowError> {
        for slot in slots {
            let out = {
                let mut s = lock(&self.state);
                match s.output.as_mut() {
                    Some(Output::Video { picture, .. }) => picture.copy(),
                    Some(Output::Audio(silence)) => silence.take(slot.duration.unwrap_or_default()),
                    None => return Err(gst::FlowError::NotNegotiated),
                }
            };
            let mut out = out;
            {
                let out = out.make_mut();
                out.set_pts(slot.pts.map(gst::ClockTime::from_nseconds));
                out.set_dts(gst::ClockTime::NONE);
                out.set_duration(slot.duration.map(gst::ClockTime::from_nseconds));
            }
            self.srcpad.push(out)?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        if self.srcpad.check_reconfigure() {
            // Taken before `negotiate`, which locks the state itself.
            let caps = lock(&self.state).caps.clone();
            if let Some(caps) = caps
                && !self.negotiate(&caps)
            {
                self.srcpad.mark_reconfigure();
                return Err(gst::FlowError::NotNegotiated);
            }
        }
        let slots = {
            let mut s = lock(&self.state);
            let frame_duration = match &s.output {
                Some(Output::Video { frame_duration, .. }) => *frame_duration,
                _ => None,
            };
            let nanos = |t: Option<gst::ClockTime>| t.map(gst::ClockTime::nseconds);
            s.timeline.push(
                nanos(buffer.pts()),
                nanos(buffer.dts()),
                nanos(buffer.duration()),
                frame_duration,
            )
        };
        self.push_slots(slots)?;
        self.inner_pad().chain(buffer).inspect_err(|e| {
            // Mid-stream: the device's failure is the application's (a
            // switch to the local branch is issue 20's item 4).
            if let Some(why) = self.device.failed() {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Failed,
                    ["media redirection failed: {}", why]
                );
            } else {
                gst::debug!(CAT, imp = self, "device flow: {e:?}");
            }
        })
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Caps(c) => {
                let caps = c.caps_owned();
                // The client first: a stream it refuses or fails to create
                // fails this branch before anything goes downstream.
                if !self.inner_pad().send_event(event) || !self.device.wait_created(&caps) {
                    gst::info!(CAT, imp = self, "the client does not take {caps}");
                    return false;
                }
                lock(&self.state).caps = Some(caps.clone());
                self.negotiate(&caps)
            }
            gst::EventView::FlushStart(_) => {
                self.flushing.store(true, Ordering::SeqCst);
                let _ = self.inner_pad().send_event(event.clone());
                self.srcpad.push_event(event)
            }
            gst::EventView::FlushStop(_) => {
                lock(&self.state).timeline.clear();
                let _ = self.inner_pad().send_event(event.clone());
                self.device.restart();
                self.flushing.store(false, Ordering::SeqCst);
                self.srcpad.push_event(event)
            }
            gst::EventView::Eos(_) => {
                let rest = lock(&self.state).timeline.drain();
                let _ = self.push_slots(rest);
                if self.inner_pad().send_event(event.clone()) {
                    self.device.wait_eos(&self.flushing);
                }
                self.srcpad.push_event(event)
            }
            _ => {
                if event.is_serialized() {
                    let _ = self.inner_pad().send_event(event.clone());
                }
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
        }
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Caps(q) = query.view_mut() {
            let caps = pad
                .current_caps()
                .unwrap_or_else(|| pad.pad_template_caps());
            super::answer_caps(q, &caps);
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                super::answer_caps(q, &pad.pad_template_caps());
                true
            }
            gst::QueryViewMut::AcceptCaps(q) => {
                let ok = q.caps().can_intersect(&pad.pad_template_caps());
                q.set_result(ok);
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for Imp {
    const NAME: &'static str = "GstMediaRedirForward";
    type Type = Forward;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").expect("sink"))
            .chain_function(|_, parent, buffer| {
                Imp::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.chain(buffer),
                )
            })
            .event_function(|pad, parent, event| {
                Imp::catch_panic_pad_function(parent, || false, |imp| imp.sink_event(pad, event))
            })
            .query_function(|pad, parent, query| {
                Imp::catch_panic_pad_function(parent, || false, |imp| imp.sink_query(pad, query))
            })
            .build();
        let srcpad = gst::Pad::builder_from_template(&klass.pad_template("src").expect("src"))
            .query_function(|pad, parent, query| {
                Imp::catch_panic_pad_function(parent, || false, |imp| imp.src_query(pad, query))
            })
            .build();
        Imp {
            sinkpad,
            srcpad,
            device: Device::new(),
            video: std::sync::OnceLock::new(),
            flushing: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }
}

impl ObjectImpl for Imp {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).expect("add the sink pad");
        obj.add_pad(&self.srcpad).expect("add the src pad");
    }

    fn dispose(&self) {
        self.device.set_state(gst::State::Null);
    }
}

impl GstObjectImpl for Imp {}

impl ElementImpl for Imp {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Media redirection forwarder",
                "Codec/Decoder",
                "Sends compressed media to the client and outputs placeholders",
                "The vhost-device-media authors",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let raw = gst::Caps::builder_full()
                .structure(gst::Structure::new_empty("video/x-raw"))
                .structure(gst::Structure::new_empty("audio/x-raw"))
                .build();
            super::pad_templates(&caps::template_caps(), &raw)
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        // Down: the device first, which unblocks a chain waiting in it.
        let inner = match transition {
            gst::StateChange::NullToReady => Some(gst::State::Ready),
            gst::StateChange::ReadyToPaused | gst::StateChange::PlayingToPaused => {
                Some(gst::State::Paused)
            }
            gst::StateChange::PausedToPlaying => Some(gst::State::Playing),
            gst::StateChange::PausedToReady => Some(gst::State::Ready),
            gst::StateChange::ReadyToNull => Some(gst::State::Null),
            _ => None,
        };
        if transition == gst::StateChange::PausedToReady {
            self.flushing.store(true, Ordering::SeqCst);
        }
        if transition == gst::StateChange::ReadyToPaused {
            self.flushing.store(false, Ordering::SeqCst);
        }
        if let Some(state) = inner
            && !self.device.set_state(state)
        {
            gst::warning!(CAT, imp = self, "the device refused {state:?}");
            if transition == gst::StateChange::NullToReady {
                return Err(gst::StateChangeError);
            }
        }
        let result = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            let mut s = lock(&self.state);
            s.timeline.clear();
            s.output = None;
            s.caps = None;
        }
        Ok(result)
    }
}

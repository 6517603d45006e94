//! The bins behind `mediaredirvideosink` and `mediarediraudiosink`.
//!
//! The redirect sink (child `redirect`) sits in the bin with its state
//! locked and the local fallback outside it, both READY, until the first
//! caps arrive, so neither prerolls nor counts for EOS
//! before it is chosen (and `playsink` finds the redirect sink's
//! `GstStreamVolume` for playbin's volume, forwarded to the fallback when
//! that plays); the bin answers caps and accept-caps queries with
//! both children's answers (redirect first). The fallback is only made
//! when the redirect sink refuses an accept-caps query (what playbin asks
//! before plugging a decoder) or answers no caps, so a redirected stream
//! never starts a local
//! sink (`autovideosink` probes the display). At the first caps event (or an
//! EOS without caps) the child that accepts them is unlocked, synced to the
//! bin's state and made the ghost pad's target; the other is removed.
//! Events before that are held (sticky ones stored on the pad and
//! forwarded to the chosen child, in order). The
//! bin goes to PAUSED asynchronously meanwhile, posting its own
//! ASYNC_START/ASYNC_DONE as `playsink` does, so the pipeline prerolls on
//! the chosen child. Back to READY both children are in place again.

use std::sync::{LazyLock, Mutex, MutexGuard};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_audio as gst_audio;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "mediaredirautosink",
        gst::DebugColorFlags::empty(),
        Some("Media redirection with a local fallback"),
    )
});

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the bins share.
#[derive(Debug)]
pub(crate) struct Core {
    fallback_factory: &'static str,
    redirect: gst::Element,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The fallback sink set by the application (else `fallback_factory`).
    fallback_set: Option<gst::Element>,
    /// The fallback in use from READY on.
    fallback: Option<gst::Element>,
    /// The child that got the stream.
    chosen: Option<gst::Element>,
    /// The bin posted an ASYNC_START of its own.
    async_pending: bool,
    /// Volume and mute of the redirect sink forwarded to the fallback.
    volume_forwarding: Vec<glib::SignalHandlerId>,
}

impl Core {
    fn new(fallback_factory: &'static str) -> Core {
        let redirect = gst::ElementFactory::make("mediaredirsink")
            .name("redirect")
            .build()
            .expect("mediaredirsink is registered with this element");
        Core {
            fallback_factory,
            redirect,
            state: Mutex::new(State::default()),
        }
    }

    fn properties() -> Vec<glib::ParamSpec> {
        vec![
            glib::ParamSpecString::builder("socket")
                .nick("Broker socket")
                .blurb("Path of the media-redirection broker's socket")
                .default_value(Some(mediaredir_proto::broker::DEFAULT_SOCKET))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("group")
                .nick("Presentation group")
                .blurb("Sinks with the same group share one presentation (empty: the pipeline's)")
                .mutable_ready()
                .build(),
            glib::ParamSpecObject::builder::<gst::Element>("fallback-sink")
                .nick("Fallback sink")
                .blurb("Sink of the local playback when the client cannot decode the stream")
                .build(),
            glib::ParamSpecObject::builder::<gst::Element>("redirect-sink")
                .nick("Redirect sink")
                .blurb("The mediaredirsink child (volume, geometry)")
                .read_only()
                .build(),
            glib::ParamSpecString::builder("active")
                .nick("Active")
                .blurb("Which child plays the stream: \"redirect\", \"fallback\" or \"\"")
                .read_only()
                .build(),
        ]
    }

    fn set_property(&self, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            "socket" | "group" => self.redirect.set_property_from_value(pspec.name(), value),
            "fallback-sink" => {
                lock(&self.state).fallback_set = value.get::<Option<gst::Element>>().ok().flatten();
            }
            _ => {}
        }
    }

    fn property(&self, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "socket" | "group" => self.redirect.property_value(pspec.name()),
            "fallback-sink" => {
                let s = lock(&self.state);
                s.fallback
                    .clone()
                    .or_else(|| s.fallback_set.clone())
                    .to_value()
            }
            "redirect-sink" => self.redirect.to_value(),
            "active" => {
                let s = lock(&self.state);
                let name = match &s.chosen {
                    Some(c) if *c == self.redirect => "redirect",
                    Some(_) => "fallback",
                    None => "",
                };
                name.to_value()
            }
            _ => None::<String>.to_value(),
        }
    }

    fn constructed(&self, bin: &gst::Bin, pad: &gst::GhostPad) {
        self.redirect.set_locked_state(true);
        bin.add(&self.redirect).expect("add the redirect sink");
        bin.set_element_flags(gst::ElementFlags::SINK);
        self.target_redirect(pad);
    }

    /// The redirect sink is the pad's target until a choice (so that no
    /// child pad is left unlinked: `gst_parse_bin_from_description` would
    /// ghost it, as `gst-play-1.0 --videosink="... socket=..."` does).
    fn target_redirect(&self, pad: &gst::GhostPad) {
        if let Some(target) = Self::sink_pad(&self.redirect) {
            let _ = pad.set_target(Some(&target));
        }
    }

    fn sink_pad(element: &gst::Element) -> Option<gst::Pad> {
        element.static_pad("sink")
    }

    /// Caps and accept-caps before a child is chosen: both children's.
    fn query(&self, pad: &gst::Pad, parent: &gst::Object, query: &mut gst::QueryRef) -> bool {
        let fallback = {
            let s = lock(&self.state);
            if s.chosen.is_some() {
                None
            } else {
                Some(s.fallback.clone())
            }
        };
        let Some(fallback) = fallback else {
            return gst::Pad::query_default(pad, Some(parent), query);
        };
        let redirect = Self::sink_pad(&self.redirect);
        match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                let filter = q.filter_owned();
                let mut caps = redirect
                    .as_ref()
                    .map_or_else(gst::Caps::new_empty, |p| p.query_caps(filter.as_ref()));
                // Nothing (of the filter) for the client: the local sink
                // will be needed.
                let fallback = if caps.is_empty() {
                    self.ensure_fallback(parent)
                } else {
                    fallback
                };
                if let Some(p) = fallback.as_ref().and_then(Self::sink_pad) {
                    caps.merge(p.query_caps(filter.as_ref()));
                }
                gst::debug!(CAT, obj = parent, "caps before choosing: {caps}");
                q.set_result(&caps);
                true
            }
            gst::QueryViewMut::AcceptCaps(q) => {
                let caps = q.caps_owned();
                // playbin asks this before plugging a decoder: only when the
                // client cannot take the stream is the local sink needed.
                let ok = redirect
                    .as_ref()
                    .is_some_and(|p| p.query_accept_caps(&caps))
                    || self
                        .ensure_fallback(parent)
                        .as_ref()
                        .and_then(Self::sink_pad)
                        .is_some_and(|p| p.query_accept_caps(&caps));
                q.set_result(ok);
                true
            }
            _ => gst::Pad::query_default(pad, Some(parent), query),
        }
    }

    /// Chooses the child at the first caps (or EOS), then forwards.
    fn event(&self, bin: &gst::Bin, pad: &gst::GhostPad, event: gst::Event) -> bool {
        let undecided = lock(&self.state).chosen.is_none();
        if undecided {
            let chosen = match event.view() {
                gst::EventView::Caps(c) => Some(self.choose(bin, pad, Some(&c.caps_owned()))),
                gst::EventView::Eos(_) => Some(self.choose(bin, pad, None)),
                // Held until the choice: sticky events are stored on the
                // pad (and forwarded then), others dropped.
                _ => return event.is_sticky(),
            };
            if chosen == Some(false) {
                gst::element_error!(
                    bin,
                    gst::CoreError::Negotiation,
                    ["neither the client nor a local sink accepts the stream"]
                );
                return false;
            }
        }
        gst::Pad::event_default(pad, Some(bin), event)
    }

    /// Keeps the child that accepts `caps` (the fallback for `None`);
    /// whether one did.
    fn choose(&self, bin: &gst::Bin, pad: &gst::GhostPad, caps: Option<&gst::Caps>) -> bool {
        let redirect_ok = caps.is_some_and(|caps| {
            Self::sink_pad(&self.redirect).is_some_and(|p| p.query_accept_caps(caps))
        });
        let fallback = if redirect_ok {
            lock(&self.state).fallback.clone()
        } else {
            self.ensure_fallback(bin.upcast_ref())
        };
        let (keep, other) = if redirect_ok {
            (self.redirect.clone(), fallback)
        } else {
            match fallback {
                Some(f)
                    if caps.is_none_or(|caps| {
                        Self::sink_pad(&f).is_some_and(|p| p.query_accept_caps(caps))
                    }) =>
                {
                    (f, Some(self.redirect.clone()))
                }
                _ => return false,
            }
        };
        gst::info!(
            CAT,
            obj = bin,
            "{} plays {}",
            if redirect_ok {
                "the client"
            } else {
                "the local sink"
            },
            caps.map_or_else(|| "an empty stream".to_owned(), |c| c.to_string())
        );
        if let Some(other) = other {
            let _ = other.set_state(gst::State::Null);
            if other == self.redirect {
                let _ = bin.remove(&other);
            }
        }
        if keep != self.redirect {
            if bin.add(&keep).is_err() {
                return false;
            }
            self.forward_volume(&keep);
        }
        let Some(target) = Self::sink_pad(&keep) else {
            return false;
        };
        if pad.set_target(Some(&target)).is_err() {
            return false;
        }
        keep.set_locked_state(false);
        lock(&self.state).chosen = Some(keep.clone());
        if keep.sync_state_with_parent().is_err() {
            return false;
        }
        // What came before the caps (stream-start, tags), in order.
        let mut held = Vec::new();
        pad.sticky_events_foreach(|e| {
            if !matches!(e.type_(), gst::EventType::Caps | gst::EventType::Eos) {
                held.push(e.clone());
            }
            std::ops::ControlFlow::Continue(gst::EventForeachAction::Keep)
        });
        for e in held {
            let _ = gst::Pad::event_default(pad, Some(bin), e);
        }
        self.async_done(bin);
        true
    }

    fn async_start(&self, bin: &gst::Bin, handle: impl Fn(gst::Message)) {
        lock(&self.state).async_pending = true;
        handle(gst::message::AsyncStart::builder().src(bin).build());
    }

    fn async_done(&self, bin: &gst::Bin) {
        let pending = std::mem::take(&mut lock(&self.state).async_pending);
        if pending && let Some(imp) = bin_handle(bin) {
            imp(gst::message::AsyncDone::builder()
                .src(bin)
                .running_time(gst::ClockTime::NONE)
                .build());
        }
    }

    /// Readies the redirect sink. The fallback is made when first needed
    /// ([`Core::ensure_fallback`]), so that a redirected stream never
    /// starts a local sink (`autovideosink` probes the display).
    fn prepare(&self) {
        let _ = self.redirect.set_state(gst::State::Ready);
    }

    /// The fallback sink (READY, outside the bin until chosen), made now
    /// if it was not yet.
    fn ensure_fallback(&self, obj: &gst::Object) -> Option<gst::Element> {
        let mut state = lock(&self.state);
        if state.fallback.is_some() {
            return state.fallback.clone();
        }
        let fallback = match state.fallback_set.clone() {
            Some(f) => f,
            None => match gst::ElementFactory::make(self.fallback_factory).build() {
                Ok(f) => f,
                Err(e) => {
                    gst::warning!(CAT, obj = obj, "no {}: {e}", self.fallback_factory);
                    return None;
                }
            },
        };
        gst::debug!(CAT, obj = obj, "local fallback {} started", fallback.name());
        if fallback.set_state(gst::State::Ready).is_err() {
            gst::warning!(CAT, obj = obj, "the fallback sink cannot start");
        }
        state.fallback = Some(fallback.clone());
        Some(fallback)
    }

    /// `playsink` sets playbin's volume on the redirect sink (the bin's
    /// only `GstStreamVolume` until the choice, as the fallback is outside
    /// it): when the fallback plays, the volume goes on to it.
    fn forward_volume(&self, fallback: &gst::Element) {
        let target = if fallback.is::<gst_audio::StreamVolume>() {
            Some(fallback.clone())
        } else {
            fallback
                .downcast_ref::<gst::Bin>()
                .and_then(|b| b.by_interface(gst_audio::StreamVolume::static_type()))
        };
        let Some(target) = target else {
            return;
        };
        gst::debug!(
            CAT,
            obj = fallback,
            "volume {:?} of the redirect sink forwarded to {}",
            self.redirect.property_value("volume"),
            target.name()
        );
        let mut ids = Vec::new();
        for property in ["volume", "mute"] {
            target.set_property_from_value(property, &self.redirect.property_value(property));
            let to = target.downgrade();
            ids.push(
                self.redirect
                    .connect_notify(Some(property), move |from, pspec| {
                        if let Some(to) = to.upgrade() {
                            to.set_property_from_value(
                                pspec.name(),
                                &from.property_value(pspec.name()),
                            );
                        }
                    }),
            );
        }
        lock(&self.state).volume_forwarding = ids;
    }

    /// Back to READY: the redirect sink in the bin and locked again, the
    /// fallback outside it.
    fn reset(&self, bin: &gst::Bin, pad: &gst::GhostPad) {
        let (fallback, chosen, forwarding) = {
            let mut s = lock(&self.state);
            (
                s.fallback.clone(),
                s.chosen.take(),
                std::mem::take(&mut s.volume_forwarding),
            )
        };
        for id in forwarding {
            self.redirect.disconnect(id);
        }
        if chosen.is_none() {
            return;
        }
        if let Some(f) = fallback {
            if f.parent().is_some() {
                let _ = bin.remove(&f);
            }
            let _ = f.set_state(gst::State::Ready);
        }
        self.redirect.set_locked_state(true);
        if self.redirect.parent().is_none() {
            let _ = bin.add(&self.redirect);
        }
        let _ = self.redirect.set_state(gst::State::Ready);
        self.target_redirect(pad);
    }

    /// Down to NULL: the locked or outside children too.
    fn shut_down(&self) {
        let fallback = lock(&self.state).fallback.take();
        let _ = self.redirect.set_state(gst::State::Null);
        if let Some(f) = fallback {
            let _ = f.set_state(gst::State::Null);
        }
    }

    fn change_state(
        &self,
        bin: &gst::Bin,
        pad: &gst::GhostPad,
        transition: gst::StateChange,
        parent: impl FnOnce(gst::StateChange) -> Result<gst::StateChangeSuccess, gst::StateChangeError>,
        handle: impl Fn(gst::Message),
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::NullToReady => self.prepare(),
            gst::StateChange::ReadyToPaused if lock(&self.state).chosen.is_none() => {
                self.async_start(bin, &handle);
            }
            gst::StateChange::PausedToReady => self.async_done(bin),
            _ => {}
        }
        let result = parent(transition);
        let result = match (transition, result) {
            (_, Err(e)) => {
                if transition == gst::StateChange::ReadyToPaused {
                    self.async_done(bin);
                }
                return Err(e);
            }
            (gst::StateChange::ReadyToPaused, Ok(gst::StateChangeSuccess::Success))
                if lock(&self.state).async_pending =>
            {
                Ok(gst::StateChangeSuccess::Async)
            }
            (_, ok) => ok,
        };
        match transition {
            gst::StateChange::PausedToReady => self.reset(bin, pad),
            gst::StateChange::ReadyToNull => self.shut_down(),
            _ => {}
        }
        result
    }
}

type Handler = Box<dyn Fn(gst::Message)>;

/// The bin class's own message handler (`GstBin::handle_message` of the
/// parent class), for posting ASYNC_START/ASYNC_DONE of the bin itself.
fn bin_handle(bin: &gst::Bin) -> Option<Handler> {
    if let Some(s) = bin.downcast_ref::<super::MediaRedirVideoSink>() {
        let s = s.clone();
        return Some(Box::new(move |m| s.imp().parent_handle_message(m)));
    }
    if let Some(s) = bin.downcast_ref::<super::MediaRedirAudioSink>() {
        let s = s.clone();
        return Some(Box::new(move |m| s.imp().parent_handle_message(m)));
    }
    None
}

macro_rules! auto_sink {
    ($module:ident, $wrapper:ident, $gtype:literal, $fallback:literal, $long:literal, $klass:literal, $desc:literal) => {
        /// One of the two bins.
        pub(super) mod $module {
            use super::*;

            /// The element.
            #[derive(Debug)]
            pub struct Sink {
                core: Core,
                pad: gst::GhostPad,
            }

            impl Default for Sink {
                fn default() -> Self {
                    let templ = Self::pad_templates()
                        .first()
                        .expect("a sink pad template")
                        .clone();
                    let pad = gst::GhostPad::builder_from_template(&templ)
                        .name("sink")
                        .query_function(|pad, parent, query| {
                            Sink::catch_panic_pad_function(
                                parent,
                                || false,
                                |imp| {
                                    imp.core
                                        .query(pad.upcast_ref(), imp.obj().upcast_ref(), query)
                                },
                            )
                        })
                        .event_function(|pad, parent, event| {
                            Sink::catch_panic_pad_function(
                                parent,
                                || false,
                                |imp| imp.core.event(imp.obj().upcast_ref(), pad, event),
                            )
                        })
                        .build();
                    Sink {
                        core: Core::new($fallback),
                        pad,
                    }
                }
            }

            #[glib::object_subclass]
            impl ObjectSubclass for Sink {
                const NAME: &'static str = $gtype;
                type Type = super::super::$wrapper;
                type ParentType = gst::Bin;
            }

            impl ObjectImpl for Sink {
                fn properties() -> &'static [glib::ParamSpec] {
                    static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> =
                        LazyLock::new(Core::properties);
                    PROPERTIES.as_ref()
                }

                fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
                    self.core.set_property(value, pspec);
                }

                fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
                    self.core.property(pspec)
                }

                fn constructed(&self) {
                    self.parent_constructed();
                    let obj = self.obj();
                    obj.add_pad(&self.pad).expect("add the sink pad");
                    self.core.constructed(obj.upcast_ref(), &self.pad);
                }
            }

            impl GstObjectImpl for Sink {}

            impl ElementImpl for Sink {
                fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
                    static METADATA: LazyLock<gst::subclass::ElementMetadata> =
                        LazyLock::new(|| {
                            gst::subclass::ElementMetadata::new(
                                $long,
                                $klass,
                                $desc,
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
                                &gst::Caps::new_any(),
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
                    let obj = self.obj();
                    self.core.change_state(
                        obj.upcast_ref(),
                        &self.pad,
                        transition,
                        |t| self.parent_change_state(t),
                        |m| self.parent_handle_message(m),
                    )
                }
            }

            impl BinImpl for Sink {}
        }
    };
}

auto_sink!(
    video,
    MediaRedirVideoSink,
    "GstMediaRedirVideoSink",
    "autovideosink",
    "Media redirection video sink with local fallback",
    "Sink/Video",
    "Redirects compressed video to the client when it decodes it, else plays it locally"
);
auto_sink!(
    audio,
    MediaRedirAudioSink,
    "GstMediaRedirAudioSink",
    "autoaudiosink",
    "Media redirection audio sink with local fallback",
    "Sink/Audio",
    "Redirects compressed audio to the client when it decodes it, else plays it locally"
);

//! What the two bins share ([`Core`]): the redirect child, the fallback's
//! factory and the state of the choice; the bins' properties; and their
//! life through state changes: NULL->READY readies the redirect sink,
//! READY->PAUSED goes asynchronous (the bin's own ASYNC_START) until a
//! child is chosen, PAUSED->READY puts both children back in place and
//! READY->NULL stops them, inside the bin or not.
//!
//! The choice itself (queries, the first caps, the fallback) is in
//! [`super::choice`].

use std::sync::{LazyLock, Mutex};

use gstreamer as gst;

use crate::lock;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "mediaredirautosink",
        gst::DebugColorFlags::empty(),
        Some("Media redirection with a local fallback"),
    )
});

/// What the bins share.
#[derive(Debug)]
pub(crate) struct Core {
    pub(super) fallback_factory: &'static str,
    pub(super) redirect: gst::Element,
    pub(super) state: Mutex<State>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    /// The fallback sink set by the application (else `fallback_factory`).
    pub(super) fallback_set: Option<gst::Element>,
    /// The fallback in use from READY on.
    pub(super) fallback: Option<gst::Element>,
    /// The child that got the stream.
    pub(super) chosen: Option<gst::Element>,
    /// The bin posted an ASYNC_START of its own.
    async_pending: bool,
    /// Volume and mute of the redirect sink forwarded to the fallback.
    pub(super) volume_forwarding: Vec<glib::SignalHandlerId>,
}

impl Core {
    pub(super) fn new(fallback_factory: &'static str) -> Core {
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

    pub(super) fn properties() -> Vec<glib::ParamSpec> {
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

    pub(super) fn set_property(&self, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            "socket" | "group" => self.redirect.set_property_from_value(pspec.name(), value),
            "fallback-sink" => {
                lock(&self.state).fallback_set = value.get::<Option<gst::Element>>().ok().flatten();
            }
            _ => {}
        }
    }

    pub(super) fn property(&self, pspec: &glib::ParamSpec) -> glib::Value {
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

    pub(super) fn constructed(&self, bin: &gst::Bin, pad: &gst::GhostPad) {
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

    pub(super) fn sink_pad(element: &gst::Element) -> Option<gst::Pad> {
        element.static_pad("sink")
    }

    fn async_start(&self, bin: &gst::Bin, handle: impl Fn(gst::Message)) {
        lock(&self.state).async_pending = true;
        handle(gst::message::AsyncStart::builder().src(bin).build());
    }

    pub(super) fn async_done(&self, bin: &gst::Bin) {
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

    pub(super) fn change_state(
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

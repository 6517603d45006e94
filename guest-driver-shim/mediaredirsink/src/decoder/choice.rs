//! The decoders' choice of branch ([`Core`]), at the first caps.
//!
//! Before it, the sink pad answers caps with its template and accept-caps
//! with whether the system can decode the caps locally (what `decodebin`
//! asks before it keeps a decoder), so that this element never takes a
//! stream it could not fall back for, and never inside another element of
//! this plugin. Events before the caps are held (sticky ones stored on the
//! pad and forwarded, in order, to the chosen branch).
//!
//! At the caps: the redirect branch (a [`Forward`] and a queue that lets
//! the device run [`LEAD`] ahead of the application's sink) when the
//! client takes the caps; else, or when that branch fails at the caps, the
//! local branch ([`super::local`]). Back to READY the branch goes, and the
//! next stream chooses again.

use std::sync::Mutex;

use gstreamer as gst;

use crate::lock;
use gstreamer::glib;
use gstreamer::prelude::*;

use super::forward::{CAT, Forward};
use super::local;

/// How far the device runs ahead of the application's sink (ns): the
/// queue between the forwarder and the sink holds this much placeholder.
const LEAD: u64 = 500_000_000;

/// The broker socket of an element made without one: `MEDIAREDIR_SOCKET`
/// from the environment (a per-user or test broker), else the system's.
pub(crate) fn default_socket() -> String {
    std::env::var("MEDIAREDIR_SOCKET")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| mediaredir_proto::broker::DEFAULT_SOCKET.to_owned())
}

/// Which branch plays the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Redirect,
    Local,
}

#[derive(Debug)]
struct Chosen {
    kind: Kind,
    elements: Vec<gst::Element>,
}

/// What the two decoders share.
#[derive(Debug)]
pub(super) struct Core {
    video: bool,
    pub(super) sinkpad: gst::GhostPad,
    pub(super) srcpad: gst::GhostPad,
    socket: Mutex<String>,
    chosen: Mutex<Option<Chosen>>,
}

impl Core {
    pub(super) fn new(video: bool, sinkpad: gst::GhostPad, srcpad: gst::GhostPad) -> Core {
        Core {
            video,
            sinkpad,
            srcpad,
            socket: Mutex::new(default_socket()),
            chosen: Mutex::new(None),
        }
    }

    pub(super) fn properties() -> Vec<glib::ParamSpec> {
        vec![
            glib::ParamSpecString::builder("socket")
                .nick("Broker socket")
                .blurb(
                    "Path of the media-redirection broker's socket \
                     (default: $MEDIAREDIR_SOCKET, else the system broker's)",
                )
                .default_value(Some(mediaredir_proto::broker::DEFAULT_SOCKET))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("active")
                .nick("Active")
                .blurb("Which branch plays the stream: \"redirect\", \"local\" or \"\"")
                .read_only()
                .build(),
        ]
    }

    pub(super) fn set_property(&self, value: &glib::Value, pspec: &glib::ParamSpec) {
        if pspec.name() == "socket" {
            *lock(&self.socket) = value
                .get::<Option<String>>()
                .ok()
                .flatten()
                .unwrap_or_else(default_socket);
        }
    }

    pub(super) fn property(&self, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "socket" => lock(&self.socket).to_value(),
            _ => match lock(&self.chosen).as_ref().map(|c| c.kind) {
                Some(Kind::Redirect) => "redirect",
                Some(Kind::Local) => "local",
                None => "",
            }
            .to_value(),
        }
    }

    /// Caps and accept-caps before the choice.
    pub(super) fn query(&self, pad: &gst::Pad, bin: &gst::Bin, query: &mut gst::QueryRef) -> bool {
        if lock(&self.chosen).is_some() {
            return gst::Pad::query_default(pad, Some(bin), query);
        }
        match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                super::answer_caps(q, &pad.pad_template_caps());
                true
            }
            gst::QueryViewMut::AcceptCaps(q) => {
                let caps = q.caps_owned();
                let ok = caps.can_intersect(&pad.pad_template_caps())
                    && !local::inside_ours(bin.upcast_ref(), bin.upcast_ref())
                    && local::decodable(&caps, self.video);
                gst::debug!(CAT, obj = bin, "accept {caps}: {ok}");
                q.set_result(ok);
                true
            }
            _ => gst::Pad::query_default(pad, Some(bin), query),
        }
    }

    /// Chooses the branch at the first caps, then forwards.
    pub(super) fn event(&self, bin: &gst::Bin, pad: &gst::GhostPad, event: gst::Event) -> bool {
        if lock(&self.chosen).is_none() {
            match event.view() {
                gst::EventView::Caps(c) => return self.choose(bin, &c.caps_owned(), event),
                // Nothing to decode: the end goes on.
                gst::EventView::Eos(_) => return self.srcpad.push_event(event),
                _ => return event.is_sticky() || !event.is_serialized(),
            }
        }
        gst::Pad::event_default(pad, Some(bin), event)
    }

    fn choose(&self, bin: &gst::Bin, caps: &gst::Caps, event: gst::Event) -> bool {
        let nested = local::inside_ours(bin.upcast_ref(), bin.upcast_ref());
        if !nested {
            let forward = Forward::new(
                self.video,
                &lock(&self.socket),
                &crate::group::pipeline_key(bin.upcast_ref()),
            );
            let queue = gst::ElementFactory::make("queue")
                .property("max-size-time", LEAD)
                .property("max-size-buffers", 0u32)
                .property("max-size-bytes", 0u32)
                .build();
            if let Ok(queue) = queue
                && forward.client_takes(caps)
                && self.install(
                    bin,
                    Kind::Redirect,
                    vec![forward.clone().upcast(), queue],
                    &event,
                )
                && forward.negotiated()
            {
                gst::info!(CAT, obj = bin, "the client plays {caps}");
                return true;
            }
            self.uninstall(bin);
        }
        let local = local::branch(caps, self.video);
        match local {
            Some(elements) if self.install(bin, Kind::Local, elements.clone(), &event) => {
                gst::info!(CAT, obj = bin, "decoding {caps} locally");
                true
            }
            _ => {
                self.uninstall(bin);
                gst::element_error!(
                    bin,
                    gst::CoreError::MissingPlugin,
                    ["no local decoder for {}", caps]
                );
                false
            }
        }
    }

    /// Puts `elements` (linked in order) in the bin as the chosen branch
    /// and gives them the held events and the caps; whether they took the
    /// caps.
    fn install(
        &self,
        bin: &gst::Bin,
        kind: Kind,
        elements: Vec<gst::Element>,
        caps: &gst::Event,
    ) -> bool {
        let (Some(first), Some(last)) = (elements.first(), elements.last()) else {
            return false;
        };
        if bin.add_many(&elements).is_err() {
            return false;
        }
        *lock(&self.chosen) = Some(Chosen {
            kind,
            elements: elements.clone(),
        });
        if gst::Element::link_many(&elements).is_err() {
            return false;
        }
        let (Some(sink), Some(src)) = (first.static_pad("sink"), last.static_pad("src")) else {
            return false;
        };
        if self.sinkpad.set_target(Some(&sink)).is_err()
            || self.srcpad.set_target(Some(&src)).is_err()
        {
            return false;
        }
        for e in &elements {
            if e.sync_state_with_parent().is_err() {
                return false;
            }
        }
        // What came before the caps (stream-start), in order.
        let mut held = Vec::new();
        self.sinkpad.sticky_events_foreach(|e| {
            if !matches!(e.type_(), gst::EventType::Caps | gst::EventType::Eos) {
                held.push(e.clone());
            }
            std::ops::ControlFlow::Continue(gst::EventForeachAction::Keep)
        });
        // Through the ghost pad, so that its internal pad holds them too.
        let ghost = self.sinkpad.upcast_ref::<gst::Pad>();
        for e in held {
            let _ = gst::Pad::event_default(ghost, Some(bin), e);
        }
        gst::Pad::event_default(ghost, Some(bin), caps.clone())
    }

    /// Takes the chosen branch out of the bin (also back to READY: the
    /// next stream chooses again).
    pub(super) fn uninstall(&self, bin: &gst::Bin) {
        let Some(chosen) = lock(&self.chosen).take() else {
            return;
        };
        let _ = self.sinkpad.set_target(None::<&gst::Pad>);
        let _ = self.srcpad.set_target(None::<&gst::Pad>);
        for e in chosen.elements {
            let _ = e.set_state(gst::State::Null);
            if e.parent().is_some() {
                let _ = bin.remove(&e);
            }
        }
    }
}

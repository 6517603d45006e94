//! Choosing the child that plays the stream: before the choice the bin's
//! pad answers caps and accept-caps queries with both children's answers
//! (redirect first), making the local fallback only when the redirect sink
//! refuses; at the first caps event (or an EOS without caps) it keeps the
//! child that accepts them, makes it the ghost pad's target, forwards the
//! held sticky events and drops the other child. A chosen fallback gets the
//! redirect sink's volume and mute, which `playsink` keeps setting there.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_audio as gst_audio;

use super::shared::{CAT, Core};
use crate::lock;

impl Core {
    /// Caps and accept-caps before a child is chosen: both children's.
    pub(super) fn query(
        &self,
        pad: &gst::Pad,
        parent: &gst::Object,
        query: &mut gst::QueryRef,
    ) -> bool {
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
    pub(super) fn event(&self, bin: &gst::Bin, pad: &gst::GhostPad, event: gst::Event) -> bool {
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
}

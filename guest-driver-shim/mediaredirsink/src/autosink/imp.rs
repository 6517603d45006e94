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
//!
//! Here: the two element types, made by one macro; their virtual methods
//! call [`Core`] ([`super::shared`]: properties, state changes;
//! [`super::choice`]: queries, events, the choice).

use std::sync::LazyLock;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;

use super::shared::Core;

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
                sink_element_info!($long, $klass, $desc, gst::Caps::new_any());

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

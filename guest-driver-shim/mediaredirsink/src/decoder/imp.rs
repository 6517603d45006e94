//! The bins behind `mediaredirvideodec` and `mediarediraudiodec`: a ghost
//! sink pad and a ghost src pad whose targets are set when the branch is
//! chosen at the first caps ([`super::choice`]); the two element types are
//! made by one macro.

use std::sync::LazyLock;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;

use mediaredir_proto::codec::Codec;

use super::choice::Core;
use crate::caps;

/// The compressed codecs of one medium (raw PCM needs no decoder).
fn compressed(video: bool) -> gst::Caps {
    let codecs: Vec<Codec> = caps::CODECS
        .iter()
        .copied()
        .filter(|c| c.is_video() == video && c.pcm_sample_bytes().is_none())
        .collect();
    caps::caps_for(&codecs)
}

fn raw(video: bool) -> gst::Caps {
    let name = if video { "video/x-raw" } else { "audio/x-raw" };
    gst::Caps::builder(name).any_features().build()
}

macro_rules! redirecting_decoder {
    ($module:ident, $wrapper:ident, $gtype:literal, $video:expr, $long:literal, $klass:literal, $desc:literal) => {
        /// One of the two decoders.
        pub(super) mod $module {
            use super::*;

            /// The element.
            #[derive(Debug)]
            pub struct Dec {
                core: Core,
            }

            impl Default for Dec {
                fn default() -> Self {
                    let templates = Self::pad_templates();
                    let sink = gst::GhostPad::builder_from_template(&templates[0])
                        .name("sink")
                        .query_function(|pad, parent, query| {
                            Dec::catch_panic_pad_function(
                                parent,
                                || false,
                                |imp| {
                                    imp.core
                                        .query(pad.upcast_ref(), imp.obj().upcast_ref(), query)
                                },
                            )
                        })
                        .event_function(|pad, parent, event| {
                            Dec::catch_panic_pad_function(
                                parent,
                                || false,
                                |imp| imp.core.event(imp.obj().upcast_ref(), pad, event),
                            )
                        })
                        .build();
                    let src = gst::GhostPad::builder_from_template(&templates[1])
                        .name("src")
                        .build();
                    Dec {
                        core: Core::new($video, sink, src),
                    }
                }
            }

            #[glib::object_subclass]
            impl ObjectSubclass for Dec {
                const NAME: &'static str = $gtype;
                type Type = super::super::$wrapper;
                type ParentType = gst::Bin;
            }

            impl ObjectImpl for Dec {
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
                    obj.add_pad(&self.core.sinkpad).expect("add the sink pad");
                    obj.add_pad(&self.core.srcpad).expect("add the src pad");
                }
            }

            impl GstObjectImpl for Dec {}

            impl ElementImpl for Dec {
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
                        super::super::pad_templates(&compressed($video), &raw($video))
                    });
                    TEMPLATES.as_ref()
                }

                fn change_state(
                    &self,
                    transition: gst::StateChange,
                ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
                    let result = self.parent_change_state(transition)?;
                    if transition == gst::StateChange::PausedToReady {
                        self.core.uninstall(self.obj().upcast_ref());
                    }
                    Ok(result)
                }
            }

            impl BinImpl for Dec {}
        }
    };
}

redirecting_decoder!(
    video,
    MediaRedirVideoDec,
    "GstMediaRedirVideoDec",
    true,
    "Media redirection video decoder",
    "Codec/Decoder/Video",
    "Sends compressed video to the client of the media-redirection device and outputs \
     key-colour placeholders; decodes locally when the client cannot"
);
redirecting_decoder!(
    audio,
    MediaRedirAudioDec,
    "GstMediaRedirAudioDec",
    false,
    "Media redirection audio decoder",
    "Codec/Decoder/Audio",
    "Sends compressed audio to the client of the media-redirection device and outputs \
     silence; decodes locally when the client cannot"
);

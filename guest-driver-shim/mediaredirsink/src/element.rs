//! What the plugin's elements declare alike: their metadata, by the
//! project's authors, and their one pad, a sink pad that is always there.

/// `ElementImpl::metadata` and `ElementImpl::pad_templates` of an element
/// of this plugin: long name, classification and description, and the
/// caps of its one always-present `sink` pad. Used inside the element's
/// `impl ElementImpl`.
macro_rules! sink_element_info {
    ($long:expr, $klass:expr, $desc:expr, $caps:expr $(,)?) => {
        fn metadata() -> Option<&'static ::gstreamer::subclass::ElementMetadata> {
            static METADATA: ::std::sync::LazyLock<::gstreamer::subclass::ElementMetadata> =
                ::std::sync::LazyLock::new(|| {
                    ::gstreamer::subclass::ElementMetadata::new(
                        $long,
                        $klass,
                        $desc,
                        "The vhost-device-media authors",
                    )
                });
            Some(&*METADATA)
        }

        fn pad_templates() -> &'static [::gstreamer::PadTemplate] {
            static TEMPLATES: ::std::sync::LazyLock<Vec<::gstreamer::PadTemplate>> =
                ::std::sync::LazyLock::new(|| {
                    vec![
                        ::gstreamer::PadTemplate::new(
                            "sink",
                            ::gstreamer::PadDirection::Sink,
                            ::gstreamer::PadPresence::Always,
                            &$caps,
                        )
                        .expect("valid pad template"),
                    ]
                });
            TEMPLATES.as_ref()
        }
    };
}

//! The capture sources this client offers (spec 10.6 `sources`): the
//! machine's microphones and cameras found by `gst::DeviceMonitor`, or, on
//! headless machines and in tests, a synthetic test microphone and camera.

use gstreamer as gst;
use gstreamer::prelude::*;
use mediaredir_proto::wire::{CaptureSource, MAX_NAME_LEN, MAX_SOURCES, SourceKind};

use crate::config::CaptureSources;
use crate::error::EngineError;

/// Frequency of the test microphone's sine tone, Hz.
pub const TEST_TONE_HZ: f64 = 440.0;

/// Where one source's media comes from.
#[derive(Debug, Clone)]
enum Origin {
    /// `audiotestsrc` (440 Hz sine) or `videotestsrc` (moving ball).
    Test,
    /// A device of the monitor.
    Device(gst::Device),
}

/// One capture source: what is announced and how to make its element.
#[derive(Debug, Clone)]
pub struct Source {
    /// What the client announces.
    pub info: CaptureSource,
    origin: Origin,
}

impl Source {
    /// Whether this is a microphone (else a camera).
    pub fn is_audio(&self) -> bool {
        self.info.kind == SourceKind::Microphone
    }

    /// A new, live source element for this source.
    ///
    /// # Errors
    /// [`EngineError::MissingElement`] or [`EngineError::Pipeline`] when the
    /// element cannot be made.
    pub fn make_element(&self) -> Result<gst::Element, EngineError> {
        match &self.origin {
            Origin::Test if self.is_audio() => gst::ElementFactory::make("audiotestsrc")
                .property("is-live", true)
                .property("freq", TEST_TONE_HZ)
                .property_from_str("wave", "sine")
                .property("volume", 0.5f64)
                .build()
                .map_err(|_| EngineError::MissingElement("audiotestsrc".into())),
            Origin::Test => gst::ElementFactory::make("videotestsrc")
                .property("is-live", true)
                .property_from_str("pattern", "ball")
                .build()
                .map_err(|_| EngineError::MissingElement("videotestsrc".into())),
            Origin::Device(d) => d
                .create_element(None)
                .map_err(|e| EngineError::Pipeline(format!("{}: {e}", self.info.name))),
        }
    }
}

/// The sources of this machine in `mode`, ids from 1, at most
/// [`MAX_SOURCES`].
pub fn discover(mode: CaptureSources) -> Vec<Source> {
    match mode {
        CaptureSources::None => Vec::new(),
        CaptureSources::Test => {
            let mut out = Vec::new();
            if gst::ElementFactory::find("audiotestsrc").is_some() {
                out.push(test_source(1, SourceKind::Microphone, "test microphone"));
            }
            if gst::ElementFactory::find("videotestsrc").is_some() {
                out.push(test_source(2, SourceKind::Camera, "test camera"));
            }
            out
        }
        CaptureSources::Devices => devices(),
    }
}

fn test_source(id: u32, kind: SourceKind, name: &str) -> Source {
    Source {
        info: CaptureSource {
            id,
            kind,
            name: name.into(),
        },
        origin: Origin::Test,
    }
}

fn devices() -> Vec<Source> {
    let monitor = gst::DeviceMonitor::new();
    monitor.add_filter(Some("Audio/Source"), None);
    monitor.add_filter(Some("Video/Source"), None);
    if monitor.start().is_err() {
        log::info!("no device monitor: no capture sources");
        return Vec::new();
    }
    let found = monitor.devices();
    monitor.stop();
    let mut out = Vec::new();
    for d in found {
        if out.len() >= MAX_SOURCES {
            break;
        }
        let kind = if d.has_classes("Audio/Source") {
            SourceKind::Microphone
        } else if d.has_classes("Video/Source") {
            SourceKind::Camera
        } else {
            continue;
        };
        let mut name = d.display_name().to_string();
        truncate_utf8(&mut name, MAX_NAME_LEN);
        let id = u32::try_from(out.len() + 1).unwrap_or(u32::MAX);
        out.push(Source {
            info: CaptureSource { id, kind, name },
            origin: Origin::Device(d),
        });
    }
    out
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_at_char_boundary() {
        let mut s = "aé".repeat(200);
        truncate_utf8(&mut s, 256);
        assert!(s.len() <= 256);
        assert!(s.is_char_boundary(s.len()));
    }

    #[test]
    fn test_sources_are_a_microphone_and_a_camera() {
        gst::init().unwrap();
        let s = discover(CaptureSources::Test);
        assert_eq!(s.len(), 2);
        assert!(s[0].is_audio());
        assert_eq!(s[1].info.kind, SourceKind::Camera);
        assert!(discover(CaptureSources::None).is_empty());
    }
}

//! The `mediaredirsink` properties: their values ([`Settings`]), their
//! `GParamSpec`s, and reading and writing them by name.
//!
//! Kept apart from the element so that `imp.rs` only routes GObject's
//! property calls here, and says what to apply to a negotiated stream when
//! a property changes ([`Change`]).

use std::path::PathBuf;

use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_audio as gst_audio;

use mediaredir_proto::broker::DEFAULT_SOCKET;
use mediaredir_proto::control::{Geometry, Rect};

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) socket: PathBuf,
    pub(super) group: String,
    pub(super) buffers: u32,
    pub(super) volume: f64,
    pub(super) mute: bool,
    x: i32,
    y: i32,
    width: u32,
    height: u32,
    visible: bool,
    display: u32,
    /// Whether a geometry property was set (else the client places the
    /// video itself).
    pub(super) geometry_set: bool,
    pub(super) eos_timeout: u32,
    pub(super) stall_timeout: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            socket: PathBuf::from(DEFAULT_SOCKET),
            group: String::new(),
            buffers: 16,
            volume: 1.0,
            mute: false,
            x: 0,
            y: 0,
            width: 0,
            height: 0,
            visible: true,
            display: 0,
            geometry_set: false,
            eos_timeout: 60,
            stall_timeout: 20,
        }
    }
}

/// What a property write changed that a negotiated stream must be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// Nothing the stream sees now (or a property read at READY only).
    None,
    /// Volume or mute (audio streams).
    Volume,
    /// The video's place on the guest display (video streams).
    Geometry,
}

impl Settings {
    pub(super) fn geometry(&self) -> Geometry {
        Geometry {
            display_id: self.display,
            visible: self.visible,
            color_key: false,
            z: 0,
            dest: Rect {
                x: self.x,
                y: self.y,
                width: self.width,
                height: self.height,
            },
            source: Rect::default(),
            clip: Vec::new(),
        }
    }

    /// Writes the property `name`.
    pub(super) fn set(&mut self, name: &str, value: &glib::Value) -> Change {
        let mut change = Change::None;
        match name {
            "socket" => {
                self.socket = PathBuf::from(
                    value
                        .get::<Option<String>>()
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| DEFAULT_SOCKET.to_owned()),
                );
            }
            "group" => {
                self.group = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default();
            }
            "buffers" => self.buffers = value.get().unwrap_or(16),
            "volume" => {
                self.volume = value.get().unwrap_or(1.0);
                change = Change::Volume;
            }
            "mute" => {
                self.mute = value.get().unwrap_or(false);
                change = Change::Volume;
            }
            "x" => self.x = value.get().unwrap_or(0),
            "y" => self.y = value.get().unwrap_or(0),
            "width" => self.width = value.get().unwrap_or(0),
            "height" => self.height = value.get().unwrap_or(0),
            "visible" => self.visible = value.get().unwrap_or(true),
            "display" => self.display = value.get().unwrap_or(0),
            "eos-timeout" => self.eos_timeout = value.get().unwrap_or(60),
            "stall-timeout" => self.stall_timeout = value.get().unwrap_or(20),
            _ => {}
        }
        if matches!(name, "x" | "y" | "width" | "height" | "visible" | "display") {
            self.geometry_set = true;
            change = Change::Geometry;
        }
        change
    }

    /// Reads the property `name`.
    pub(super) fn get(&self, name: &str) -> glib::Value {
        match name {
            "socket" => self.socket.display().to_string().to_value(),
            "group" => self.group.to_value(),
            "buffers" => self.buffers.to_value(),
            "volume" => self.volume.to_value(),
            "mute" => self.mute.to_value(),
            "x" => self.x.to_value(),
            "y" => self.y.to_value(),
            "width" => self.width.to_value(),
            "height" => self.height.to_value(),
            "visible" => self.visible.to_value(),
            "display" => self.display.to_value(),
            "eos-timeout" => self.eos_timeout.to_value(),
            "stall-timeout" => self.stall_timeout.to_value(),
            _ => None::<String>.to_value(),
        }
    }
}

/// The element's properties.
pub(super) fn properties() -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecString::builder("socket")
            .nick("Broker socket")
            .blurb("Path of the media-redirection broker's socket")
            .default_value(Some(DEFAULT_SOCKET))
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("group")
            .nick("Presentation group")
            .blurb(
                "Sinks with the same group share one presentation (one clock at the \
                 client); empty: the sinks of one pipeline share one",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("buffers")
            .nick("Buffers")
            .blurb("Buffers of the stream in the device's shared memory")
            .minimum(2)
            .maximum(256)
            .default_value(16)
            .mutable_ready()
            .build(),
        // GstStreamVolume's: playsink (playbin's `volume`, `mute`)
        // finds the sink by that interface.
        glib::ParamSpecOverride::for_interface::<gst_audio::StreamVolume>("volume"),
        glib::ParamSpecOverride::for_interface::<gst_audio::StreamVolume>("mute"),
        glib::ParamSpecInt::builder("x")
            .nick("X")
            .blurb("Left edge of the video on the guest display")
            .mutable_playing()
            .build(),
        glib::ParamSpecInt::builder("y")
            .nick("Y")
            .blurb("Top edge of the video on the guest display")
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("width")
            .nick("Width")
            .blurb("Width of the video on the guest display (0: the client decides)")
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("height")
            .nick("Height")
            .blurb("Height of the video on the guest display (0: the client decides)")
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("visible")
            .nick("Visible")
            .blurb("Whether the client shows the video")
            .default_value(true)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("display")
            .nick("Display")
            .blurb("Guest display the geometry refers to")
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("eos-timeout")
            .nick("EOS timeout")
            .blurb("Seconds to wait for the client to reach the end of stream")
            .minimum(1)
            .default_value(60)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("stall-timeout")
            .nick("Stall timeout")
            .blurb(
                "Seconds without any buffer back from the device while playing before \
                 the sink fails (the device or its host daemon died)",
            )
            .minimum(1)
            .default_value(20)
            .mutable_ready()
            .build(),
    ]
}

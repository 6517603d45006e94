//! The one place where the engine picks a real video or audio sink.
//!
//! The engine never autoplugs a sink (`autovideosink`, `autoaudiosink`,
//! `playbin`): ranking picks whatever plugin is installed with the highest
//! rank that opens, and on a machine without `gstreamer1.0-x` that was
//! `dfbvideosink`, which crashed the process (SIGSEGV). Instead each
//! environment has an explicit, ordered list ([`VIDEO_SINKS`],
//! [`AUDIO_SINKS`]); a candidate is tried only when its environment is
//! present, and it is chosen only if its factory exists and the element
//! reaches READY for real (X sinks open their display there, audio sinks
//! their server or device). When none is usable the caller gets a
//! [`NoSink`] error that names the environment, every candidate with what
//! happened to it, and the Debian packages to install.
//!
//! Video ([`OutputMode::Auto`](crate::OutputMode::Auto)):
//!
//! | order | factory       | Debian 12 package          | environment           |
//! |-------|---------------|----------------------------|-----------------------|
//! | 1     | `ximagesink`  | `gstreamer1.0-x`           | X11: `DISPLAY` set    |
//! | 2     | `xvimagesink` | `gstreamer1.0-x`           | X11: `DISPLAY` set    |
//! | 3     | `waylandsink` | `gstreamer1.0-plugins-bad` | `WAYLAND_DISPLAY` set |
//!
//! 1. `ximagesink` works on every X server, Xvfb and remote displays
//!    included, and is deterministic (no Xv port to find). The overlay
//!    path (one X window per presentation, see `window`) hands it that
//!    window; the pipeline already scales (`videoscale`), so Xv's scaler is
//!    not needed.
//! 2. `xvimagesink`, from the same package, for X servers whose visuals
//!    `ximagesink` refuses but that offer an Xv port (Xvfb has none, so it
//!    fails READY there). It also draws into the overlay window.
//! 3. `waylandsink` for Wayland sessions without XWayland. It comes after
//!    the X sinks because the overlay windows are X windows: under
//!    XWayland (both variables set) the X path keeps exact placement;
//!    `waylandsink` draws in a window of its own, with the geometry
//!    applied inside the pipeline.
//!
//! Audio (Auto mode and call media):
//!
//! | order | factory        | Debian 12 package            | environment                                         |
//! |-------|----------------|------------------------------|-----------------------------------------------------|
//! | 1     | `pulsesink`    | `gstreamer1.0-plugins-good`  | `$PULSE_SERVER`, `$XDG_RUNTIME_DIR/pulse/native` or `/run/pulse/native` |
//! | 2     | `pipewiresink` | `gstreamer1.0-pipewire`      | `$PIPEWIRE_REMOTE` or `$XDG_RUNTIME_DIR/pipewire-0` |
//! | 3     | `alsasink`     | `gstreamer1.0-alsa`          | a playback PCM in `/dev/snd` (`pcmC*D*p`)           |
//!
//! 1. `pulsesink` talks to the desktop's sound server: PulseAudio, or
//!    PipeWire through `pipewire-pulse` (Debian 12's GNOME default). It is
//!    an audio base sink (clock, latency, stream volume) and shares the
//!    device with other programs. On Debian 12 it ships in
//!    `gstreamer1.0-plugins-good`; `gstreamer1.0-pulseaudio` is only a
//!    transitional package depending on it.
//! 2. `pipewiresink` for PipeWire without the PulseAudio socket; after
//!    `pulsesink` because in PipeWire 0.3.65 it is a plain base sink (no
//!    audio clock, no latency reporting).
//! 3. `alsasink` for machines without a sound server (kiosks, minimal
//!    installs); it opens ALSA's `default` PCM, possibly exclusively.
//!
//! Headless ([`OutputMode::Headless`](crate::OutputMode::Headless),
//! and Verify with the `verify` feature) never looks at the
//! environment: `fakesink` (`libgstreamer1.0-0`) and, for verification,
//! `appsink` (`gstreamer1.0-plugins-base`), see [`HEADLESS_SINKS`].
//!
//! Never listed, so never chosen: `autovideosink`/`autoaudiosink`
//! (ranking), `kmssink`, `fbdevsink`, `dfbvideosink` (they take the console
//! or the DRM device, or crash), `aasink`/`cacasink` (text art),
//! `glimagesink` (a GL stack for no gain: the pipeline converts on the
//! CPU), `jackaudiosink` and the OSS sinks.

use std::fmt;

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::kind::MediaKind;

mod env;

pub use env::Environment;

/// Where a sink renders, and what must be present for it to be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// An X server (`DISPLAY`).
    X11,
    /// A Wayland compositor (`WAYLAND_DISPLAY`).
    Wayland,
    /// A PulseAudio server, or PipeWire's PulseAudio socket.
    PulseAudio,
    /// A PipeWire server.
    PipeWire,
    /// An ALSA playback device.
    Alsa,
    /// No device: the headless output modes.
    Headless,
}

/// One entry of a sink list: a GStreamer factory and the Debian package
/// that installs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The element factory.
    pub factory: &'static str,
    /// The Debian 12 package holding the plugin (`dpkg -S` of the `.so`).
    pub package: &'static str,
    /// The environment it needs.
    pub place: Place,
}

const fn c(factory: &'static str, package: &'static str, place: Place) -> Candidate {
    Candidate {
        factory,
        package,
        place,
    }
}

/// The video sinks of Auto mode, in the order they are tried.
pub const VIDEO_SINKS: &[Candidate] = &[
    c("ximagesink", "gstreamer1.0-x", Place::X11),
    c("xvimagesink", "gstreamer1.0-x", Place::X11),
    c("waylandsink", "gstreamer1.0-plugins-bad", Place::Wayland),
];

/// The audio sinks of Auto mode and calls, in the order they are tried.
pub const AUDIO_SINKS: &[Candidate] = &[
    c("pulsesink", "gstreamer1.0-plugins-good", Place::PulseAudio),
    c("pipewiresink", "gstreamer1.0-pipewire", Place::PipeWire),
    c("alsasink", "gstreamer1.0-alsa", Place::Alsa),
];

/// The sinks of the headless modes (Headless: `fakesink`; Verify:
/// `appsink`; calls in both: `fakesink`), for completeness: they need no
/// environment and are made directly.
pub const HEADLESS_SINKS: &[Candidate] = &[
    c("fakesink", "libgstreamer1.0-0", Place::Headless),
    c("appsink", "gstreamer1.0-plugins-base", Place::Headless),
];

/// Every sink the engine may create, with its package.
pub fn all() -> impl Iterator<Item = &'static Candidate> {
    VIDEO_SINKS.iter().chain(AUDIO_SINKS).chain(HEADLESS_SINKS)
}

/// What trying one candidate gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not tried: its environment is absent (the reason).
    Skipped(&'static str),
    /// Its factory is not in the registry.
    NotInstalled,
    /// It did not reach READY (the element's error).
    Failed(String),
}

/// One candidate that was not chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The candidate.
    pub candidate: Candidate,
    /// What happened.
    pub outcome: Outcome,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Candidate {
            factory, package, ..
        } = self.candidate;
        write!(f, "{factory} (package {package}) ")?;
        match &self.outcome {
            Outcome::Skipped(why) => write!(f, "not tried: {why}"),
            Outcome::NotInstalled => write!(f, "not installed"),
            Outcome::Failed(why) => write!(f, "cannot start: {why}"),
        }
    }
}

/// No candidate of a list was usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no usable {} sink for {environment}: {}{}",
    kind_name(*.kind),
    list(.attempts),
    install_hint(.attempts)
)]
pub struct NoSink {
    /// Video or audio.
    pub kind: MediaKind,
    /// The environment found (e.g. `X11 (DISPLAY=:99)`).
    pub environment: String,
    /// Every candidate of the list, in order.
    pub attempts: Vec<Attempt>,
}

impl NoSink {
    /// The packages whose factory was needed but not installed.
    pub fn missing_packages(&self) -> Vec<&'static str> {
        not_installed(&self.attempts)
    }
}

fn not_installed(attempts: &[Attempt]) -> Vec<&'static str> {
    let mut packages: Vec<&'static str> = Vec::new();
    for a in attempts {
        if a.outcome == Outcome::NotInstalled && !packages.contains(&a.candidate.package) {
            packages.push(a.candidate.package);
        }
    }
    packages
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
    }
}

fn list(attempts: &[Attempt]) -> String {
    let parts: Vec<String> = attempts.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

fn install_hint(attempts: &[Attempt]) -> String {
    let packages = not_installed(attempts);
    if packages.is_empty() {
        String::new()
    } else {
        format!(" (apt-get install {})", packages.join(" "))
    }
}

/// How candidates are tried; the engine uses GStreamer ([`Registry`]),
/// the unit tests a table.
trait Probe {
    type Element;
    /// Whether the factory is in the registry.
    fn installed(&self, factory: &str) -> bool;
    /// Makes the element for `env` and takes it to READY and back to NULL.
    fn ready(&self, candidate: &Candidate, env: &Environment) -> Result<Self::Element, String>;
}

/// Tries the candidates of `kind`'s list in order.
fn choose<P: Probe>(
    kind: MediaKind,
    env: &Environment,
    probe: &P,
) -> Result<(P::Element, &'static Candidate), NoSink> {
    let list = match kind {
        MediaKind::Video => VIDEO_SINKS,
        MediaKind::Audio => AUDIO_SINKS,
    };
    let mut attempts = Vec::new();
    for candidate in list {
        let outcome = if let Err(why) = env.check(candidate.place) {
            Outcome::Skipped(why)
        } else if !probe.installed(candidate.factory) {
            Outcome::NotInstalled
        } else {
            match probe.ready(candidate, env) {
                Ok(element) => return Ok((element, candidate)),
                Err(why) => Outcome::Failed(why),
            }
        };
        attempts.push(Attempt {
            candidate: *candidate,
            outcome,
        });
    }
    Err(NoSink {
        kind,
        environment: env.describe(kind),
        attempts,
    })
}

/// The GStreamer registry and real state changes.
struct Registry;

impl Probe for Registry {
    type Element = gst::Element;

    fn installed(&self, factory: &str) -> bool {
        gst::ElementFactory::find(factory).is_some()
    }

    fn ready(&self, candidate: &Candidate, env: &Environment) -> Result<gst::Element, String> {
        let element = gst::ElementFactory::make(candidate.factory)
            .build()
            .map_err(|e| e.to_string())?;
        // The display the environment names, rather than the sink's own
        // reading of the variable (`display` of the X and Wayland sinks).
        let display = match candidate.place {
            Place::X11 => env.x11.as_deref(),
            Place::Wayland => env.wayland.as_deref(),
            _ => None,
        };
        if let Some(d) = display
            && element.find_property("display").is_some()
        {
            element.set_property("display", d);
        }
        // An element without a parent has no bus: lend it one to read why
        // it failed.
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        let result = element.set_state(gst::State::Ready);
        let _ = element.set_state(gst::State::Null);
        element.set_bus(None);
        match result {
            Ok(_) => Ok(element),
            Err(_) => Err(bus
                .pop_filtered(&[gst::MessageType::Error])
                .and_then(|m| match m.view() {
                    gst::MessageView::Error(e) => Some(error_text(e)),
                    _ => None,
                })
                .unwrap_or_else(|| "state change to READY failed".into())),
        }
    }
}

/// The error and the last line of its debug text (which names the cause,
/// e.g. "Could not open display").
fn error_text(e: &gst::message::Error) -> String {
    let debug = e.debug();
    match debug.as_deref().and_then(|d| d.lines().last()) {
        Some(last) if !last.is_empty() => format!("{}: {last}", e.error()),
        _ => e.error().to_string(),
    }
}

/// A sink chosen from a list, in the NULL state.
#[derive(Debug, Clone)]
pub(crate) struct Chosen {
    pub(crate) element: gst::Element,
    pub(crate) place: Place,
}

/// The first usable sink of `kind`'s list in `env`, in the NULL state, and
/// its list entry. GStreamer must be initialised.
pub fn choose_in(
    kind: MediaKind,
    env: &Environment,
) -> Result<(gst::Element, &'static Candidate), NoSink> {
    choose(kind, env, &Registry)
}

/// The first usable sink of `kind`'s list in this process's environment.
pub(crate) fn choose_sink(kind: MediaKind) -> Result<Chosen, NoSink> {
    let env = Environment::from_env();
    let (element, candidate) = choose_in(kind, &env)?;
    log::info!(
        "{} sink: {} ({})",
        kind_name(kind),
        candidate.factory,
        env.describe(kind)
    );
    Ok(Chosen {
        element,
        place: candidate.place,
    })
}

/// Whether the overlay windows are worth creating: `DISPLAY` is set and an
/// X11 sink is installed.
pub(crate) fn x11_sink_possible() -> bool {
    Environment::from_env().x11.is_some()
        && VIDEO_SINKS
            .iter()
            .any(|c| c.place == Place::X11 && gst::ElementFactory::find(c.factory).is_some())
}

#[cfg(test)]
mod tests;

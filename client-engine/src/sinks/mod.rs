//! The one place where the engine picks a real (audio) sink.
//!
//! The engine shows no video itself: in Auto mode decoded video goes to
//! the integrator that draws it (`EngineConfig::video_output`, the viewer)
//! or to `fakesink` (see the crate's `output` module), so only audio has a
//! device to find.
//!
//! The engine never autoplugs a sink (`autovideosink`, `autoaudiosink`,
//! `playbin`): ranking picks whatever plugin is installed with the highest
//! rank that opens (for video it once picked `dfbvideosink`, which crashed
//! the process with SIGSEGV). Instead each audio environment has an
//! explicit, ordered list ([`AUDIO_SINKS`]); a
//! candidate is tried only when its environment is present, and it is
//! chosen only if its factory exists and the element reaches READY for
//! real (audio sinks open their server or device there). When none is
//! usable the caller gets a [`NoSink`] error that names the environment,
//! every candidate with what happened to it, and the Debian packages to
//! install.
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
//! and Verify with the `verify` feature) and Auto-mode video never look at
//! the environment: `fakesink` (`libgstreamer1.0-0`) and `appsink`
//! (`gstreamer1.0-plugins-base`: verification, the integrator's pictures),
//! see [`HEADLESS_SINKS`].
//!
//! Never listed, so never chosen: `autoaudiosink` (ranking),
//! `jackaudiosink` and the OSS sinks; and no video sink at all
//! (`autovideosink`, the X11 and Wayland sinks, `kmssink`, `fbdevsink`,
//! `dfbvideosink`, `glimagesink`...): the engine opens no window.

use std::fmt;

use gstreamer as gst;
use gstreamer::prelude::*;

mod env;

pub use env::Environment;

/// Where a sink renders, and what must be present for it to be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
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

/// The audio sinks of Auto mode and calls, in the order they are tried.
pub const AUDIO_SINKS: &[Candidate] = &[
    c("pulsesink", "gstreamer1.0-plugins-good", Place::PulseAudio),
    c("pipewiresink", "gstreamer1.0-pipewire", Place::PipeWire),
    c("alsasink", "gstreamer1.0-alsa", Place::Alsa),
];

/// The sinks that need no environment and are made directly, for
/// completeness: `fakesink` (Headless, Auto-mode video without an
/// integrator, call video, calls in the headless modes) and `appsink`
/// (Verify; the integrator's pictures, see `frames`).
pub const HEADLESS_SINKS: &[Candidate] = &[
    c("fakesink", "libgstreamer1.0-0", Place::Headless),
    c("appsink", "gstreamer1.0-plugins-base", Place::Headless),
];

/// Every sink the engine may create, with its package.
pub fn all() -> impl Iterator<Item = &'static Candidate> {
    AUDIO_SINKS.iter().chain(HEADLESS_SINKS)
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

/// No candidate of the audio list was usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no usable audio sink for {environment}: {}{}",
    list(.attempts),
    install_hint(.attempts)
)]
pub struct NoSink {
    /// The environment found (e.g. `ALSA (/dev/snd/pcmC0D0p)`).
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

/// Tries the candidates of the audio list in order.
fn choose<P: Probe>(
    env: &Environment,
    probe: &P,
) -> Result<(P::Element, &'static Candidate), NoSink> {
    let mut attempts = Vec::new();
    for candidate in AUDIO_SINKS {
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
        environment: env.describe(),
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

    fn ready(&self, candidate: &Candidate, _: &Environment) -> Result<gst::Element, String> {
        let element = gst::ElementFactory::make(candidate.factory)
            .build()
            .map_err(|e| e.to_string())?;
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

/// The first usable sink of the audio list in `env`, in the NULL state,
/// and its list entry. GStreamer must be initialised.
pub fn choose_in(env: &Environment) -> Result<(gst::Element, &'static Candidate), NoSink> {
    choose(env, &Registry)
}

/// The first usable audio sink in this process's environment.
pub(crate) fn choose_audio_sink() -> Result<gst::Element, NoSink> {
    let env = Environment::from_env();
    let (element, candidate) = choose_in(&env)?;
    log::info!("audio sink: {} ({})", candidate.factory, env.describe());
    Ok(element)
}

#[cfg(test)]
mod tests;

//! The choice logic with an injected registry: it runs anywhere.

use std::collections::HashMap;

use super::*;

/// Factories that no environment may ever get: the engine opens no
/// window, so no video sink at all.
const FORBIDDEN: &[&str] = &[
    "ximagesink",
    "xvimagesink",
    "waylandsink",
    "dfbvideosink",
    "kmssink",
    "fbdevsink",
    "aasink",
    "cacasink",
    "autovideosink",
    "autoaudiosink",
];

/// A registry given as a table: absent = not installed, `Err` = fails
/// READY with that text. The element is the factory's name.
struct Table(HashMap<&'static str, Result<(), String>>);

impl Table {
    fn new(entries: &[(&'static str, bool)]) -> Table {
        Table(
            entries
                .iter()
                .map(|&(f, ok)| {
                    (
                        f,
                        if ok {
                            Ok(())
                        } else {
                            Err(format!("{f} refused"))
                        },
                    )
                })
                .collect(),
        )
    }
}

impl Probe for Table {
    type Element = &'static str;
    fn installed(&self, factory: &str) -> bool {
        self.0.contains_key(factory)
    }
    fn ready(&self, c: &Candidate, _: &Environment) -> Result<&'static str, String> {
        let (name, r) = self.0.get_key_value(c.factory).expect("installed");
        r.clone().map(|()| *name)
    }
}

fn chosen(env: &Environment, t: &Table) -> Result<&'static str, String> {
    choose(env, t).map(|(e, _)| e).map_err(|e| e.to_string())
}

fn alsa() -> Environment {
    Environment {
        alsa: Some("/dev/snd/pcmC0D0p".into()),
        ..Environment::default()
    }
}

#[test]
fn missing_plugin_names_the_package() {
    // A sound server and a device, but only sinks found by ranking.
    let env = Environment {
        pulseaudio: Some("/run/user/1000/pulse/native".into()),
        ..alsa()
    };
    let t = Table::new(&[("autoaudiosink", true), ("jackaudiosink", true)]);
    let err = choose(&env, &t).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no usable audio sink for PulseAudio (/run/user/1000/pulse/native) and \
         ALSA (/dev/snd/pcmC0D0p): \
         pulsesink (package gstreamer1.0-plugins-good) not installed; \
         pipewiresink (package gstreamer1.0-pipewire) not tried: \
         no PipeWire server (PIPEWIRE_REMOTE unset, no $XDG_RUNTIME_DIR/pipewire-0); \
         alsasink (package gstreamer1.0-alsa) not installed \
         (apt-get install gstreamer1.0-plugins-good gstreamer1.0-alsa)"
    );
    assert_eq!(
        err.missing_packages(),
        ["gstreamer1.0-plugins-good", "gstreamer1.0-alsa"]
    );
}

#[test]
fn a_sink_failing_ready_is_reported_with_its_reason() {
    let t = Table::new(&[("alsasink", false)]);
    let err = chosen(&alsa(), &t).unwrap_err();
    assert!(
        err.ends_with("alsasink (package gstreamer1.0-alsa) cannot start: alsasink refused"),
        "{err}"
    );
    assert!(!err.contains("apt-get"), "{err}");
}

#[test]
fn no_sound_device_is_an_error_whatever_is_installed() {
    let mut entries: Vec<(&str, bool)> = all().map(|c| (c.factory, true)).collect();
    entries.extend(FORBIDDEN.iter().map(|&f| (f, true)));
    let err = chosen(&Environment::default(), &Table::new(&entries));
    assert_eq!(
        err,
        Err(
            "no usable audio sink for a machine without a sound server or device: \
             pulsesink (package gstreamer1.0-plugins-good) not tried: \
             no PulseAudio server (PULSE_SERVER unset, no $XDG_RUNTIME_DIR/pulse/native); \
             pipewiresink (package gstreamer1.0-pipewire) not tried: \
             no PipeWire server (PIPEWIRE_REMOTE unset, no $XDG_RUNTIME_DIR/pipewire-0); \
             alsasink (package gstreamer1.0-alsa) not tried: no ALSA playback device in /dev/snd"
                .into()
        )
    );
}

#[test]
fn audio_order_pulse_pipewire_alsa() {
    let env = Environment {
        pulseaudio: Some("/run/user/1000/pulse/native".into()),
        pipewire: Some("/run/user/1000/pipewire-0".into()),
        alsa: Some("/dev/snd/pcmC0D0p".into()),
    };
    let all = Table::new(&[
        ("pulsesink", true),
        ("pipewiresink", true),
        ("alsasink", true),
    ]);
    assert_eq!(chosen(&env, &all), Ok("pulsesink"));
    let no_pulse = Table::new(&[
        ("pulsesink", false),
        ("pipewiresink", true),
        ("alsasink", true),
    ]);
    assert_eq!(chosen(&env, &no_pulse), Ok("pipewiresink"));
    let alsa_only = Environment {
        alsa: env.alsa.clone(),
        ..Environment::default()
    };
    assert_eq!(chosen(&alsa_only, &all), Ok("alsasink"));
    let err = chosen(&alsa_only, &Table::new(&[])).unwrap_err();
    assert!(
        err.starts_with("no usable audio sink for ALSA (/dev/snd/pcmC0D0p): pulsesink"),
        "{err}"
    );
    assert!(
        err.ends_with("(apt-get install gstreamer1.0-alsa)"),
        "{err}"
    );
    let none = chosen(&Environment::default(), &all).unwrap_err();
    assert!(
        none.starts_with("no usable audio sink for a machine without a sound server or device"),
        "{none}"
    );
}

/// Every environment, every subset of candidates failing READY, with
/// the forbidden sinks installed and working: only listed sinks are ever
/// chosen.
#[test]
fn ranking_sinks_are_never_chosen() {
    for c in all() {
        assert!(!FORBIDDEN.contains(&c.factory), "{} listed", c.factory);
    }
    let listed: Vec<&str> = AUDIO_SINKS.iter().map(|c| c.factory).collect();
    for env_bits in 0u32..8 {
        let on = |bit: u32, v: &str| (env_bits & (1 << bit) != 0).then(|| v.to_string());
        let env = Environment {
            pulseaudio: on(0, "PULSE_SERVER=x"),
            pipewire: on(1, "PIPEWIRE_REMOTE=x"),
            alsa: on(2, "/dev/snd/pcmC0D0p"),
        };
        for fail_bits in 0u32..(1 << listed.len()) {
            let mut entries: Vec<(&str, bool)> = listed
                .iter()
                .enumerate()
                .map(|(i, &f)| (f, fail_bits & (1 << i) == 0))
                .collect();
            entries.extend(FORBIDDEN.iter().map(|&f| (f, true)));
            let t = Table::new(&entries);
            match choose(&env, &t) {
                Ok((e, c)) => {
                    assert!(listed.contains(&e), "{e} for {env:?}");
                    assert!(env.check(c.place).is_ok(), "{e} without its environment");
                }
                Err(err) => assert_eq!(err.attempts.len(), listed.len()),
            }
        }
    }
}

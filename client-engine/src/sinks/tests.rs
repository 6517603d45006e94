//! The choice logic with an injected registry: it runs anywhere.

use std::collections::HashMap;

use super::*;

/// Factories that no environment may ever get.
const FORBIDDEN: &[&str] = &[
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

fn x11(display: &str) -> Environment {
    Environment {
        x11: Some(display.into()),
        ..Environment::default()
    }
}

fn chosen(kind: MediaKind, env: &Environment, t: &Table) -> Result<&'static str, String> {
    choose(kind, env, t)
        .map(|(e, _)| e)
        .map_err(|e| e.to_string())
}

#[test]
fn x11_takes_ximagesink_then_xvimagesink() {
    let env = x11(":99");
    let both = Table::new(&[("ximagesink", true), ("xvimagesink", true)]);
    assert_eq!(chosen(MediaKind::Video, &env, &both), Ok("ximagesink"));
    let xv_only = Table::new(&[("ximagesink", false), ("xvimagesink", true)]);
    assert_eq!(chosen(MediaKind::Video, &env, &xv_only), Ok("xvimagesink"));
}

#[test]
fn missing_x_plugin_names_the_package() {
    // What a --no-install-recommends machine without gstreamer1.0-x
    // has: only bad plugins, among them the ones autoplugging found.
    let t = Table::new(&[
        ("waylandsink", true),
        ("dfbvideosink", true),
        ("kmssink", true),
        ("autovideosink", true),
    ]);
    let err = choose(MediaKind::Video, &x11(":99"), &t).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no usable video sink for X11 (DISPLAY=:99): \
         ximagesink (package gstreamer1.0-x) not installed; \
         xvimagesink (package gstreamer1.0-x) not installed; \
         waylandsink (package gstreamer1.0-plugins-bad) not tried: WAYLAND_DISPLAY is not set \
         (apt-get install gstreamer1.0-x)"
    );
    assert_eq!(err.missing_packages(), ["gstreamer1.0-x"]);
}

#[test]
fn a_sink_failing_ready_is_reported_with_its_reason() {
    let t = Table::new(&[("ximagesink", false), ("xvimagesink", false)]);
    let err = chosen(MediaKind::Video, &x11(":5"), &t).unwrap_err();
    assert!(
        err.contains("ximagesink (package gstreamer1.0-x) cannot start: ximagesink refused;"),
        "{err}"
    );
    assert!(!err.contains("apt-get"), "{err}");
}

#[test]
fn wayland_after_x11() {
    let all = Table::new(&[
        ("ximagesink", true),
        ("xvimagesink", true),
        ("waylandsink", true),
    ]);
    let wayland = Environment {
        wayland: Some("wayland-0".into()),
        ..Environment::default()
    };
    assert_eq!(chosen(MediaKind::Video, &wayland, &all), Ok("waylandsink"));
    let xwayland = Environment {
        x11: Some(":0".into()),
        ..wayland.clone()
    };
    assert_eq!(chosen(MediaKind::Video, &xwayland, &all), Ok("ximagesink"));
    let no_x = Table::new(&[("waylandsink", true)]);
    assert_eq!(
        chosen(MediaKind::Video, &xwayland, &no_x),
        Ok("waylandsink")
    );
}

#[test]
fn no_display_is_an_error_whatever_is_installed() {
    let mut entries: Vec<(&str, bool)> = all().map(|c| (c.factory, true)).collect();
    entries.extend(FORBIDDEN.iter().map(|&f| (f, true)));
    let err = chosen(
        MediaKind::Video,
        &Environment::default(),
        &Table::new(&entries),
    );
    assert_eq!(
        err,
        Err("no usable video sink for a machine without a display: \
             ximagesink (package gstreamer1.0-x) not tried: DISPLAY is not set; \
             xvimagesink (package gstreamer1.0-x) not tried: DISPLAY is not set; \
             waylandsink (package gstreamer1.0-plugins-bad) not tried: WAYLAND_DISPLAY is not set"
            .into())
    );
}

#[test]
fn audio_order_pulse_pipewire_alsa() {
    let env = Environment {
        pulseaudio: Some("/run/user/1000/pulse/native".into()),
        pipewire: Some("/run/user/1000/pipewire-0".into()),
        alsa: Some("/dev/snd/pcmC0D0p".into()),
        ..Environment::default()
    };
    let all = Table::new(&[
        ("pulsesink", true),
        ("pipewiresink", true),
        ("alsasink", true),
    ]);
    assert_eq!(chosen(MediaKind::Audio, &env, &all), Ok("pulsesink"));
    let no_pulse = Table::new(&[
        ("pulsesink", false),
        ("pipewiresink", true),
        ("alsasink", true),
    ]);
    assert_eq!(
        chosen(MediaKind::Audio, &env, &no_pulse),
        Ok("pipewiresink")
    );
    let alsa_only = Environment {
        alsa: env.alsa.clone(),
        ..Environment::default()
    };
    assert_eq!(chosen(MediaKind::Audio, &alsa_only, &all), Ok("alsasink"));
    let err = chosen(MediaKind::Audio, &alsa_only, &Table::new(&[])).unwrap_err();
    assert!(
        err.starts_with("no usable audio sink for ALSA (/dev/snd/pcmC0D0p): pulsesink"),
        "{err}"
    );
    assert!(
        err.ends_with("(apt-get install gstreamer1.0-alsa)"),
        "{err}"
    );
    let none = chosen(MediaKind::Audio, &Environment::default(), &all).unwrap_err();
    assert!(
        none.starts_with("no usable audio sink for a machine without a sound server or device"),
        "{none}"
    );
}

/// Every environment, every subset of candidates failing READY, with
/// the forbidden sinks installed and working: only listed sinks of the
/// right kind are ever chosen.
#[test]
fn ranking_sinks_are_never_chosen() {
    for c in all() {
        assert!(!FORBIDDEN.contains(&c.factory), "{} listed", c.factory);
    }
    let listed: Vec<&str> = VIDEO_SINKS
        .iter()
        .chain(AUDIO_SINKS)
        .map(|c| c.factory)
        .collect();
    for env_bits in 0u32..32 {
        let on = |bit: u32, v: &str| (env_bits & (1 << bit) != 0).then(|| v.to_string());
        let env = Environment {
            x11: on(0, ":0"),
            wayland: on(1, "wayland-0"),
            pulseaudio: on(2, "PULSE_SERVER=x"),
            pipewire: on(3, "PIPEWIRE_REMOTE=x"),
            alsa: on(4, "/dev/snd/pcmC0D0p"),
        };
        for fail_bits in 0u32..(1 << listed.len()) {
            let mut entries: Vec<(&str, bool)> = listed
                .iter()
                .enumerate()
                .map(|(i, &f)| (f, fail_bits & (1 << i) == 0))
                .collect();
            entries.extend(FORBIDDEN.iter().map(|&f| (f, true)));
            let t = Table::new(&entries);
            for (kind, list) in [
                (MediaKind::Video, VIDEO_SINKS),
                (MediaKind::Audio, AUDIO_SINKS),
            ] {
                match choose(kind, &env, &t) {
                    Ok((e, c)) => {
                        assert!(list.iter().any(|l| l.factory == e), "{e} for {env:?}");
                        assert!(env.check(c.place).is_ok(), "{e} without its environment");
                    }
                    Err(err) => assert_eq!(err.attempts.len(), list.len()),
                }
            }
        }
    }
}

//! What the machine offers the audio sinks: sound server sockets and ALSA
//! device nodes. Read once per choice; detection takes
//! its inputs as functions so that its test needs no real machine.

use std::path::{Path, PathBuf};

use super::Place;

/// What the machine offers the audio sinks, read once per choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// How the PulseAudio server was found (`PULSE_SERVER=…` or a socket).
    pub pulseaudio: Option<String>,
    /// How the PipeWire server was found (`PIPEWIRE_REMOTE=…` or a socket).
    pub pipewire: Option<String>,
    /// The first ALSA playback device node.
    pub alsa: Option<String>,
}

impl Environment {
    /// This process's environment variables and device nodes.
    pub fn from_env() -> Environment {
        let snd = std::fs::read_dir("/dev/snd")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok());
        Environment::detect(
            |k| std::env::var(k).ok(),
            |p| p.exists(),
            Path::new("/dev/snd"),
            snd,
        )
    }

    /// `var` reads a variable, `exists` tests a path, `snd` lists the
    /// names in the directory `snd_dir`.
    fn detect(
        var: impl Fn(&str) -> Option<String>,
        exists: impl Fn(&Path) -> bool,
        snd_dir: &Path,
        snd: impl IntoIterator<Item = String>,
    ) -> Environment {
        let var = |k: &str| var(k).filter(|v| !v.is_empty());
        let runtime = var("XDG_RUNTIME_DIR").map(PathBuf::from);
        let socket = |p: Option<PathBuf>| p.filter(|p| exists(p)).map(|p| p.display().to_string());
        let pulseaudio = var("PULSE_SERVER")
            .map(|s| format!("PULSE_SERVER={s}"))
            .or_else(|| socket(runtime.as_ref().map(|r| r.join("pulse/native"))))
            .or_else(|| socket(Some(PathBuf::from("/run/pulse/native"))));
        let pipewire = var("PIPEWIRE_REMOTE")
            .map(|s| format!("PIPEWIRE_REMOTE={s}"))
            .or_else(|| socket(runtime.as_ref().map(|r| r.join("pipewire-0"))));
        let mut pcms: Vec<String> = snd.into_iter().filter(|n| is_playback_pcm(n)).collect();
        pcms.sort();
        Environment {
            pulseaudio,
            pipewire,
            alsa: pcms.first().map(|n| snd_dir.join(n).display().to_string()),
        }
    }

    /// Whether `place` is present: `Ok`, or why not.
    pub(super) fn check(&self, place: Place) -> Result<(), &'static str> {
        let (found, missing) = match place {
            Place::PulseAudio => (
                &self.pulseaudio,
                "no PulseAudio server (PULSE_SERVER unset, no $XDG_RUNTIME_DIR/pulse/native)",
            ),
            Place::PipeWire => (
                &self.pipewire,
                "no PipeWire server (PIPEWIRE_REMOTE unset, no $XDG_RUNTIME_DIR/pipewire-0)",
            ),
            Place::Alsa => (&self.alsa, "no ALSA playback device in /dev/snd"),
            Place::Headless => return Ok(()),
        };
        found.as_ref().map(|_| ()).ok_or(missing)
    }

    /// The environment as the error message names it.
    pub(super) fn describe(&self) -> String {
        let named = [
            ("PulseAudio (", &self.pulseaudio),
            ("PipeWire (", &self.pipewire),
            ("ALSA (", &self.alsa),
        ];
        let present: Vec<String> = named
            .iter()
            .filter_map(|(name, v)| v.as_ref().map(|v| format!("{name}{v})")))
            .collect();
        if present.is_empty() {
            "a machine without a sound server or device".into()
        } else {
            present.join(" and ")
        }
    }
}

/// `pcmC<card>D<device>p`: an ALSA playback PCM node.
fn is_playback_pcm(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("pcmC").and_then(|r| r.strip_suffix('p')) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    rest.split_once('D')
        .is_some_and(|(card, dev)| digits(card) && digits(dev))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn environment_detection() {
        let vars: HashMap<&str, &str> = [
            // An empty variable names no server: the socket is found.
            ("PULSE_SERVER", ""),
            ("XDG_RUNTIME_DIR", "/run/user/7"),
        ]
        .into();
        let sockets = ["/run/user/7/pulse/native", "/run/user/7/pipewire-0"];
        let snd = [
            "controlC0",
            "pcmC0D0c",
            "pcmC1D3p",
            "pcmC0D7p",
            "seq",
            "pcmCD0p",
        ];
        let env = Environment::detect(
            |k| vars.get(k).map(|v| v.to_string()),
            |p| sockets.iter().any(|s| Path::new(s) == p),
            Path::new("/dev/snd"),
            snd.iter().map(|s| s.to_string()),
        );
        assert_eq!(
            env,
            Environment {
                pulseaudio: Some("/run/user/7/pulse/native".into()),
                pipewire: Some("/run/user/7/pipewire-0".into()),
                alsa: Some("/dev/snd/pcmC0D7p".into()),
            }
        );
        // The variables win over the sockets; no socket, no server.
        let vars: HashMap<&str, &str> = [
            ("PULSE_SERVER", "tcp:host"),
            ("XDG_RUNTIME_DIR", "/run/user/7"),
        ]
        .into();
        let env = Environment::detect(
            |k| vars.get(k).map(|v| v.to_string()),
            |_| false,
            Path::new("/dev/snd"),
            ["pcmC0D0c".to_string()],
        );
        assert_eq!(env.pulseaudio.as_deref(), Some("PULSE_SERVER=tcp:host"));
        assert_eq!((env.pipewire, env.alsa), (None, None));
    }
}

//! Playback commands: from the command line (`--at SECONDS:COMMAND`, run
//! when the demuxer reaches that media time, so scripted runs are
//! repeatable) and from standard input (one per line, run when read).

use std::io::BufRead;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use mediaredir_proto::control::{Geometry, Rect};

/// A playback command.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// Pause the presentation.
    Pause,
    /// Play it again.
    Play,
    /// Flush and go on from the keyframe at or before this media time.
    Seek(Duration),
    /// Volume of the audio streams (1.0 unity).
    Volume(f64),
    /// Mute or unmute the audio streams.
    Mute(bool),
    /// Playback rate.
    Rate(f64),
    /// Print the position and the client's statistics now.
    Status,
    /// Wait this long (wall clock) before going on (scripted pauses).
    Sleep(Duration),
    /// Stop playing (clean exit).
    Quit,
    /// Where the client shows the video (`PRES_SET_GEOMETRY`).
    Geometry(Geometry),
}

fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not seconds"))?;
    Duration::try_from_secs_f64(v).map_err(|_| format!("{s:?} is not a time"))
}

fn number(s: &str, what: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{s:?} is not a {what}"))
}

impl std::str::FromStr for Command {
    type Err = String;

    /// `pause`, `play`, `seek=SECONDS`, `volume=GAIN`, `mute`, `unmute`,
    /// `rate=RATE`, `status`, `sleep=SECONDS`, `quit`, `geometry=SPEC`
    /// (see [`geometry`]) (a space may replace `=`).
    fn from_str(s: &str) -> Result<Command, String> {
        let s = s.trim();
        let (word, arg) = match s.split_once(['=', ' ']) {
            Some((w, a)) => (w, Some(a)),
            None => (s, None),
        };
        let need = |arg: Option<&'_ str>| -> Result<String, String> {
            arg.map(str::to_owned)
                .ok_or_else(|| format!("{word} needs a value"))
        };
        Ok(match word.to_ascii_lowercase().as_str() {
            "pause" => Command::Pause,
            "play" | "resume" => Command::Play,
            "seek" => Command::Seek(seconds(&need(arg)?)?),
            "volume" => Command::Volume(number(&need(arg)?, "volume")?),
            "mute" => Command::Mute(true),
            "unmute" => Command::Mute(false),
            "rate" => {
                let rate = number(&need(arg)?, "rate")?;
                if rate == 0.0 {
                    return Err("rate must be above 0".into());
                }
                Command::Rate(rate)
            }
            "status" => Command::Status,
            "sleep" => Command::Sleep(seconds(&need(arg)?)?),
            "quit" | "stop" => Command::Quit,
            "geometry" => Command::Geometry(geometry(&need(arg)?)?),
            _ => return Err(format!("unknown command {s:?}")),
        })
    }
}

fn int<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a {what}"))
}

/// `X:Y:W:H` (W and H not negative).
fn rect(s: &str) -> Result<Rect, String> {
    let v: Vec<&str> = s.split(':').collect();
    let [x, y, w, h] = v.as_slice() else {
        return Err(format!("{s:?} is not X:Y:W:H"));
    };
    Ok(Rect::new(
        int(x, "coordinate")?,
        int(y, "coordinate")?,
        int(w, "width")?,
        int(h, "height")?,
    ))
}

/// `geometry=X:Y:W:H[,z=N][,display=N][,hidden][,colorkey][,source=X:Y:W:H][,clip=X:Y:W:H]...`:
/// the destination rectangle in guest display pixels, then options; each
/// `clip` adds a visible part of it (none: all of it visible); `colorkey`
/// sets the `COLORKEY` flag: whoever paints the guest's desktop (not
/// redir-play, which draws nothing) paints the rectangle in the key colour,
/// and the client shows the video only where it sees the key.
fn geometry(s: &str) -> Result<Geometry, String> {
    let mut items = s.split(',');
    let dest = rect(items.next().unwrap_or_default())?;
    let mut g = Geometry {
        display_id: 0,
        visible: true,
        color_key: false,
        z: 0,
        dest,
        source: Rect::default(),
        clip: Vec::new(),
    };
    for item in items {
        match item.trim().split_once('=') {
            Some(("z", v)) => g.z = int(v, "z")?,
            Some(("display", v)) => g.display_id = int(v, "display")?,
            Some(("source", v)) => g.source = rect(v)?,
            Some(("clip", v)) => g.clip.push(rect(v)?),
            None if item.trim() == "hidden" => g.visible = false,
            None if item.trim() == "colorkey" => g.color_key = true,
            _ => return Err(format!("geometry option {item:?} not understood")),
        }
    }
    Ok(g)
}

/// A scheduled command: run when the demuxer reaches media time `at`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scheduled {
    pub(crate) at: Duration,
    pub(crate) command: Command,
}

/// Parses `SECONDS:COMMAND`.
pub(crate) fn parse_scheduled(s: &str) -> Result<Scheduled, String> {
    let (at, command) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not SECONDS:COMMAND"))?;
    Ok(Scheduled {
        at: seconds(at)?,
        command: command.parse()?,
    })
}

/// Reads commands from standard input on a thread; bad lines are
/// reported and skipped. The channel closes at end of input.
pub(crate) fn stdin_commands() -> Receiver<Command> {
    let (tx, rx) = channel();
    let spawned = std::thread::Builder::new()
        .name("stdin-commands".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { return };
                if line.trim().is_empty() {
                    continue;
                }
                match line.parse::<Command>() {
                    Ok(c) => {
                        if tx.send(c).is_err() {
                            return;
                        }
                    }
                    Err(e) => eprintln!("redir-play: {e}"),
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("redir-play: no stdin commands: {e}");
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!("pause".parse(), Ok(Command::Pause));
        assert_eq!(" Play ".parse(), Ok(Command::Play));
        assert_eq!(
            "seek=1.5".parse(),
            Ok(Command::Seek(Duration::from_millis(1500)))
        );
        assert_eq!("seek 2".parse(), Ok(Command::Seek(Duration::from_secs(2))));
        assert_eq!("volume=0.5".parse(), Ok(Command::Volume(0.5)));
        assert_eq!("mute".parse(), Ok(Command::Mute(true)));
        assert_eq!("rate=2".parse(), Ok(Command::Rate(2.0)));
        assert!("rate=0".parse::<Command>().is_err());
        assert!("seek".parse::<Command>().is_err());
        assert!("volume=-1".parse::<Command>().is_err());
        assert!("dance".parse::<Command>().is_err());
    }

    #[test]
    fn geometry_parses() {
        let Ok(Command::Geometry(g)) =
            "geometry=100:100:320:240,z=2,clip=100:100:320:100,clip=1:2:3:4".parse()
        else {
            panic!("geometry did not parse");
        };
        assert_eq!(g.dest, Rect::new(100, 100, 320, 240));
        assert_eq!((g.z, g.visible, g.display_id), (2, true, 0));
        assert!(!g.color_key);
        assert_eq!(
            g.clip,
            vec![Rect::new(100, 100, 320, 100), Rect::new(1, 2, 3, 4)]
        );
        let Ok(Command::Geometry(g)) = "geometry=-5:0:10:10,hidden,display=1".parse() else {
            panic!("geometry did not parse");
        };
        assert_eq!((g.dest.x, g.visible, g.display_id), (-5, false, 1));
        let Ok(Command::Geometry(g)) = "geometry=0:0:10:10,colorkey".parse() else {
            panic!("geometry did not parse");
        };
        assert!(g.color_key && g.visible);
        assert!("geometry=0:0:10:10,colorkey=1".parse::<Command>().is_err());
        assert!("geometry=1:2:3".parse::<Command>().is_err());
        assert!("geometry=1:2:3:4,bogus".parse::<Command>().is_err());
        assert!(parse_scheduled("0:geometry=0:0:10:10,clip=1:1:2:2").is_ok());
    }

    #[test]
    fn scheduled_commands_parse() {
        assert_eq!(
            parse_scheduled("0.5:seek=0"),
            Ok(Scheduled {
                at: Duration::from_millis(500),
                command: Command::Seek(Duration::ZERO)
            })
        );
        assert!(parse_scheduled("pause").is_err());
        assert!(parse_scheduled("x:pause").is_err());
    }
}

//! Scripted steps of a call (`--at SECONDS:STEP`).

use std::time::Duration;

use mediaredir_player::MediaRedir;

/// A step of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send these DTMF digits (RFC 4733 events).
    Dtmf(Vec<u32>),
    /// Hold.
    Hold,
    /// Resume.
    Resume,
    /// Mute the microphone.
    Mute,
    /// Unmute it.
    Unmute,
}

/// RFC 4733 event of a DTMF character.
fn dtmf_event(c: char) -> Option<u32> {
    match c {
        '0'..='9' => c.to_digit(10),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(12 + u32::from(c) - u32::from('A')),
        _ => None,
    }
}

/// The character of an RFC 4733 event.
pub(crate) fn dtmf_char(event: u64) -> char {
    match event {
        0..=9 => char::from_digit(u32::try_from(event).unwrap_or(0), 10).unwrap_or('?'),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + u8::try_from(event - 12).unwrap_or(0)),
        _ => '?',
    }
}

/// Parses `SECONDS:STEP`.
pub(crate) fn parse_step(s: &str) -> Result<(Duration, Step), String> {
    let (at, step) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not SECONDS:STEP"))?;
    let at: f64 = at.parse().map_err(|_| format!("{at:?} is not seconds"))?;
    let at = Duration::try_from_secs_f64(at).map_err(|_| format!("{at} is not a time"))?;
    let step = match step.split_once('=') {
        Some(("dtmf", digits)) => {
            let events: Option<Vec<u32>> = digits.chars().map(dtmf_event).collect();
            match events {
                Some(e) if !e.is_empty() => Step::Dtmf(e),
                _ => return Err(format!("{digits:?} are not DTMF digits")),
            }
        }
        None if step == "hold" => Step::Hold,
        None if step == "resume" => Step::Resume,
        None if step == "mute" => Step::Mute,
        None if step == "unmute" => Step::Unmute,
        _ => return Err(format!("unknown step {step:?}")),
    };
    Ok((at, step))
}

/// Carries out `step`.
pub(crate) fn apply(redir: &mut MediaRedir, session: u32, step: &Step) -> anyhow::Result<()> {
    match step {
        Step::Dtmf(events) => {
            for &event in events {
                redir.call_dtmf(session, event, 160)?;
                // RFC 4733 tones are sent one after another.
                std::thread::sleep(Duration::from_millis(250));
            }
            eprintln!("redir-call: dtmf sent");
        }
        Step::Hold => {
            redir.call_hold(session, true)?;
            eprintln!("redir-call: on hold");
        }
        Step::Resume => {
            redir.call_hold(session, false)?;
            eprintln!("redir-call: resumed");
        }
        Step::Mute => redir.call_mute(session, 1, true)?,
        Step::Unmute => redir.call_mute(session, 1, false)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse() {
        assert_eq!(
            parse_step("1.5:dtmf=1*#A"),
            Ok((Duration::from_millis(1500), Step::Dtmf(vec![1, 10, 11, 12])))
        );
        assert_eq!(
            parse_step("3:hold"),
            Ok((Duration::from_secs(3), Step::Hold))
        );
        assert!(parse_step("3:dtmf=x").is_err());
        assert!(parse_step("hold").is_err());
        assert_eq!(dtmf_char(11), '#');
        assert_eq!(dtmf_char(13), 'B');
    }
}

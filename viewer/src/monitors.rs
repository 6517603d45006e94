//! The monitors of one Spice display channel, and which windows they get.
//!
//! A Linux guest on QXL puts all its monitors in one display channel: each
//! monitor is a rectangle of the channel's primary surface, announced in
//! the channel's `monitors` property (spice-gtk makes up one monitor, the
//! whole surface, for a channel whose server sends no monitors config).
//! As remote-viewer, the viewer gives each enabled monitor a window of its
//! own (spice-gtk's `SpiceDisplay` with its `monitor-id` shows only that
//! rectangle) and numbers the displays `channel_id + monitor_id`: the
//! `display_id` of a presentation (spec 7.14) selects that window, and its
//! `dest` is in that monitor's coordinates.
//!
//! Monitor 0 always has a window, from the moment the channel appears (it
//! is the channel's window, closed with the channel); the others come and
//! go with the guest's monitors config.

use std::collections::BTreeSet;

/// One monitor of a display channel: where it is in the channel's
/// primary surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Monitor {
    /// Its index in the channel (spice-gtk's `monitor-id`).
    pub id: u32,
    /// Left edge in the primary surface.
    pub x: u32,
    /// Top edge in the primary surface.
    pub y: u32,
    /// Width; 0 when the guest has the monitor off.
    pub width: u32,
    /// Height; 0 when the guest has the monitor off.
    pub height: u32,
}

impl Monitor {
    /// Whether the guest has the monitor on.
    pub fn enabled(&self) -> bool {
        self.width > 0 && self.height > 0
    }
}

/// The display number of monitor `monitor_id` of display channel
/// `channel_id`, as remote-viewer numbers its displays.
pub fn display_id(channel_id: i32, monitor_id: u32) -> u32 {
    u32::try_from(channel_id)
        .unwrap_or(0)
        .saturating_add(monitor_id)
}

/// The rectangle (x, y, width, height) of the primary surface of
/// `surface` size that monitor `monitor_id` shows: its monitor config,
/// cut to the surface; the whole surface for monitor 0 of a channel that
/// has announced no monitors yet; `None` for a monitor that is off or
/// unknown.
pub fn area(
    monitors: &[Monitor],
    monitor_id: u32,
    surface: (u32, u32),
) -> Option<(u32, u32, u32, u32)> {
    let Some(m) = monitors.iter().find(|m| m.id == monitor_id) else {
        return (monitors.is_empty() && monitor_id == 0).then_some((0, 0, surface.0, surface.1));
    };
    let width = m.width.min(surface.0.saturating_sub(m.x));
    let height = m.height.min(surface.1.saturating_sub(m.y));
    (width > 0 && height > 0).then_some((m.x, m.y, width, height))
}

/// The windows to open and to close when a channel whose monitors
/// `open` have windows announces `monitors`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Monitors that get a window.
    pub open: Vec<u32>,
    /// Monitors whose window goes.
    pub close: Vec<u32>,
}

/// See [`Changes`]: every enabled monitor has a window, and monitor 0
/// always (see the module documentation).
pub fn changes(open: &BTreeSet<u32>, monitors: &[Monitor]) -> Changes {
    let wanted: BTreeSet<u32> = monitors
        .iter()
        .filter(|m| m.enabled())
        .map(|m| m.id)
        .chain([0])
        .collect();
    Changes {
        open: wanted.difference(open).copied().collect(),
        close: open.difference(&wanted).copied().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(id: u32, x: u32, width: u32) -> Monitor {
        Monitor {
            id,
            x,
            y: 0,
            width,
            height: 600,
        }
    }

    #[test]
    fn displays_are_numbered_channel_plus_monitor() {
        assert_eq!(display_id(0, 0), 0);
        assert_eq!(display_id(0, 1), 1);
        assert_eq!(display_id(1, 0), 1);
        assert_eq!(display_id(2, 3), 5);
    }

    #[test]
    fn a_monitor_shows_its_rectangle_of_the_surface() {
        let two = [monitor(0, 0, 800), monitor(1, 800, 800)];
        assert_eq!(area(&two, 0, (1600, 600)), Some((0, 0, 800, 600)));
        assert_eq!(area(&two, 1, (1600, 600)), Some((800, 0, 800, 600)));
        // Cut to a surface smaller than the config says (a resize on the way).
        assert_eq!(area(&two, 1, (1200, 600)), Some((800, 0, 400, 600)));
        assert_eq!(area(&two, 1, (800, 600)), None);
        assert_eq!(area(&two, 2, (1600, 600)), None, "unknown");
        assert_eq!(area(&[monitor(0, 0, 0)], 0, (800, 600)), None, "off");
        // No monitors announced yet: monitor 0 is the whole surface.
        assert_eq!(area(&[], 0, (640, 480)), Some((0, 0, 640, 480)));
        assert_eq!(area(&[], 1, (640, 480)), None);
    }

    #[test]
    fn enabled_monitors_get_windows_and_monitor_0_always_has_one() {
        let none = BTreeSet::new();
        let only_0: BTreeSet<u32> = [0].into();
        let two = [monitor(0, 0, 800), monitor(1, 800, 800)];
        assert_eq!(
            changes(&none, &two),
            Changes {
                open: vec![0, 1],
                close: vec![]
            }
        );
        assert_eq!(
            changes(&only_0, &two),
            Changes {
                open: vec![1],
                close: vec![]
            }
        );
        let both: BTreeSet<u32> = [0, 1].into();
        assert_eq!(changes(&both, &two), Changes::default());
        // The guest turns monitor 1 off, or drops it from its config.
        let off = [monitor(0, 0, 800), monitor(1, 800, 0)];
        let closing = Changes {
            open: vec![],
            close: vec![1],
        };
        assert_eq!(changes(&both, &off), closing);
        assert_eq!(changes(&both, &two[..1]), closing);
        // Monitor 0 off or not announced: its window stays.
        assert_eq!(changes(&only_0, &[]), Changes::default());
        assert_eq!(changes(&only_0, &[monitor(0, 0, 0)]), Changes::default());
    }
}

//! One top-level window per guest display (a monitor of a display
//! channel, see [`monitors`](crate::monitors)), as remote-viewer has: a menu
//! bar (view, send key, USB devices) over a `GtkOverlay` whose main child is
//! spice-gtk's `SpiceDisplay` and whose one overlay child is the media
//! layer: a `GtkDrawingArea` that lets every input event through to the
//! display below (pointer and keyboard over the video reach the guest as
//! anywhere else) and draws the presentations of that display
//! ([`Compositor`]) through the same placement as the desktop.
//!
//! The media layer redraws when the [`Scene`] has moved on (checked on each
//! frame-clock tick, so never from the engine's threads) and when the guest
//! redraws its desktop (the colour key reads the desktop's pixels).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use gtk::prelude::*;
use gtk::{cairo, glib};
use spice_client_glib::{DisplayChannel, Session};

use crate::compose::Compositor;
use crate::layout::DisplayPlacement;
use crate::monitors;
use crate::options::Hotkey;
use crate::scene::Scene;
use crate::spice_gtk::{self, SpiceDisplay};

/// GDK key values (gdk/gdkkeysyms.h).
mod key {
    pub(super) const CONTROL_L: u32 = 0xffe3;
    pub(super) const ALT_L: u32 = 0xffe9;
    pub(super) const DELETE: u32 = 0xffff;
    pub(super) const BACKSPACE: u32 = 0xff08;
    pub(super) const PRINT: u32 = 0xff61;
    pub(super) const F1: u32 = 0xffbe;
}

/// Zoom steps, as remote-viewer's.
const ZOOM_STEPS: &[u32] = &[10, 25, 50, 75, 100, 125, 150, 200, 300, 400];

/// What every window shares.
pub struct Shared {
    /// The desktop's session.
    pub session: Session,
    /// The media engine's presentations.
    pub scene: Arc<Scene>,
    /// The title (`--title`, the `.vv` file's, or the URI).
    pub title: String,
    /// Current zoom, in percent.
    pub zoom: Cell<u32>,
    /// Hotkeys as GTK accelerators.
    pub hotkeys: Vec<(Hotkey, String)>,
    /// Resize the guest with the window where the guest agrees.
    pub resize_guest: bool,
    /// Draw a border round redirected video.
    pub indicator: bool,
}

/// The window of one guest display.
pub struct DisplayWindow {
    /// The top-level window.
    pub window: gtk::Window,
    /// spice-gtk's display widget.
    pub display: SpiceDisplay,
    /// The media layer.
    pub media: gtk::DrawingArea,
    /// Draws of the media layer so far that painted video, and how many
    /// presentations the latest draw painted (a screenshot is taken only
    /// while video shows).
    pub drawn: Rc<Cell<(u64, u64)>>,
}

impl DisplayWindow {
    /// Opens the window of monitor `monitor_id` of display channel
    /// `channel_id`.
    pub fn open(
        shared: &Rc<Shared>,
        channel: &DisplayChannel,
        channel_id: i32,
        monitor_id: u32,
    ) -> DisplayWindow {
        let display = SpiceDisplay::new(&shared.session, channel_id, monitor_id);
        let display_id = monitors::display_id(channel_id, monitor_id);
        let w = display.widget();
        w.set_property("scaling", true);
        w.set_property("resize-guest", shared.resize_guest);
        w.set_property(
            "zoom-level",
            i32::try_from(shared.zoom.get()).unwrap_or(100),
        );
        w.set_hexpand(true);
        w.set_vexpand(true);

        let media = gtk::DrawingArea::new();
        let overlay = gtk::Overlay::new();
        overlay.add(w);
        overlay.add_overlay(&media);
        overlay.set_overlay_pass_through(&media, true);
        // Pass-through covers the overlay's own child window, not the
        // window the drawing area makes inside it, which would take every
        // pointer event (GDK delivers to a pass-through window's
        // children): that window passes them through too.
        media.connect_realize(|media| {
            if let Some(window) = media.window() {
                window.set_pass_through(true);
            }
        });

        let window = gtk::Window::new(gtk::WindowType::Toplevel);
        window.set_title(&window_title(&shared.title, display_id));
        let vbox = gtk::Box::new(gtk::Orientation::Vertical, 0);
        let menu = menu_bar(shared, &window, &display);
        vbox.pack_start(&menu, false, false, 0);
        vbox.pack_start(&overlay, true, true, 0);
        window.add(&vbox);
        install_hotkeys(shared, &window, &display);
        let m = menu.clone();
        window.connect_window_state_event(move |_, e| {
            // Full screen shows the desktop alone.
            let full = e
                .new_window_state()
                .contains(gtk::gdk::WindowState::FULLSCREEN);
            m.set_visible(!full);
            glib::Propagation::Proceed
        });

        let drawn = Rc::new(Cell::new((0u64, 0u64)));
        let compositor = RefCell::new(Compositor::default());
        let (scene, ch, d, count) = (
            shared.scene.clone(),
            channel.clone(),
            display.clone(),
            drawn.clone(),
        );
        let indicator = shared.indicator;
        media.connect_draw(move |area, cr| {
            let n = draw_media(
                area,
                cr,
                &scene,
                &ch,
                &d,
                (monitor_id, display_id),
                &mut compositor.borrow_mut(),
                indicator,
            );
            let (draws, _) = count.get();
            count.set((draws + u64::from(n > 0), n));
            glib::Propagation::Proceed
        });
        let (scene, last) = (shared.scene.clone(), Cell::new(u64::MAX));
        media.add_tick_callback(move |area, _| {
            let now = scene.generation();
            if last.replace(now) != now {
                area.queue_draw();
            }
            glib::ControlFlow::Continue
        });
        let m = media.clone();
        channel.connect_display_invalidate(move |_, _, _, _, _| m.queue_draw());
        // A new guest resolution or monitor size: the window fits it, at
        // the current zoom, after spice-gtk has taken it. So does a new
        // window of a surface that already exists.
        let fit = {
            let (s, win, d) = (shared.clone(), window.clone(), display.clone());
            move || {
                let (s, win, d) = (s.clone(), win.clone(), d.clone());
                glib::idle_add_local_once(move || fit_window(&win, &d, s.zoom.get()));
            }
        };
        let (f, m) = (fit.clone(), media.clone());
        channel.connect_monitors_notify(move |_| {
            m.queue_draw();
            f();
        });
        let f = fit.clone();
        channel.connect_display_primary_create(move |_| f());
        fit();
        window.show_all();
        DisplayWindow {
            window,
            display,
            media,
            drawn,
        }
    }
}

/// A GTK accelerator (`<Shift>F12`) as spice-gtk's grab sequence: key
/// names joined by `+`, modifiers as their left keys (`Shift_L+F12`).
fn grab_sequence(accel: &str) -> String {
    let mut keys = Vec::new();
    let mut rest = accel;
    while let Some(after) = rest.strip_prefix('<') {
        let Some((modifier, tail)) = after.split_once('>') else {
            break;
        };
        keys.push(match modifier {
            "Control" | "Primary" => "Control_L",
            "Shift" => "Shift_L",
            "Alt" => "Alt_L",
            "Super" => "Super_L",
            other => other,
        });
        rest = tail;
    }
    keys.push(rest);
    keys.join("+")
}

/// The title of display `display_id`'s window: the first display's is
/// `title`, the others say which display they show.
pub fn window_title(title: &str, display_id: u32) -> String {
    if display_id == 0 {
        title.to_owned()
    } else {
        format!("{title} (display {})", u64::from(display_id) + 1)
    }
}

/// Draws the media layer of monitor `monitor_id` of `channel`, display
/// `display_id`; returns how many presentations it painted.
#[allow(clippy::too_many_arguments)]
fn draw_media(
    area: &gtk::DrawingArea,
    cr: &cairo::Context,
    scene: &Scene,
    channel: &DisplayChannel,
    display: &SpiceDisplay,
    (monitor_id, display_id): (u32, u32),
    compositor: &mut Compositor,
    indicator: bool,
) -> u64 {
    let (scaling, only_down) = display.scaling();
    let (ww, wh) = (area.allocated_width(), area.allocated_height());
    compositor.device_scale = f64::from(area.scale_factor().max(1));
    spice_gtk::with_monitor_desktop(channel, monitor_id, |desktop| {
        let as_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let placement = DisplayPlacement::new(
            ww,
            wh,
            as_i32(desktop.width),
            as_i32(desktop.height),
            scaling,
            only_down,
        );
        compositor.draw(cr, scene, display_id, &placement, desktop, indicator)
    })
    .flatten()
    .unwrap_or(0)
}

fn menu_item(menu: &gtk::Menu, label: &str, f: impl Fn() + 'static) {
    let item = gtk::MenuItem::with_mnemonic(label);
    item.connect_activate(move |_| f());
    menu.append(&item);
}

fn submenu(bar: &gtk::MenuBar, label: &str) -> gtk::Menu {
    let item = gtk::MenuItem::with_mnemonic(label);
    let menu = gtk::Menu::new();
    item.set_submenu(Some(&menu));
    bar.append(&item);
    menu
}

/// Sets the zoom of `display` and sizes `window` for it.
fn set_zoom(shared: &Shared, window: &gtk::Window, display: &SpiceDisplay, zoom: u32) {
    shared.zoom.set(zoom);
    display
        .widget()
        .set_property("zoom-level", i32::try_from(zoom).unwrap_or(100));
    fit_window(window, display, zoom);
}

/// Sizes `window` so that the guest display shows at `zoom` percent, as
/// remote-viewer does when a display appears or the zoom changes (the user
/// may resize it freely afterwards: the display scales).
fn fit_window(window: &gtk::Window, display: &SpiceDisplay, zoom: u32) {
    let Some((gw, gh)) = display.guest_size() else {
        return;
    };
    let scaled = |v: u32| i32::try_from(u64::from(v) * u64::from(zoom) / 100).unwrap_or(i32::MAX);
    let (ww, wh) = (window.allocated_width(), window.allocated_height());
    let (dw, dh) = (
        display.widget().allocated_width(),
        display.widget().allocated_height(),
    );
    // What the window has besides the display (the menu bar).
    let (extra_w, extra_h) = ((ww - dw).max(0), (wh - dh).max(0));
    log::debug!(
        "window {ww}x{wh}, display {dw}x{dh}, guest {gw}x{gh} at {zoom} %: window to {}x{}",
        scaled(gw) + extra_w,
        scaled(gh) + extra_h
    );
    window.resize(scaled(gw) + extra_w, scaled(gh) + extra_h);
}

fn step_zoom(shared: &Shared, window: &gtk::Window, display: &SpiceDisplay, up: bool) {
    let now = shared.zoom.get();
    let next = if up {
        ZOOM_STEPS.iter().copied().find(|&z| z > now)
    } else {
        ZOOM_STEPS.iter().rev().copied().find(|&z| z < now)
    };
    if let Some(z) = next {
        set_zoom(shared, window, display, z);
    }
}

fn toggle_fullscreen(window: &gtk::Window) {
    let full = window
        .window()
        .is_some_and(|w| w.state().contains(gtk::gdk::WindowState::FULLSCREEN));
    if full {
        window.unfullscreen();
    } else {
        window.fullscreen();
    }
}

fn menu_bar(shared: &Rc<Shared>, window: &gtk::Window, display: &SpiceDisplay) -> gtk::MenuBar {
    let bar = gtk::MenuBar::new();
    let file = submenu(&bar, "_File");
    menu_item(&file, "_Quit", gtk::main_quit);

    let view = submenu(&bar, "_View");
    let w = window.clone();
    menu_item(&view, "_Full screen", move || toggle_fullscreen(&w));
    for (label, step) in [
        ("Zoom _in", Some(true)),
        ("Zoom _out", Some(false)),
        ("_Normal size", None),
    ] {
        let (s, w, d) = (shared.clone(), window.clone(), display.clone());
        menu_item(&view, label, move || match step {
            Some(up) => step_zoom(&s, &w, &d, up),
            None => set_zoom(&s, &w, &d, 100),
        });
    }

    let keys = submenu(&bar, "_Send key");
    let mut combos: Vec<(String, Vec<u32>)> = vec![
        (
            "Ctrl+Alt+_Del".into(),
            vec![key::CONTROL_L, key::ALT_L, key::DELETE],
        ),
        (
            "Ctrl+Alt+_Backspace".into(),
            vec![key::CONTROL_L, key::ALT_L, key::BACKSPACE],
        ),
    ];
    for n in 0..12 {
        combos.push((
            format!("Ctrl+Alt+F_{}", n + 1),
            vec![key::CONTROL_L, key::ALT_L, key::F1 + n],
        ));
    }
    combos.push(("_PrintScreen".into(), vec![key::PRINT]));
    for (label, combo) in combos {
        let d = display.clone();
        menu_item(&keys, &label, move || d.send_keys(&combo));
    }

    let input = submenu(&bar, "_Input");
    let (s, w) = (shared.clone(), window.clone());
    menu_item(&input, "_USB device selection", move || {
        usb_dialog(&s.session, &w)
    });
    let d = display.clone();
    menu_item(&input, "_Release cursor", move || d.ungrab());
    bar
}

fn usb_dialog(session: &Session, parent: &gtk::Window) {
    let dialog = gtk::Dialog::with_buttons(
        Some("Select USB devices for redirection"),
        Some(parent),
        gtk::DialogFlags::MODAL | gtk::DialogFlags::DESTROY_WITH_PARENT,
        &[("_Close", gtk::ResponseType::Close)],
    );
    let content = dialog.content_area();
    match spice_gtk::usb_device_widget(session) {
        Some(widget) => content.pack_start(&widget, true, true, 0),
        None => content.pack_start(
            &gtk::Label::new(Some("USB redirection is not available in this session.")),
            true,
            true,
            6,
        ),
    }
    dialog.connect_response(|d, _| d.close());
    dialog.show_all();
}

fn install_hotkeys(shared: &Rc<Shared>, window: &gtk::Window, display: &SpiceDisplay) {
    let group = gtk::AccelGroup::new();
    for (action, accel) in &shared.hotkeys {
        let (key, mods) = gtk::accelerator_parse(accel);
        if key == 0 {
            log::warn!("hotkey {accel}: not a key");
            continue;
        }
        if *action == Hotkey::ReleaseCursor {
            // spice-gtk releases its grab itself on this combination.
            if !display.set_grab_keys(&grab_sequence(accel)) {
                log::warn!("hotkey {accel}: not a key sequence spice-gtk takes");
            }
        }
        let (s, w, d, action) = (shared.clone(), window.clone(), display.clone(), *action);
        group.connect_accel_group(key, mods, gtk::AccelFlags::VISIBLE, move |_, _, _, _| {
            match action {
                Hotkey::ToggleFullscreen => toggle_fullscreen(&w),
                Hotkey::ReleaseCursor => d.ungrab(),
                Hotkey::SecureAttention => d.send_keys(&[key::CONTROL_L, key::ALT_L, key::DELETE]),
                Hotkey::ZoomIn => step_zoom(&s, &w, &d, true),
                Hotkey::ZoomOut => step_zoom(&s, &w, &d, false),
                Hotkey::ZoomReset => set_zoom(&s, &w, &d, 100),
            }
            true
        });
    }
    window.add_accel_group(&group);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hotkeys_become_spice_grab_sequences() {
        assert_eq!(grab_sequence("<Shift>F12"), "Shift_L+F12");
        assert_eq!(grab_sequence("<Control><Alt>r"), "Control_L+Alt_L+r");
        assert_eq!(window_title("vm1", 0), "vm1");
        assert_eq!(window_title("vm1", 1), "vm1 (display 2)");
    }
}

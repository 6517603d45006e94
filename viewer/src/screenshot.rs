//! `--screenshot PATH` (tests and `cargo xtask demo --viewer`): while the
//! first display's window shows redirected video, the window as the
//! screen shows it is written to PATH as a PNG, at most twice a second, so
//! that the file holds the latest view with video in it.

use std::path::PathBuf;
use std::time::Duration;

use gtk::glib;
use gtk::prelude::*;

use crate::window::DisplayWindow;

/// Keeps PATH a recent screenshot of `win` once it has drawn a picture.
pub fn after_first_picture(win: &DisplayWindow, path: PathBuf) {
    let (window, drawn) = (win.window.clone(), win.drawn.clone());
    let mut written = 0;
    glib::timeout_add_local(Duration::from_millis(500), move || {
        let (now, showing) = drawn.get();
        if showing > 0
            && now != written
            && let Some(gdk_window) = window.window()
        {
            // Read through the root window, as the screen shows it: the
            // media layer may be a child X window of its own, which a read
            // of the top-level window leaves out.
            let (w, h) = (gdk_window.width(), gdk_window.height());
            let (_, x, y) = gdk_window.origin();
            let root = gtk::gdk::Window::default_root_window();
            match root.pixbuf(x, y, w, h) {
                Some(pixbuf) => {
                    let tmp = path.with_extension("tmp.png");
                    match pixbuf
                        .savev(&tmp, "png", &[])
                        .map(|()| std::fs::rename(&tmp, &path))
                    {
                        Ok(Ok(())) => written = now,
                        Ok(Err(e)) => log::warn!("screenshot {}: {e}", path.display()),
                        Err(e) => log::warn!("screenshot {}: {e}", path.display()),
                    }
                }
                None => log::warn!("screenshot: the window cannot be read"),
            }
        }
        glib::ControlFlow::Continue
    });
}

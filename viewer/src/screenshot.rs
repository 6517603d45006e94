//! `--screenshot PATH` (tests and `cargo xtask demo --viewer`): once the
//! first display's window has drawn a redirected picture, the window as
//! the X server shows it is written to PATH as a PNG, and again every time
//! a later picture is drawn, at most twice a second, so that the file
//! always holds a recent view.

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
        let now = drawn.get();
        if now > 0
            && now != written
            && let Some(gdk_window) = window.window()
        {
            let (w, h) = (gdk_window.width(), gdk_window.height());
            match gdk_window.pixbuf(0, 0, w, h) {
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

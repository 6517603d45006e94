//! Top-level windows on a test's X server (`Xvfb`, no window manager):
//! find one by title, read and change its size and place, as a user
//! resizing or moving it, and click into it, as a user with a mouse (the
//! XTEST extension, which Xvfb has: the click goes through the server's
//! own input path, grabs included).

use std::io;

use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{
    AtomEnum, BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, ConfigureWindowAux, ConnectionExt as _,
    MOTION_NOTIFY_EVENT, MapState,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

fn x_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("X11: {e}"))
}

/// A connection to one X display.
#[derive(Debug)]
pub struct X11 {
    conn: RustConnection,
    root: u32,
}

impl X11 {
    /// Connects to `display` (`:N`).
    pub fn connect(display: &str) -> io::Result<X11> {
        let (conn, screen) = RustConnection::connect(Some(display)).map_err(x_error)?;
        let root = conn
            .setup()
            .roots
            .get(screen)
            .ok_or_else(|| x_error("no screen"))?
            .root;
        Ok(X11 { conn, root })
    }

    fn title(&self, window: u32) -> io::Result<String> {
        let utf8 = self
            .conn
            .intern_atom(false, b"UTF8_STRING")
            .map_err(x_error)?;
        let net = self
            .conn
            .intern_atom(false, b"_NET_WM_NAME")
            .map_err(x_error)?;
        let (utf8, net) = (
            utf8.reply().map_err(x_error)?.atom,
            net.reply().map_err(x_error)?.atom,
        );
        for (name, kind) in [
            (net, utf8),
            (AtomEnum::WM_NAME.into(), AtomEnum::ANY.into()),
        ] {
            let reply = self
                .conn
                .get_property(false, window, name, kind, 0, 1024)
                .map_err(x_error)?
                .reply()
                .map_err(x_error)?;
            if !reply.value.is_empty() {
                return Ok(String::from_utf8_lossy(&reply.value).into_owned());
            }
        }
        Ok(String::new())
    }

    /// The top-level window titled `title`, if one is mapped.
    pub fn find(&self, title: &str) -> io::Result<Option<u32>> {
        let tree = self
            .conn
            .query_tree(self.root)
            .map_err(x_error)?
            .reply()
            .map_err(x_error)?;
        for w in tree.children {
            if self.title(w)? == title && self.viewable(w)? {
                return Ok(Some(w));
            }
        }
        Ok(None)
    }

    /// Whether the window is mapped (and so is every ancestor).
    fn viewable(&self, window: u32) -> io::Result<bool> {
        let attributes = self
            .conn
            .get_window_attributes(window)
            .map_err(x_error)?
            .reply()
            .map_err(x_error)?;
        Ok(attributes.map_state == MapState::VIEWABLE)
    }

    /// The window's size.
    pub fn size(&self, window: u32) -> io::Result<(u32, u32)> {
        let g = self
            .conn
            .get_geometry(window)
            .map_err(x_error)?
            .reply()
            .map_err(x_error)?;
        Ok((u32::from(g.width), u32::from(g.height)))
    }

    /// Moves the window's top-left corner to (`x`, `y`) on the screen (no
    /// window manager: the request takes effect).
    pub fn move_to(&self, window: u32, x: i32, y: i32) -> io::Result<()> {
        let aux = ConfigureWindowAux::new().x(x).y(y);
        self.conn.configure_window(window, &aux).map_err(x_error)?;
        self.conn.flush().map_err(x_error)?;
        Ok(())
    }

    /// Moves the pointer to (`x`, `y`) in `window` and clicks the left
    /// button there (press, release); returns once the server has them.
    pub fn click(&self, window: u32, x: i16, y: i16) -> io::Result<()> {
        let at = self
            .conn
            .translate_coordinates(window, self.root, x, y)
            .map_err(x_error)?
            .reply()
            .map_err(x_error)?;
        let (rx, ry) = (at.dst_x, at.dst_y);
        for (kind, detail) in [
            (MOTION_NOTIFY_EVENT, 0),
            (BUTTON_PRESS_EVENT, 1),
            (BUTTON_RELEASE_EVENT, 1),
        ] {
            self.conn
                .xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, self.root, rx, ry, 0)
                .map_err(x_error)?;
        }
        self.conn.sync().map_err(x_error)?;
        Ok(())
    }

    /// Resizes the window (no window manager: the request takes effect).
    pub fn resize(&self, window: u32, width: u32, height: u32) -> io::Result<()> {
        let aux = ConfigureWindowAux::new().width(width).height(height);
        self.conn.configure_window(window, &aux).map_err(x_error)?;
        self.conn.flush().map_err(x_error)?;
        Ok(())
    }
}

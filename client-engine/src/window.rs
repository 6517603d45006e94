//! Overlay windows on X11 (Auto mode with `DISPLAY` set): one top-level
//! window per presentation, created by the engine over its own X
//! connection (`x11rb`, pure Rust) and handed to `ximagesink` with
//! `GstVideoOverlay::set_window_handle` before the sink opens a window of
//! its own.
//!
//! The window carries the placement the pipeline cannot express:
//! - `dest` moves and resizes the window (the picture is scaled to
//!   `dest`'s size in the pipeline and fills it);
//! - `visible` maps or unmaps it (an empty `dest` unmaps it too);
//! - `z` restacks it among the engine's windows: higher `z` is nearer the
//!   viewer, equal `z` stack by presentation id (higher id on top).
//!
//! Windows are `override-redirect` children of the root window, so a window
//! manager neither decorates nor moves them; coordinates are root-window
//! coordinates. Before any `SetGeometry` the window is shown at (0, 0) with
//! the size of the decoded picture.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use mediaredir_proto::wire::SetGeometry;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConfigureWindowAux, ConnectionExt as _, CreateWindowAux, EventMask, StackMode, WindowClass,
};
use x11rb::rust_connection::RustConnection;

use crate::EngineError;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn x_error(e: impl std::fmt::Display) -> EngineError {
    EngineError::Pipeline(format!("X11: {e}"))
}

/// The engine's connection to the X display and the stacking order of its
/// windows.
pub(crate) struct XDisplay {
    conn: RustConnection,
    root: u32,
    black: u32,
    /// Window id -> (z, presentation id).
    stack: Mutex<BTreeMap<u32, (i32, u32)>>,
}

impl std::fmt::Debug for XDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XDisplay")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl XDisplay {
    /// Connects to `DISPLAY`.
    pub(crate) fn connect() -> Result<Arc<XDisplay>, EngineError> {
        let (conn, screen) = RustConnection::connect(None).map_err(x_error)?;
        let s = conn
            .setup()
            .roots
            .get(screen)
            .ok_or_else(|| x_error("no such screen"))?;
        let (root, black) = (s.root, s.black_pixel);
        Ok(Arc::new(XDisplay {
            conn,
            root,
            black,
            stack: Mutex::default(),
        }))
    }

    /// Restacks every window by (z, presentation id), bottom to top.
    fn restack(&self, stack: &BTreeMap<u32, (i32, u32)>) -> Result<(), EngineError> {
        let mut order: Vec<_> = stack.iter().map(|(w, key)| (*key, *w)).collect();
        order.sort_unstable();
        for pair in order.windows(2) {
            let aux = ConfigureWindowAux::new()
                .sibling(pair[0].1)
                .stack_mode(StackMode::ABOVE);
            self.conn
                .configure_window(pair[1].1, &aux)
                .map_err(x_error)?;
        }
        Ok(())
    }
}

/// What a window currently shows.
#[derive(Debug, Default)]
struct WindowState {
    /// A `SetGeometry` has placed the window.
    placed: bool,
    mapped: bool,
}

/// The overlay window of one presentation; destroyed on drop.
#[derive(Debug)]
pub(crate) struct Window {
    display: Arc<XDisplay>,
    id: u32,
    presentation: u32,
    state: Mutex<WindowState>,
}

impl Window {
    /// Creates the (unmapped) window of `presentation`, at the bottom of
    /// the engine's windows with `z` 0.
    pub(crate) fn new(display: &Arc<XDisplay>, presentation: u32) -> Result<Window, EngineError> {
        let conn = &display.conn;
        let id = conn.generate_id().map_err(x_error)?;
        let aux = CreateWindowAux::new()
            .background_pixel(display.black)
            .override_redirect(1)
            .event_mask(EventMask::NO_EVENT);
        conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            id,
            display.root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_OUTPUT,
            x11rb::COPY_FROM_PARENT,
            &aux,
        )
        .map_err(x_error)?;
        let mut stack = lock(&display.stack);
        stack.insert(id, (0, presentation));
        display.restack(&stack)?;
        drop(stack);
        conn.flush().map_err(x_error)?;
        Ok(Window {
            display: display.clone(),
            id,
            presentation,
            state: Mutex::default(),
        })
    }

    /// The X window id, for `set_window_handle`.
    pub(crate) fn handle(&self) -> usize {
        usize::try_from(self.id).unwrap_or(usize::MAX)
    }

    fn map(&self, st: &mut WindowState, shown: bool) -> Result<(), EngineError> {
        let conn = &self.display.conn;
        if shown && !st.mapped {
            conn.map_window(self.id).map_err(x_error)?;
        } else if !shown && st.mapped {
            conn.unmap_window(self.id).map_err(x_error)?;
        }
        st.mapped = shown;
        Ok(())
    }

    /// The canvas reaching the sink is `width` x `height`: before any
    /// `SetGeometry`, shows the window at (0, 0) with that size.
    pub(crate) fn picture_size(&self, width: u32, height: u32) {
        let mut st = lock(&self.state);
        if st.placed || width == 0 || height == 0 {
            return;
        }
        let aux = ConfigureWindowAux::new().width(width).height(height);
        let r = self
            .display
            .conn
            .configure_window(self.id, &aux)
            .map_err(x_error)
            .and_then(|_| self.map(&mut st, true))
            .and_then(|()| self.display.conn.flush().map_err(x_error));
        if let Err(e) = r {
            log::warn!("presentation {}: overlay window: {e}", self.presentation);
        }
    }

    /// Applies `dest`, `visible` and `z` of `g`.
    pub(crate) fn apply(&self, g: &SetGeometry) {
        if let Err(e) = self.try_apply(g) {
            log::warn!("presentation {}: overlay window: {e}", self.presentation);
        }
    }

    fn try_apply(&self, g: &SetGeometry) -> Result<(), EngineError> {
        let mut st = lock(&self.state);
        st.placed = true;
        let d = g.dest;
        let shown = g.visible && d.width > 0 && d.height > 0;
        if d.width > 0 && d.height > 0 {
            let aux = ConfigureWindowAux::new()
                .x(d.x)
                .y(d.y)
                .width(d.width)
                .height(d.height);
            self.display
                .conn
                .configure_window(self.id, &aux)
                .map_err(x_error)?;
        }
        {
            let mut stack = lock(&self.display.stack);
            if stack.insert(self.id, (g.z, self.presentation)) != Some((g.z, self.presentation)) {
                self.display.restack(&stack)?;
            }
        }
        self.map(&mut st, shown)?;
        self.display.conn.flush().map_err(x_error)?;
        Ok(())
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        lock(&self.display.stack).remove(&self.id);
        let conn = &self.display.conn;
        let _ = conn.destroy_window(self.id);
        let _ = conn.flush();
    }
}

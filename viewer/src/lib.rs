//! `mediaredir-viewer`: what users run instead of remote-viewer. It shows
//! the VM's desktop over Spice with spice-gtk's own display widget (input,
//! clipboard, audio, USB redirection, full screen, zoom, hotkeys and send
//! keys as remote-viewer has them) and draws each redirected video inside
//! the desktop, in place: mapped through the display's scale and offset,
//! clipped to what the guest says is visible, stacked by `z`, under the
//! viewer's own menus and dialogs (spec 7.14, CLI-GEOM-1 and -2).
//!
//! Modules, one job each:
//! - [`options`]: command line, Spice URIs, `.vv` files, hotkeys;
//! - [`app`]: the Spice session, the windows, the media connection;
//! - [`window`]: one window per display: menus, the display widget and the
//!   media layer above it;
//! - [`compose`]: draws a display's presentations (cairo);
//! - [`layout`]: guest coordinates to widget coordinates, clipping (pure);
//! - [`keying`]: the colour key (pure);
//! - [`scene`]: what the engine reported (pictures, geometry);
//! - [`spice_gtk`]: the spice-client-gtk functions used, made safe;
//! - [`screenshot`]: `--screenshot` for tests and the demo.

pub mod app;
pub mod compose;
mod error;
pub mod keying;
pub mod layout;
pub mod monitors;
pub mod options;
pub mod scene;
pub mod screenshot;
pub mod spice_gtk;
pub mod window;

pub use error::ViewerError;
pub use options::Args;

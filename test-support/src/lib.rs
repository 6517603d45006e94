//! What the project's tests share, in one place.
//!
//! Tests in every crate start external programs (Xvfb, xwd, daemons, QEMU)
//! and need tools a machine may lack. Each of those concerns had a copy per
//! test file, and the copies disagreed: one printed `SKIPPED` and passed in
//! CI, another left Xvfb sockets behind when it was killed. This crate is
//! the one copy:
//!
//! - [`require`]: a missing tool fails the test under `CI=true` and is a
//!   recorded skip elsewhere (`cargo xtask test` lists skips by name);
//! - [`ChildGuard`]: a child process terminated and reaped on every path;
//! - [`Xvfb`]: a private X server, stopped cleanly;
//! - [`pki`]: TLS certificates made at test time;
//! - [`scratch`]: scratch directories (the `tempfile` crate), named after
//!   their maker;
//! - [`clips`]: the command lines that make test clips (`gst-launch-1.0`,
//!   `ffmpeg`, shell lines);
//! - [`serde_json`]: JSON, for tests and tools that write or read it;
//! - [`until`]: polling until a condition holds;
//! - [`symbols`]: what a built shared library links, read with `nm`;
//! - [`Image`]: screen images from `xwd` and QEMU's `screendump`;
//! - [`Qmp`]: a QMP client (commands, `screendump`);
//! - [`X11`]: top-level windows on a test's X server (find, resize,
//!   click);
//! - [`screen`]: a viewer's window read back (`xwd`) and compared with the
//!   guest's screen (pixels, rectangles, where the guest display lies);
//! - `gst` (feature `gst`, for crates that link GStreamer already): the
//!   decoder's sink pad in a pipeline.
//!
//! It is a dev-dependency only and, without the `gst` feature, links no
//! system library.

mod child;
pub mod clips;
#[cfg(feature = "gst")]
pub mod gst;
mod image;
pub mod pki;
mod qmp;
mod require;
mod scratch;
pub mod screen;
pub mod symbols;
mod wait;
mod x11;
mod xvfb;

pub use child::{ChildGuard, signal};
pub use image::{Image, pixel};
pub use pki::Pki;
pub use qmp::Qmp;
pub use rcgen::ExtendedKeyUsagePurpose;
pub use require::{SKIP_LOG_ENV, Tool, ci, find_program, require};
/// The signals [`signal`] sends.
pub use rustix::process::Signal;
pub use scratch::{TempDir, scratch, try_scratch};
pub use serde_json;
pub use tempfile;
pub use wait::until;
pub use x11::X11;
pub use xvfb::Xvfb;

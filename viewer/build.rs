//! Links libspice-client-gtk-3.0 (no Rust crate binds it; see
//! `src/spice_gtk.rs`), found through pkg-config.

fn main() {
    if let Err(e) = pkg_config::Config::new()
        .atleast_version("0.39")
        .probe("spice-client-gtk-3.0")
    {
        panic!("spice-client-gtk-3.0 (Debian: libspice-client-gtk-3.0-dev): {e}");
    }
}

//! The GStreamer plugin (`libgstmediaredir.so`) is a player: it speaks to the broker
//! through `mediaredir-player` and links no driver code (issue 17): no
//! PCI, uio, vhost-user, virtqueue or vm-memory code, nothing of
//! `guest-driver-shim`. Read from the built library's symbol table.

use test_support::symbols::{NM, assert_no_driver_code};

#[test]
fn libgstmediaredir_holds_no_driver_code() {
    if test_support::require("libgstmediaredir_holds_no_driver_code", &[NM]) {
        assert_no_driver_code("gst-plugin-mediaredir", "libgstmediaredir.so");
    }
}

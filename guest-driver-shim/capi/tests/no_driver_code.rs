//! The C API's shared library (`libmediaredir.so`) is a player: it speaks to the broker
//! through `mediaredir-player` and links no driver code (issue 17): no
//! PCI, uio, vhost-user, virtqueue or vm-memory code, nothing of
//! `guest-driver-shim`. Read from the built library's symbol table.

use test_support::symbols::{NM, assert_no_driver_code};

#[test]
fn libmediaredir_holds_no_driver_code() {
    if test_support::require("libmediaredir_holds_no_driver_code", &[NM]) {
        assert_no_driver_code("mediaredir-capi", "libmediaredir.so");
    }
}

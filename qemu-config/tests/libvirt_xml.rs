//! The libvirt domain XML in `qemu-config/libvirt/` is valid against
//! libvirt's own schema (`virt-xml-validate`, from libvirt-clients, which
//! `cargo xtask setup` installs).

use std::path::Path;
use std::process::Command;

#[test]
fn domain_xml_validates_against_libvirt_schema() {
    let xml = Path::new(env!("CARGO_MANIFEST_DIR")).join("libvirt/vm.xml");
    if !test_support::require(
        "libvirt_xml::domain_xml_validates_against_libvirt_schema",
        &[test_support::Tool {
            program: "virt-xml-validate",
            package: "libvirt-clients",
        }],
    ) {
        return;
    }
    let output = Command::new("virt-xml-validate")
        .arg(&xml)
        .arg("domain")
        .output()
        .expect("run virt-xml-validate");
    assert!(
        output.status.success(),
        "{} does not validate:\n{}{}",
        xml.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The device and its shared memory must be there, not just valid XML.
    let text = std::fs::read_to_string(&xml).unwrap();
    for needle in ["memfd", "shared", "virtio-id=57", "vhost-user-device-pci"] {
        assert!(text.contains(needle), "vm.xml lacks {needle}");
    }
}

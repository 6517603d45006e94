//! The libvirt domain XML in `qemu-config/libvirt/` is valid against
//! libvirt's own schema (`virt-xml-validate`, from libvirt-clients, which
//! `cargo xtask setup` installs), and its `<qemu:commandline>` passes QEMU
//! the same device, chardevs and relay as [`QemuCommand`] and
//! [`MediaRelay`], the command lines the QEMU tests run: the XML a libvirt
//! user pastes cannot drift from what is tested.

use std::path::{Path, PathBuf};
use std::process::Command;

use mediaredir_proto::wire::SPICE_PORT_NAME;
use qemu_config::{MediaRelay, QemuCommand};

fn libvirt_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("libvirt")
}

#[test]
fn every_domain_xml_validates_against_libvirt_schema() {
    if !test_support::require(
        "libvirt_xml::every_domain_xml_validates_against_libvirt_schema",
        &[test_support::Tool {
            program: "virt-xml-validate",
            package: "libvirt-clients",
        }],
    ) {
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(libvirt_dir())
        .expect("read qemu-config/libvirt")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no domain XML in qemu-config/libvirt");
    for xml in &files {
        let output = Command::new("virt-xml-validate")
            .arg(xml)
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
    }
}

/// The `value`s of the `<qemu:arg>` elements outside comments, in order.
fn qemu_args(xml: &str) -> Vec<String> {
    let mut text = String::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<!--") {
        text.push_str(&rest[..start]);
        let end = rest[start..].find("-->").expect("unterminated comment");
        rest = &rest[start + end + 3..];
    }
    text.push_str(rest);
    text.split("<qemu:arg value='")
        .skip(1)
        .map(|s| s[..s.find('\'').expect("unterminated value")].to_string())
        .collect()
}

/// Whether `needle` occurs in `args` as consecutive arguments.
fn has_run(args: &[String], needle: &[String]) -> bool {
    args.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn vm_xml_passes_the_tested_device_and_relay() {
    let path = libvirt_dir().join("vm.xml");
    let xml = std::fs::read_to_string(&path).expect("read vm.xml");
    let args = qemu_args(&xml);

    // The device on the daemon's vhost-user socket, as the QEMU tests
    // build it (the chardev and the -device pair of QemuCommand).
    let mut device = QemuCommand::new("/run/vhost-device-media/vm1/vhost-user.sock");
    device.reconnect_ms = Some(1000);
    let tested = device.args();
    let chardev = tested.iter().position(|a| a == "-chardev").unwrap();
    assert!(
        has_run(&args, &tested[chardev..chardev + 4]),
        "vm.xml's device differs from QemuCommand's {:?}: {args:?}",
        &tested[chardev..chardev + 4]
    );

    // The media port of the Spice session relayed to the daemon's Unix
    // uplink, where the systemd unit's default UPLINK puts it.
    let relay = MediaRelay {
        reconnect_ms: 1000,
        ..MediaRelay::new(SPICE_PORT_NAME, "/run/vhost-device-media/vm1/media.sock")
    };
    assert!(
        has_run(&args, &relay.args()),
        "vm.xml's relay differs from MediaRelay's {:?}: {args:?}",
        relay.args()
    );
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/vhost-user-mediaredir@.service"),
    )
    .expect("read the systemd unit");
    assert!(
        unit.contains("Environment=UPLINK=unix:%t/vhost-device-media/%i/media.sock")
            && unit.contains("RuntimeDirectory=vhost-device-media/%i"),
        "the unit's default uplink is not the socket vm.xml relays to"
    );

    // Guest RAM shared with the daemon; the session protected by a ticket
    // and TLS on every channel (the media port has no <channel> of its own).
    for needle in [
        "<source type='memfd'/>",
        "<access mode='shared'/>",
        "<graphics type='spice'",
        "passwd='",
        "defaultMode='secure'",
    ] {
        assert!(xml.contains(needle), "vm.xml lacks {needle}");
    }
}

#[test]
fn qemu_args_skip_comments() {
    let xml = "<!-- <qemu:arg value='no'/> --><qemu:arg value='-a'/>\
               <!-- x --><qemu:arg value='b,c=d'/>";
    assert_eq!(qemu_args(xml), ["-a", "b,c=d"]);
    let run = ["-a".to_string(), "b,c=d".to_string()];
    assert!(has_run(&qemu_args(xml), &run));
    assert!(!has_run(&qemu_args(xml), &[run[1].clone(), run[0].clone()]));
}

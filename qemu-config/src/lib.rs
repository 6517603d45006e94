//! QEMU and libvirt configuration for the media-redirection device.
//!
//! This crate will hold (see the real-VM issue): the QEMU command line for the
//! device on QEMU 10.2+ (`vhost-user-test-device-pci`) and on Debian's QEMU
//! 10.0.2 with the one-line virtio-ID patch, a libvirt domain XML, a systemd
//! unit template for the daemon, the builder that provides a QEMU able to
//! create the device (cached outside the repository), and the guest image
//! builder (Debian kernel, busybox-static initramfs, `redir-play`, clips).

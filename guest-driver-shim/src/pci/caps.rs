//! The virtio PCI capabilities, parsed from a function's configuration
//! space (virtio 1.x, "Virtio Structure PCI Capabilities").
//!
//! A modern virtio PCI device describes where its registers live with
//! vendor-specific capabilities (ID 0x09) in the standard capability list:
//! common configuration, notifications, ISR status and device-specific
//! configuration, each as (BAR, offset, length). The configuration space
//! comes from the device (QEMU here), so parsing is bounded and checked: a
//! looping or truncated list, a BAR index above 5 or a structure too small
//! for its registers is an error, never a panic or an endless walk.

/// PCI status register bit: the capability list is present.
const STATUS_CAP_LIST: u16 = 1 << 4;
/// Offset of the status register.
const PCI_STATUS: usize = 0x06;
/// Offset of the capabilities pointer.
const PCI_CAPABILITY_LIST: usize = 0x34;
/// Capability ID of vendor-specific capabilities (virtio uses them).
const CAP_ID_VENDOR: u8 = 0x09;
/// Most capabilities walked before the list is declared looping.
const MAX_CAPS: usize = 48;

/// `cfg_type` of the common configuration structure.
pub const CAP_COMMON_CFG: u8 = 1;
/// `cfg_type` of the notification structure.
pub const CAP_NOTIFY_CFG: u8 = 2;
/// `cfg_type` of the ISR status.
pub const CAP_ISR_CFG: u8 = 3;
/// `cfg_type` of the device-specific configuration.
pub const CAP_DEVICE_CFG: u8 = 4;

/// Size of the virtio 1.x common configuration structure.
pub const COMMON_CFG_LEN: u32 = 0x38;

/// Why the capabilities cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapsError {
    /// The configuration space is shorter than the standard header.
    #[error("configuration space of {0} bytes is too short")]
    Short(usize),
    /// The function has no capability list.
    #[error("the function has no capability list")]
    NoCapList,
    /// A capability pointer or body leaves the configuration space.
    #[error("capability at {0:#x} is outside the configuration space")]
    OutOfBounds(usize),
    /// The capability list does not end.
    #[error("the capability list loops or has more than {MAX_CAPS} entries")]
    Loop,
    /// A virtio structure the driver needs is missing.
    #[error("no virtio {0} capability")]
    Missing(&'static str),
    /// A virtio structure is unusable.
    #[error("virtio {what} capability: {reason}")]
    Bad {
        /// Which structure.
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Where one virtio structure lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapRegion {
    /// BAR index (0..=5).
    pub bar: u8,
    /// Offset inside the BAR.
    pub offset: u32,
    /// Length in bytes.
    pub length: u32,
}

/// The virtio structures of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioCaps {
    /// Common configuration.
    pub common: CapRegion,
    /// Notification area.
    pub notify: CapRegion,
    /// Queue notify address = notify.offset + queue_notify_off * this.
    pub notify_off_multiplier: u32,
    /// ISR status byte.
    pub isr: CapRegion,
    /// Device-specific configuration (absent when the device has none).
    pub device: Option<CapRegion>,
}

fn u16_at(config: &[u8], at: usize) -> Result<u16, CapsError> {
    config
        .get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or(CapsError::OutOfBounds(at))
}

fn u32_at(config: &[u8], at: usize) -> Result<u32, CapsError> {
    config
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(CapsError::OutOfBounds(at))
}

/// One vendor capability: `(cfg_type, region, notify multiplier if any)`.
fn vendor_cap(config: &[u8], at: usize) -> Result<(u8, CapRegion, Option<u32>), CapsError> {
    let cap_len = *config.get(at + 2).ok_or(CapsError::OutOfBounds(at))?;
    if cap_len < 16 || at + usize::from(cap_len) > config.len() {
        return Err(CapsError::OutOfBounds(at));
    }
    let cfg_type = config[at + 3];
    let region = CapRegion {
        bar: config[at + 4],
        offset: u32_at(config, at + 8)?,
        length: u32_at(config, at + 12)?,
    };
    let multiplier = if cfg_type == CAP_NOTIFY_CFG && cap_len >= 20 {
        Some(u32_at(config, at + 16)?)
    } else {
        None
    };
    Ok((cfg_type, region, multiplier))
}

fn check(what: &'static str, region: CapRegion, min_len: u32) -> Result<CapRegion, CapsError> {
    if region.bar > 5 {
        return Err(CapsError::Bad {
            what,
            reason: "BAR index above 5",
        });
    }
    if region.length < min_len {
        return Err(CapsError::Bad {
            what,
            reason: "structure too short",
        });
    }
    if region.offset.checked_add(region.length).is_none() {
        return Err(CapsError::Bad {
            what,
            reason: "structure end overflows",
        });
    }
    Ok(region)
}

/// Parses the virtio capabilities of a configuration space (at least the
/// 64-byte header; 256 bytes hold every standard capability). The first
/// capability of each type wins, as the spec asks drivers to do.
pub fn parse(config: &[u8]) -> Result<VirtioCaps, CapsError> {
    if config.len() < 64 {
        return Err(CapsError::Short(config.len()));
    }
    if u16_at(config, PCI_STATUS)? & STATUS_CAP_LIST == 0 {
        return Err(CapsError::NoCapList);
    }
    let (mut common, mut notify, mut isr, mut device) = (None, None, None, None);
    let mut at = usize::from(config[PCI_CAPABILITY_LIST] & !3);
    let mut walked = 0;
    while at != 0 {
        walked += 1;
        if walked > MAX_CAPS {
            return Err(CapsError::Loop);
        }
        if at < 0x40 || at + 2 > config.len() {
            return Err(CapsError::OutOfBounds(at));
        }
        if config[at] == CAP_ID_VENDOR {
            let (cfg_type, region, multiplier) = vendor_cap(config, at)?;
            match cfg_type {
                CAP_COMMON_CFG => {
                    common.get_or_insert(region);
                }
                CAP_NOTIFY_CFG if notify.is_none() => {
                    let multiplier = multiplier.ok_or(CapsError::Bad {
                        what: "notify",
                        reason: "no notify_off_multiplier",
                    })?;
                    notify = Some((region, multiplier));
                }
                CAP_ISR_CFG => {
                    isr.get_or_insert(region);
                }
                CAP_DEVICE_CFG => {
                    device.get_or_insert(region);
                }
                // PCI configuration access and shared memory: not used.
                _ => {}
            }
        }
        at = usize::from(config[at + 1] & !3);
    }
    let common = check(
        "common",
        common.ok_or(CapsError::Missing("common"))?,
        COMMON_CFG_LEN,
    )?;
    let (notify, notify_off_multiplier) = notify.ok_or(CapsError::Missing("notify"))?;
    let notify = check("notify", notify, 2)?;
    let isr = check("ISR", isr.ok_or(CapsError::Missing("ISR"))?, 1)?;
    let device = device.map(|d| check("device", d, 0)).transpose()?;
    Ok(VirtioCaps {
        common,
        notify,
        notify_off_multiplier,
        isr,
        device,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A vendor capability at `at` pointing to `next`.
    fn put_cap(config: &mut [u8], at: usize, next: u8, cfg_type: u8, region: CapRegion) {
        let len = if cfg_type == CAP_NOTIFY_CFG { 20 } else { 16 };
        config[at] = CAP_ID_VENDOR;
        config[at + 1] = next;
        config[at + 2] = len;
        config[at + 3] = cfg_type;
        config[at + 4] = region.bar;
        config[at + 8..at + 12].copy_from_slice(&region.offset.to_le_bytes());
        config[at + 12..at + 16].copy_from_slice(&region.length.to_le_bytes());
        if cfg_type == CAP_NOTIFY_CFG {
            config[at + 16..at + 20].copy_from_slice(&4u32.to_le_bytes());
        }
    }

    /// The configuration space QEMU 10.0's modern virtio-pci device shows
    /// (vendor 1af4, device 1079): an MSI-X capability first, then the
    /// virtio structures in BAR 4.
    pub(crate) fn qemu_like_config() -> Vec<u8> {
        let mut c = vec![0u8; 256];
        c[0..2].copy_from_slice(&0x1af4u16.to_le_bytes());
        c[2..4].copy_from_slice(&0x1079u16.to_le_bytes());
        c[PCI_STATUS..PCI_STATUS + 2].copy_from_slice(&STATUS_CAP_LIST.to_le_bytes());
        c[PCI_CAPABILITY_LIST] = 0x98;
        // MSI-X (ID 0x11) at 0x98 -> 0x84.
        c[0x98] = 0x11;
        c[0x99] = 0x84;
        let r = |offset, length| CapRegion {
            bar: 4,
            offset,
            length,
        };
        put_cap(&mut c, 0x84, 0x70, 9, r(0, 0)); // PCI cfg access (type 5 below)
        c[0x84 + 3] = 5;
        put_cap(&mut c, 0x70, 0x60, CAP_NOTIFY_CFG, r(0x3000, 0x1000));
        put_cap(&mut c, 0x60, 0x50, CAP_DEVICE_CFG, r(0x2000, 0x1000));
        put_cap(&mut c, 0x50, 0x40, CAP_ISR_CFG, r(0x1000, 0x1000));
        put_cap(&mut c, 0x40, 0x00, CAP_COMMON_CFG, r(0, 0x1000));
        c
    }

    #[test]
    fn parses_a_qemu_like_function() {
        let caps = parse(&qemu_like_config()).unwrap();
        let r = |offset, length| CapRegion {
            bar: 4,
            offset,
            length,
        };
        assert_eq!(
            caps,
            VirtioCaps {
                common: r(0, 0x1000),
                notify: r(0x3000, 0x1000),
                notify_off_multiplier: 4,
                isr: r(0x1000, 0x1000),
                device: Some(r(0x2000, 0x1000)),
            }
        );
    }

    #[test]
    fn rejects_bad_lists() {
        assert_eq!(parse(&[0; 10]), Err(CapsError::Short(10)));
        let mut c = qemu_like_config();
        c[PCI_STATUS] = 0;
        assert_eq!(parse(&c), Err(CapsError::NoCapList));

        let mut c = qemu_like_config();
        c[0x41] = 0x98; // common -> MSI-X: a loop
        assert_eq!(parse(&c), Err(CapsError::Loop));

        let mut c = qemu_like_config();
        c[0x99] = 0xfc; // pointer to the last dword: body out of bounds
        c[0xfc] = CAP_ID_VENDOR;
        c[0xfe] = 16;
        assert!(matches!(parse(&c), Err(CapsError::OutOfBounds(0xfc))));

        let mut c = qemu_like_config();
        c[0x99] = 0x10; // into the header
        assert_eq!(parse(&c), Err(CapsError::OutOfBounds(0x10)));

        let mut c = qemu_like_config();
        c[0x53] = 0x77; // the ISR capability becomes an unknown type
        assert_eq!(parse(&c), Err(CapsError::Missing("ISR")));

        let mut c = qemu_like_config();
        c[0x44] = 6; // common in BAR 6
        assert!(matches!(
            parse(&c),
            Err(CapsError::Bad { what: "common", .. })
        ));

        let mut c = qemu_like_config();
        c[0x4c..0x50].copy_from_slice(&0x10u32.to_le_bytes()); // common too short
        assert!(matches!(
            parse(&c),
            Err(CapsError::Bad { what: "common", .. })
        ));

        let mut c = qemu_like_config();
        c[0x72] = 16; // notify without its multiplier
        assert!(matches!(
            parse(&c),
            Err(CapsError::Bad { what: "notify", .. })
        ));
    }
}

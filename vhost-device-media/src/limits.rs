//! Limits the daemon enforces on what an untrusted guest may ask for.
//!
//! They are advertised to the driver in the configuration space (spec,
//! "Device configuration layout"), checked on every request, and bound the
//! daemon's memory: nothing the guest sends can make it grow past them.

use mediaredir_proto::ProtoError;
use mediaredir_proto::control;
use mediaredir_proto::device::{DeviceConfig, DeviceLimits, HARD_MAX_CODEC_DATA};

/// Configurable limits of one device instance: the limits it advertises
/// (the spec's [`DeviceLimits`]) and what only the vhost-user side needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// What the configuration space advertises and every request is
    /// checked against.
    pub device: DeviceLimits,
    /// Largest virtqueue size the device accepts.
    pub queue_size: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            device: DeviceLimits {
                num_txqs: 4,
                max_presentations: 16,
                max_streams: 64,
                max_buffer_bytes: 4 << 20,
                max_inflight_bytes: 16 << 20,
                max_inflight_ms: 4000,
                max_codec_data: HARD_MAX_CODEC_DATA,
                max_sdp: 16 << 10,
                max_call_sessions: 4,
            },
            queue_size: 1024,
        }
    }
}

/// A limit that cannot be honoured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitError {
    /// The configuration space cannot advertise it (a rule of the spec,
    /// [`DeviceLimits::validate`]).
    #[error("limit {0}")]
    Advertised(#[from] ProtoError),
    /// This daemon does not honour it.
    #[error("limit {name} = {value}: {reason}")]
    Daemon {
        /// Limit name.
        name: &'static str,
        /// Value given.
        value: u64,
        /// Why it is refused.
        reason: &'static str,
    },
}

impl Limits {
    /// Checks the limits against the spec's rules and what the daemon can
    /// serve: a data buffer has room for a payload, a device takes at least
    /// one presentation and one stream, and a virtqueue size is one the
    /// virtio rings allow.
    pub fn validate(&self) -> Result<(), LimitError> {
        self.device.validate()?;
        let err = |name, value: u32, reason| {
            Err(LimitError::Daemon {
                name,
                value: u64::from(value),
                reason,
            })
        };
        let device = &self.device;
        if device.max_buffer_bytes == 0 {
            return err("max_buffer_bytes", 0, "must be nonzero");
        }
        if device.max_presentations == 0 || device.max_streams == 0 {
            return err("max_streams", device.max_streams, "must be nonzero");
        }
        if !self.queue_size.is_power_of_two() || self.queue_size > 32768 {
            return err(
                "queue_size",
                u32::from(self.queue_size),
                "must be a power of two <= 32768",
            );
        }
        Ok(())
    }

    /// The configuration space for these limits.
    pub fn device_config(&self, generation: u32, client_connected: bool) -> DeviceConfig {
        DeviceConfig {
            generation,
            client_connected,
            limits: self.device,
        }
    }

    /// The decoder limits for control requests.
    pub fn decode_limits(&self) -> control::Limits {
        control::Limits::from(&self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediaredir_proto::device::{HARD_MAX_BUFFER_BYTES, HARD_MAX_SDP};

    #[test]
    fn defaults_are_valid_and_advertised() {
        let limits = Limits::default();
        assert_eq!(limits.validate(), Ok(()));
        let config = limits.device_config(3, false);
        assert_eq!(DeviceConfig::decode(&config.to_bytes()), Ok(config));
    }

    /// The default limits with `change` made to the advertised ones.
    fn device(change: fn(&mut DeviceLimits)) -> Limits {
        let mut limits = Limits::default();
        change(&mut limits.device);
        limits
    }

    #[test]
    fn rejects_impossible_limits() {
        let bad = [
            device(|d| d.num_txqs = 0),
            device(|d| d.max_buffer_bytes = HARD_MAX_BUFFER_BYTES + 1),
            device(|d| d.max_buffer_bytes = 0),
            device(|d| d.max_inflight_bytes = 1),
            Limits {
                queue_size: 1000,
                ..Limits::default()
            },
            device(|d| d.max_sdp = HARD_MAX_SDP + 1),
        ];
        for limits in bad {
            assert!(limits.validate().is_err(), "{limits:?}");
        }
    }
}

//! Limits the daemon enforces on what an untrusted guest may ask for.
//!
//! They are advertised to the driver in the configuration space (spec,
//! "Device configuration layout"), checked on every request, and bound the
//! daemon's memory: nothing the guest sends can make it grow past them.

use mediaredir_proto::control;
use mediaredir_proto::device::{
    DeviceConfig, HARD_MAX_BUFFER_BYTES, HARD_MAX_CODEC_DATA, HARD_MAX_SDP, MAX_TXQS,
};

/// Configurable limits of one device instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Playback data queues.
    pub num_txqs: u32,
    /// Presentations at once.
    pub max_presentations: u32,
    /// Streams at once, over all presentations.
    pub max_streams: u32,
    /// Payload bytes of one data buffer.
    pub max_buffer_bytes: u32,
    /// Payload bytes in flight per stream.
    pub max_inflight_bytes: u32,
    /// Media duration in flight per stream, in milliseconds.
    pub max_inflight_ms: u32,
    /// Codec data bytes.
    pub max_codec_data: u32,
    /// SDP bytes.
    pub max_sdp: u32,
    /// Call sessions at once.
    pub max_call_sessions: u32,
    /// Largest virtqueue size the device accepts.
    pub queue_size: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            num_txqs: 4,
            max_presentations: 16,
            max_streams: 64,
            max_buffer_bytes: 4 << 20,
            max_inflight_bytes: 16 << 20,
            max_inflight_ms: 4000,
            max_codec_data: HARD_MAX_CODEC_DATA,
            max_sdp: 16 << 10,
            max_call_sessions: 4,
            queue_size: 1024,
        }
    }
}

/// A limit that cannot be honoured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("limit {name} = {value}: {reason}")]
pub struct LimitError {
    /// Limit name.
    pub name: &'static str,
    /// Value given.
    pub value: u64,
    /// Why it is refused.
    pub reason: &'static str,
}

impl Limits {
    /// Checks the limits against the spec's hard ceilings.
    pub fn validate(&self) -> Result<(), LimitError> {
        let err = |name, value: u32, reason| {
            Err(LimitError {
                name,
                value: u64::from(value),
                reason,
            })
        };
        if self.num_txqs == 0 || self.num_txqs > MAX_TXQS {
            return err("num_txqs", self.num_txqs, "must be 1..=64");
        }
        if self.max_buffer_bytes == 0 || self.max_buffer_bytes > HARD_MAX_BUFFER_BYTES {
            return err(
                "max_buffer_bytes",
                self.max_buffer_bytes,
                "must be 1..=16 MiB",
            );
        }
        if self.max_inflight_bytes < self.max_buffer_bytes {
            return err(
                "max_inflight_bytes",
                self.max_inflight_bytes,
                "must be >= max_buffer_bytes",
            );
        }
        if self.max_codec_data > HARD_MAX_CODEC_DATA {
            return err("max_codec_data", self.max_codec_data, "must be <= 64 KiB");
        }
        if self.max_sdp > HARD_MAX_SDP {
            return err("max_sdp", self.max_sdp, "must be <= 64 KiB");
        }
        if self.max_presentations == 0 || self.max_streams == 0 {
            return err("max_streams", self.max_streams, "must be nonzero");
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
            num_txqs: self.num_txqs,
            max_presentations: self.max_presentations,
            max_streams: self.max_streams,
            max_buffer_bytes: self.max_buffer_bytes,
            max_inflight_bytes: self.max_inflight_bytes,
            max_inflight_ms: self.max_inflight_ms,
            max_codec_data: self.max_codec_data,
            max_sdp: self.max_sdp,
            max_call_sessions: self.max_call_sessions,
        }
    }

    /// The decoder limits for control requests.
    pub fn decode_limits(&self) -> control::Limits {
        control::Limits {
            max_codec_data: self.max_codec_data,
            max_sdp: self.max_sdp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_advertised() {
        let limits = Limits::default();
        assert_eq!(limits.validate(), Ok(()));
        let config = limits.device_config(3, false);
        assert_eq!(DeviceConfig::decode(&config.to_bytes()), Ok(config));
    }

    #[test]
    fn rejects_impossible_limits() {
        let bad = [
            Limits {
                num_txqs: 0,
                ..Limits::default()
            },
            Limits {
                max_buffer_bytes: HARD_MAX_BUFFER_BYTES + 1,
                ..Limits::default()
            },
            Limits {
                max_inflight_bytes: 1,
                ..Limits::default()
            },
            Limits {
                queue_size: 1000,
                ..Limits::default()
            },
            Limits {
                max_sdp: HARD_MAX_SDP + 1,
                ..Limits::default()
            },
        ];
        for limits in bad {
            assert!(limits.validate().is_err(), "{limits:?}");
        }
    }
}

//! Device identity: the virtio device ID, feature bits, virtqueue layout and
//! configuration space (spec, "Device ID" to "Device configuration layout").

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, IntoBytes};

use crate::ProtoError;
use crate::layout::virtio_struct;

/// Provisional virtio device ID of the media-redirection device.
///
/// Unassigned by the virtio TC at the time of writing (a registration request
/// is drafted in the spec's appendix). Never 48: that is virtio-media, a
/// different device that carries V4L2 ioctls so the host decodes.
pub const VIRTIO_ID_MEDIA_REDIR: u32 = 57;

/// PCI device ID of a modern (virtio 1.x) PCI function of this device.
pub const PCI_DEVICE_ID: u16 = 0x1040 + 57;

/// Device name, as QEMU's virtio name table should call it.
pub const DEVICE_NAME: &str = "virtio-media-redir";

/// Feature bit: the device supports capture streams (queue `capq`).
pub const F_CAPTURE: u32 = 0;
/// Feature bit: the device supports call media sessions.
pub const F_CALL: u32 = 1;
/// Feature bit: data headers carry per-buffer clipping (`clip_start`,
/// `clip_end`: encoder delay and padding to drop from decoded audio).
pub const F_CLIPPING: u32 = 2;
/// Feature bit: the device reports its measurement of the link to the
/// client (`LINK_QUALITY` events).
pub const F_LINK_QUALITY: u32 = 3;

/// Transport feature bits this device offers (virtio 1.x numbering).
pub mod transport {
    /// VIRTIO_F_INDIRECT_DESC.
    pub const F_INDIRECT_DESC: u32 = 28;
    /// VIRTIO_F_RING_EVENT_IDX.
    pub const F_EVENT_IDX: u32 = 29;
    /// VIRTIO_F_VERSION_1 (required).
    pub const F_VERSION_1: u32 = 32;
}

/// Every feature bit the device may offer, as a mask.
pub const OFFERED_FEATURES: u64 = (1 << F_CAPTURE)
    | (1 << F_CALL)
    | (1 << F_CLIPPING)
    | (1 << F_LINK_QUALITY)
    | (1 << transport::F_INDIRECT_DESC)
    | (1 << transport::F_EVENT_IDX)
    | (1 << transport::F_VERSION_1);

/// Index of the control queue.
pub const CONTROLQ: u16 = 0;
/// Index of the event queue.
pub const EVENTQ: u16 = 1;
/// Index of the capture data queue (device to driver).
pub const CAPQ: u16 = 2;
/// Index of the first playback data queue; txq `n` is queue `TXQ_BASE + n`.
pub const TXQ_BASE: u16 = 3;
/// Most playback data queues a device may have.
pub const MAX_TXQS: u32 = 64;

/// Queue index of playback data queue `txq`.
pub fn txq_index(txq: u16) -> u16 {
    TXQ_BASE + txq
}

/// Total number of virtqueues of a device with `num_txqs` playback queues.
pub fn queue_count(num_txqs: u32) -> u32 {
    u32::from(TXQ_BASE) + num_txqs
}

/// Largest payload of one data buffer, whatever the configuration says.
pub const HARD_MAX_BUFFER_BYTES: u32 = 16 << 20;
/// Largest codec data, whatever the configuration says.
pub const HARD_MAX_CODEC_DATA: u32 = 64 << 10;
/// Largest SDP, whatever the configuration says.
pub const HARD_MAX_SDP: u32 = 64 << 10;

/// `client_state`: no client connected.
pub const CLIENT_NONE: u32 = 0;
/// `client_state`: a client is connected.
pub const CLIENT_CONNECTED: u32 = 1;

virtio_struct! {
    /// Configuration space as it lies in the device (`struct
    /// virtio_media_redir_config`, 48 bytes, little-endian).
    pub struct RawConfig {
        /// Nonzero; new each time the device instance starts.
        pub generation: U32,
        /// 0 no client, 1 connected.
        pub client_state: U32,
        /// Number of playback data queues (>= 1).
        pub num_txqs: U32,
        /// Most presentations at once.
        pub max_presentations: U32,
        /// Most streams at once, over all presentations.
        pub max_streams: U32,
        /// Largest payload of one data buffer.
        pub max_buffer_bytes: U32,
        /// Payload bytes the device holds per stream before it stops taking more.
        pub max_inflight_bytes: U32,
        /// Media duration (ms) the device holds per stream likewise.
        pub max_inflight_ms: U32,
        /// Largest codec data.
        pub max_codec_data: U32,
        /// Largest SDP.
        pub max_sdp: U32,
        /// Most call sessions at once.
        pub max_call_sessions: U32,
        /// Reserved, zero.
        pub reserved: U32,
    }
}

/// Size of the configuration space.
pub const CONFIG_SIZE: usize = size_of::<RawConfig>();

/// A configuration field that breaks a rule of the spec.
fn invalid(field: &'static str, value: u32, reason: &'static str) -> ProtoError {
    ProtoError::InvalidField {
        field,
        value: u64::from(value),
        reason,
    }
}

/// The limits a device advertises in its configuration space: what a
/// driver may ask of it. The spec's definition, which the device takes as
/// its configuration and the driver reads back ([`DeviceConfig::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceLimits {
    /// Number of playback data queues (1..=[`MAX_TXQS`]).
    pub num_txqs: u32,
    /// Most presentations at once.
    pub max_presentations: u32,
    /// Most streams at once, over all presentations.
    pub max_streams: u32,
    /// Largest payload of one data buffer (at most [`HARD_MAX_BUFFER_BYTES`]).
    pub max_buffer_bytes: u32,
    /// Per-stream in-flight byte credit (at least `max_buffer_bytes`).
    pub max_inflight_bytes: u32,
    /// Per-stream in-flight media duration credit, in milliseconds.
    pub max_inflight_ms: u32,
    /// Largest codec data (at most [`HARD_MAX_CODEC_DATA`]).
    pub max_codec_data: u32,
    /// Largest SDP (at most [`HARD_MAX_SDP`]).
    pub max_sdp: u32,
    /// Most call sessions at once.
    pub max_call_sessions: u32,
}

impl DeviceLimits {
    /// Checks the spec's rules for the advertised limits: the number of
    /// playback queues, the hard ceilings, and an in-flight credit that
    /// holds at least one buffer. Both a device configuring itself and a
    /// driver reading the configuration space apply them.
    pub fn validate(&self) -> Result<(), ProtoError> {
        if self.num_txqs == 0 || self.num_txqs > MAX_TXQS {
            return Err(invalid("num_txqs", self.num_txqs, "must be 1..=64"));
        }
        let ceilings = [
            (
                "max_buffer_bytes",
                self.max_buffer_bytes,
                HARD_MAX_BUFFER_BYTES,
            ),
            ("max_codec_data", self.max_codec_data, HARD_MAX_CODEC_DATA),
            ("max_sdp", self.max_sdp, HARD_MAX_SDP),
        ];
        for (name, value, max) in ceilings {
            if value > max {
                return Err(invalid(name, value, "exceeds the hard ceiling"));
            }
        }
        if self.max_inflight_bytes < self.max_buffer_bytes {
            return Err(invalid(
                "max_inflight_bytes",
                self.max_inflight_bytes,
                "must be >= max_buffer_bytes",
            ));
        }
        Ok(())
    }
}

/// Validated configuration space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Device instance generation (nonzero).
    pub generation: u32,
    /// Whether a client is connected.
    pub client_connected: bool,
    /// The advertised limits.
    pub limits: DeviceLimits,
}

impl DeviceConfig {
    /// The layout in the configuration space.
    pub fn to_raw(&self) -> RawConfig {
        let limits = &self.limits;
        RawConfig {
            generation: self.generation.into(),
            client_state: u32::from(self.client_connected).into(),
            num_txqs: limits.num_txqs.into(),
            max_presentations: limits.max_presentations.into(),
            max_streams: limits.max_streams.into(),
            max_buffer_bytes: limits.max_buffer_bytes.into(),
            max_inflight_bytes: limits.max_inflight_bytes.into(),
            max_inflight_ms: limits.max_inflight_ms.into(),
            max_codec_data: limits.max_codec_data.into(),
            max_sdp: limits.max_sdp.into(),
            max_call_sessions: limits.max_call_sessions.into(),
            reserved: 0.into(),
        }
    }

    /// The configuration space bytes.
    pub fn to_bytes(&self) -> [u8; CONFIG_SIZE] {
        let mut out = [0u8; CONFIG_SIZE];
        out.copy_from_slice(self.to_raw().as_bytes());
        out
    }

    /// Decodes and checks configuration space bytes (what a driver reads).
    pub fn decode(bytes: &[u8]) -> Result<DeviceConfig, ProtoError> {
        let raw = RawConfig::read_from_bytes(bytes).map_err(|_| ProtoError::Truncated {
            what: "configuration space",
            need: CONFIG_SIZE,
            got: bytes.len(),
        })?;
        let config = DeviceConfig {
            generation: raw.generation.get(),
            client_connected: match raw.client_state.get() {
                CLIENT_NONE => false,
                CLIENT_CONNECTED => true,
                other => return Err(invalid("client_state", other, "must be 0 or 1")),
            },
            limits: DeviceLimits {
                num_txqs: raw.num_txqs.get(),
                max_presentations: raw.max_presentations.get(),
                max_streams: raw.max_streams.get(),
                max_buffer_bytes: raw.max_buffer_bytes.get(),
                max_inflight_bytes: raw.max_inflight_bytes.get(),
                max_inflight_ms: raw.max_inflight_ms.get(),
                max_codec_data: raw.max_codec_data.get(),
                max_sdp: raw.max_sdp.get(),
                max_call_sessions: raw.max_call_sessions.get(),
            },
        };
        if config.generation == 0 {
            return Err(invalid("generation", 0, "must be nonzero"));
        }
        config.limits.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> DeviceConfig {
        DeviceConfig {
            generation: 0x1234_5678,
            client_connected: true,
            limits: DeviceLimits {
                num_txqs: 4,
                max_presentations: 16,
                max_streams: 64,
                max_buffer_bytes: 4 << 20,
                max_inflight_bytes: 32 << 20,
                max_inflight_ms: 3000,
                max_codec_data: 64 << 10,
                max_sdp: 16 << 10,
                max_call_sessions: 4,
            },
        }
    }

    #[test]
    fn layout_is_48_bytes_little_endian() {
        assert_eq!(CONFIG_SIZE, 48);
        let bytes = sample().to_bytes();
        assert_eq!(&bytes[0..4], &[0x78, 0x56, 0x34, 0x12]);
        assert_eq!(&bytes[8..12], &[4, 0, 0, 0]);
        assert_eq!(DeviceConfig::decode(&bytes), Ok(sample()));
    }

    #[test]
    fn rejects_bad_fields() {
        let mut c = sample();
        c.generation = 0;
        assert!(DeviceConfig::decode(&c.to_bytes()).is_err());
        let mut c = sample();
        c.limits.num_txqs = 0;
        assert!(DeviceConfig::decode(&c.to_bytes()).is_err());
        let mut c = sample();
        c.limits.max_buffer_bytes = HARD_MAX_BUFFER_BYTES + 1;
        c.limits.max_inflight_bytes = u32::MAX;
        assert!(DeviceConfig::decode(&c.to_bytes()).is_err());
        let mut bytes = sample().to_bytes();
        bytes[4] = 2;
        assert!(DeviceConfig::decode(&bytes).is_err());
        assert!(DeviceConfig::decode(&bytes[..47]).is_err());
    }

    #[test]
    fn ids_and_queues() {
        assert_ne!(VIRTIO_ID_MEDIA_REDIR, 48);
        assert_eq!(PCI_DEVICE_ID, 0x1079);
        assert_eq!(queue_count(4), 7);
        assert_eq!(txq_index(1), 4);
    }
}

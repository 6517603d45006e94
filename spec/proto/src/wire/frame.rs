//! The fixed 16-byte prefix of every frame, and the protocol's constants.

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::WireError;

/// Major protocol version. Peers with different majors cannot talk: the
/// daemon answers a `Hello` of another major with a fatal `ProtocolError`.
pub const PROTOCOL_MAJOR: u16 = 1;

/// Minor protocol version. A newer minor only adds; peers use the smaller
/// of the two minors they announced.
pub const PROTOCOL_MINOR: u16 = 2;

/// Name of the Spice port channel that carries the frames.
pub const SPICE_PORT_NAME: &str = "org.spice-space.media-redir.0";

/// First word of every frame: the bytes `"MRW1"` read as a little-endian u32.
pub const MAGIC: u32 = 0x3157_524D;

/// FlatBuffers file identifier of the header (`file_identifier` in the schema).
pub const FILE_IDENTIFIER: &str = "MRW1";

/// Size of [`FramePrefix`] in bytes.
pub const PREFIX_LEN: usize = 16;

/// Smallest `header_len` a prefix may announce: a FlatBuffer's root offset
/// plus its file identifier.
pub const MIN_HEADER_LEN: usize = 8;

/// Largest `header_len` a prefix may announce (64 KiB).
pub const MAX_HEADER_LEN: usize = 128 << 10;

/// Largest `payload_len` a prefix may announce (16 MiB, the hard ceiling of a
/// data buffer's payload).
pub const MAX_PAYLOAD_LEN: usize = 16 << 20;

/// Largest frame on the wire: prefix, largest header, largest payload. No
/// reader of this module ever buffers more than this.
pub const MAX_FRAME_LEN: usize = PREFIX_LEN + MAX_HEADER_LEN + MAX_PAYLOAD_LEN;

/// The 16-byte prefix of a frame, exactly as on the wire (all little-endian).
///
/// A prefix obtained from [`FramePrefix::new`] or [`FramePrefix::decode`] is
/// valid: known magic, lengths within their limits, reserved word zero. One
/// made from raw bytes through the zerocopy traits is not checked.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct FramePrefix {
    magic: U32,
    header_len: U32,
    payload_len: U32,
    reserved: U32,
}

const _: () = assert!(size_of::<FramePrefix>() == PREFIX_LEN);

impl FramePrefix {
    /// A prefix for a header of `header_len` bytes followed by `payload_len`
    /// payload bytes.
    ///
    /// # Errors
    /// [`WireError::HeaderLength`] or [`WireError::PayloadTooLarge`] when a
    /// length is outside its limit.
    pub fn new(header_len: usize, payload_len: usize) -> Result<Self, WireError> {
        let header = u32::try_from(header_len)
            .ok()
            .filter(|_| (MIN_HEADER_LEN..=MAX_HEADER_LEN).contains(&header_len))
            .ok_or(WireError::HeaderLength(header_len))?;
        let payload = u32::try_from(payload_len)
            .ok()
            .filter(|_| payload_len <= MAX_PAYLOAD_LEN)
            .ok_or(WireError::PayloadTooLarge(payload_len))?;
        Ok(Self {
            magic: U32::new(MAGIC),
            header_len: U32::new(header),
            payload_len: U32::new(payload),
            reserved: U32::new(0),
        })
    }

    /// Parses and checks a prefix received from the peer.
    ///
    /// # Errors
    /// [`WireError::BadMagic`], [`WireError::HeaderLength`],
    /// [`WireError::PayloadTooLarge`] or [`WireError::ReservedNonZero`].
    pub fn decode(bytes: &[u8; PREFIX_LEN]) -> Result<Self, WireError> {
        let prefix: Self = zerocopy::transmute!(*bytes);
        if prefix.magic.get() != MAGIC {
            return Err(WireError::BadMagic(prefix.magic.get()));
        }
        let header_len = prefix.header_len();
        if !(MIN_HEADER_LEN..=MAX_HEADER_LEN).contains(&header_len) {
            return Err(WireError::HeaderLength(header_len));
        }
        if prefix.payload_len() > MAX_PAYLOAD_LEN {
            return Err(WireError::PayloadTooLarge(prefix.payload_len()));
        }
        if prefix.reserved.get() != 0 {
            return Err(WireError::ReservedNonZero(prefix.reserved.get()));
        }
        Ok(prefix)
    }

    /// The prefix's 16 bytes as they go on the wire.
    pub fn encode(&self) -> [u8; PREFIX_LEN] {
        let mut out = [0; PREFIX_LEN];
        out.copy_from_slice(self.as_bytes());
        out
    }

    /// Length of the FlatBuffers header that follows the prefix.
    pub fn header_len(&self) -> usize {
        self.header_len.get() as usize
    }

    /// Length of the raw payload that follows the header.
    pub fn payload_len(&self) -> usize {
        self.payload_len.get() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(magic: u32, header: u32, payload: u32, reserved: u32) -> [u8; 16] {
        let mut b = [0; 16];
        b[0..4].copy_from_slice(&magic.to_le_bytes());
        b[4..8].copy_from_slice(&header.to_le_bytes());
        b[8..12].copy_from_slice(&payload.to_le_bytes());
        b[12..16].copy_from_slice(&reserved.to_le_bytes());
        b
    }

    #[test]
    fn magic_spells_mrw1() {
        assert_eq!(&MAGIC.to_le_bytes(), b"MRW1");
        assert_eq!(FILE_IDENTIFIER.as_bytes(), b"MRW1");
    }

    #[test]
    fn round_trip_and_layout() {
        let p = FramePrefix::new(100, 7).unwrap();
        let bytes = p.encode();
        assert_eq!(bytes, raw(MAGIC, 100, 7, 0));
        let q = FramePrefix::decode(&bytes).unwrap();
        assert_eq!(p, q);
        assert_eq!(q.header_len(), 100);
        assert_eq!(q.payload_len(), 7);
    }

    #[test]
    fn header_len_limits() {
        let max = u32::try_from(MAX_HEADER_LEN).unwrap();
        let min = u32::try_from(MIN_HEADER_LEN).unwrap();
        assert!(FramePrefix::decode(&raw(MAGIC, max, 0, 0)).is_ok());
        assert!(FramePrefix::decode(&raw(MAGIC, min, 0, 0)).is_ok());
        assert_eq!(
            FramePrefix::decode(&raw(MAGIC, max + 1, 0, 0)),
            Err(WireError::HeaderLength(MAX_HEADER_LEN + 1))
        );
        assert_eq!(
            FramePrefix::decode(&raw(MAGIC, min - 1, 0, 0)),
            Err(WireError::HeaderLength(MIN_HEADER_LEN - 1))
        );
        assert_eq!(
            FramePrefix::decode(&raw(MAGIC, u32::MAX, 0, 0)),
            Err(WireError::HeaderLength(u32::MAX as usize))
        );
        assert!(FramePrefix::new(MAX_HEADER_LEN, 0).is_ok());
        assert_eq!(
            FramePrefix::new(MAX_HEADER_LEN + 1, 0),
            Err(WireError::HeaderLength(MAX_HEADER_LEN + 1))
        );
        assert_eq!(FramePrefix::new(0, 0), Err(WireError::HeaderLength(0)));
    }

    #[test]
    fn payload_len_limits() {
        let max = u32::try_from(MAX_PAYLOAD_LEN).unwrap();
        assert!(FramePrefix::decode(&raw(MAGIC, 8, max, 0)).is_ok());
        assert_eq!(
            FramePrefix::decode(&raw(MAGIC, 8, max + 1, 0)),
            Err(WireError::PayloadTooLarge(MAX_PAYLOAD_LEN + 1))
        );
        assert!(FramePrefix::new(8, MAX_PAYLOAD_LEN).is_ok());
        assert_eq!(
            FramePrefix::new(8, MAX_PAYLOAD_LEN + 1),
            Err(WireError::PayloadTooLarge(MAX_PAYLOAD_LEN + 1))
        );
        assert_eq!(
            FramePrefix::new(8, usize::MAX),
            Err(WireError::PayloadTooLarge(usize::MAX))
        );
    }

    #[test]
    fn magic_and_reserved_checked() {
        assert_eq!(
            FramePrefix::decode(&raw(0x3157_524E, 8, 0, 0)),
            Err(WireError::BadMagic(0x3157_524E))
        );
        assert_eq!(
            FramePrefix::decode(&raw(MAGIC.swap_bytes(), 8, 0, 0)),
            Err(WireError::BadMagic(MAGIC.swap_bytes()))
        );
        assert_eq!(
            FramePrefix::decode(&raw(MAGIC, 8, 0, 1)),
            Err(WireError::ReservedNonZero(1))
        );
    }
}

//! The response header that starts the writable part of every control
//! chain: the request's status and the created or targeted id.

use zerocopy::IntoBytes;

use super::RawRespHdr;
use super::bytes::read_prefix;
use crate::ProtoError;
use crate::status::Status;

/// A decoded response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// Status of the request.
    pub status: Status,
    /// Created id, or the target echoed.
    pub id: u32,
}

impl ResponseHeader {
    /// Size of the response header.
    pub const SIZE: usize = size_of::<RawRespHdr>();

    /// The 16 header bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let raw = RawRespHdr {
            status: self.status.as_u32().into(),
            id: self.id.into(),
            reserved: [0.into(), 0.into()],
        };
        let mut out = [0u8; Self::SIZE];
        out.copy_from_slice(raw.as_bytes());
        out
    }

    /// Decodes a response header (the driver's side).
    pub fn decode(bytes: &[u8]) -> Result<(ResponseHeader, &[u8]), ProtoError> {
        let (raw, rest): (RawRespHdr, _) = read_prefix(bytes, "response header")?;
        Ok((
            ResponseHeader {
                status: Status::from_u32(raw.status.get())?,
                id: raw.id.get(),
            },
            rest,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::ResponseHeader;
    use crate::status::Status;

    #[test]
    fn response_header_round_trip() {
        let hdr = ResponseHeader {
            status: Status::BadState,
            id: 9,
        };
        let bytes = hdr.to_bytes();
        assert_eq!(&bytes[0..4], &[3, 0, 0, 0]);
        assert_eq!(ResponseHeader::decode(&bytes), Ok((hdr, &[][..])));
    }
}

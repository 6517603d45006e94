//! The control queue's structures exactly as the spec lays them out in
//! guest memory: `#[repr(C)]`, little-endian, no padding, read and written
//! with `zerocopy`. The typed values built from them are in `request` and
//! `bodies`.

use crate::layout::virtio_struct;
use zerocopy::little_endian::{I32, U32, U64};

virtio_struct! {
    /// `struct virtio_media_redir_ctrl_hdr` (16 bytes).
    pub struct RawCtrlHdr {
        /// Request code.
        pub code: U32,
        /// Generation the driver read from the configuration space.
        pub generation: U32,
        /// Presentation, stream or session id; 0 when the request has none.
        pub target: U32,
        /// Reserved, zero.
        pub reserved: U32,
    }
}

virtio_struct! {
    /// `struct virtio_media_redir_resp_hdr` (16 bytes).
    pub struct RawRespHdr {
        /// Status code.
        pub status: U32,
        /// Created id, or the target echoed.
        pub id: U32,
        /// Reserved, zero.
        pub reserved: [U32; 2],
    }
}

virtio_struct! {
    /// `struct virtio_media_redir_stream_format` (48 bytes); codec data follows.
    pub struct RawStreamFormat {
        /// Codec number.
        pub codec: U32,
        /// 0 playback, 1 capture.
        pub direction: U32,
        /// Playback: txq index; capture: 0.
        pub txq: U32,
        /// Capture: the client's source id; playback: 0.
        pub source_id: U32,
        /// Video width (pixels); 0 for audio.
        pub width: U32,
        /// Video height (pixels); 0 for audio.
        pub height: U32,
        /// Frame rate numerator; 0 if unknown.
        pub fps_num: U32,
        /// Frame rate denominator; 0 if unknown.
        pub fps_den: U32,
        /// Audio sample rate (Hz); 0 for video.
        pub sample_rate: U32,
        /// Audio channels; 0 for video.
        pub channels: U32,
        /// Bit rate hint or capture target (bit/s); 0 if unset.
        pub bitrate: U32,
        /// Bytes of codec data that follow.
        pub codec_data_len: U32,
    }
}

virtio_struct! {
    /// `struct virtio_media_redir_rect` (16 bytes).
    pub struct RawRect {
        /// Left edge.
        pub x: I32,
        /// Top edge.
        pub y: I32,
        /// Width.
        pub width: U32,
        /// Height.
        pub height: U32,
    }
}

virtio_struct! {
    /// `struct virtio_media_redir_geometry` (48 bytes); clip rects follow.
    pub struct RawGeometry {
        /// Guest display (monitor) index.
        pub display_id: U32,
        /// Bit 0: visible; bit 1: colour key.
        pub flags: U32,
        /// Stacking order; higher is nearer the viewer.
        pub z: I32,
        /// Number of clip rectangles that follow (at most 16).
        pub num_clip_rects: U32,
        /// Where the video goes, in display pixels.
        pub dest: RawRect,
        /// Part of the picture shown; all zero means the whole picture.
        pub source: RawRect,
    }
}

virtio_struct! {
    /// Two 32-bit words: the body of several small requests.
    pub struct RawPair {
        /// First word (flags, rate, volume, hold, event, media mask, sdp_len).
        pub a: U32,
        /// Second word (reserved, mute, duration, sdp_len).
        pub b: U32,
    }
}

virtio_struct! {
    /// Body of `PRES_FLUSH` (16 bytes).
    pub struct RawFlush {
        /// Where the next buffers start (ns).
        pub position_ns: U64,
        /// Reserved, zero.
        pub flags: U32,
        /// Reserved, zero.
        pub reserved: U32,
    }
}

#[cfg(test)]
mod tests {
    use super::{RawGeometry, RawStreamFormat};
    use crate::control::fixtures::every_request;

    #[test]
    fn header_layout() {
        let bytes = every_request()[4].encode();
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[0..4], &[0x01, 0x01, 0, 0]);
        assert_eq!(&bytes[4..8], &[7, 0, 0, 0]);
        assert_eq!(&bytes[8..12], &[42, 0, 0, 0]);
        assert_eq!(size_of::<RawStreamFormat>(), 48);
        assert_eq!(size_of::<RawGeometry>(), 48);
    }
}

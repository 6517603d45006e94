//! Hashing of decoded media for verification: 64-bit FNV-1a (pure Rust,
//! tiny, deterministic across runs and machines; collision resistance does
//! not matter for comparing two decodes of the same file).
//!
//! A video frame's hash covers the visible pixels of each plane, row by row,
//! without stride padding; an audio stream's hash covers all its decoded
//! sample bytes concatenated.

use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// An incremental 64-bit FNV-1a hash. Feeding bytes in pieces gives the same
/// hash as feeding them at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(OFFSET)
    }
}

impl Fnv64 {
    /// The hash of nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
        self.0 = h;
    }

    /// Adds a `u64` (little-endian).
    pub fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// Hash of the visible pixels of every plane of `frame`, rows without their
/// stride padding.
pub fn hash_video_frame(frame: &gst_video::VideoFrameRef<&gstreamer::BufferRef>) -> u64 {
    let finfo = frame.format_info();
    let mut h = Fnv64::new();
    for plane in 0..frame.n_planes() {
        // The first component stored in this plane gives its width (in
        // pixels) and bytes per pixel; for packed planes (NV12's UV) the
        // pixel stride covers the interleaved components.
        let Some(comp) = (0..finfo.n_components()).find(|&c| finfo.plane()[c as usize] == plane)
        else {
            continue;
        };
        let width = frame.comp_width(comp) as usize;
        let height = frame.comp_height(comp) as usize;
        let pstride = usize::try_from(finfo.pixel_stride()[comp as usize].max(1)).unwrap_or(1);
        let row_bytes = width * pstride;
        let stride = usize::try_from(frame.plane_stride()[plane as usize]).unwrap_or(0);
        let Ok(data) = frame.plane_data(plane) else {
            continue;
        };
        for row in 0..height {
            let start = row * stride;
            if let Some(bytes) = data.get(start..start + row_bytes) {
                h.write(bytes);
            }
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_values() {
        assert_eq!(Fnv64::new().finish(), 0xcbf2_9ce4_8422_2325);
        let mut h = Fnv64::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        let mut h2 = Fnv64::new();
        h2.write(b"foo");
        assert_eq!(h2.finish(), 0xdcb2_7518_fed9_d577);
    }

    #[test]
    fn fnv_is_incremental() {
        let mut a = Fnv64::new();
        a.write(b"hello world");
        let mut b = Fnv64::new();
        b.write(b"hello");
        b.write(b" world");
        assert_eq!(a, b);
    }
}

//! Container structures built byte by byte, for tests that make a file a
//! tool does not write (or a piece of one): RIFF chunks (AVI, WAV) and MP4
//! boxes. The crate's unit tests use this file too (`src/lib.rs` includes
//! it), so there is one builder of each.

/// A RIFF chunk: `id`, the little-endian size, `body`, a pad byte after an
/// odd-sized body.
pub(crate) fn riff_chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.extend_from_slice(&u32::try_from(body.len()).expect("len").to_le_bytes());
    out.extend_from_slice(body);
    if body.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// An MP4 box: the big-endian size (header included), `kind`, `body`.
pub(crate) fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = u32::try_from(body.len() + 8)
        .expect("small")
        .to_be_bytes()
        .to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

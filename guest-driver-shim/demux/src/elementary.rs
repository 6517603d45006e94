//! Frame-by-frame reading of elementary audio streams (MP3, ADTS AAC),
//! where each frame header gives the length of its frame.
//!
//! There is no index: the first frame is only trusted when the frame after
//! it has a matching header too, so stray sync bytes before the audio do
//! not start a wrong stream; after that every frame must follow the one
//! before, and anything else is reported with its byte offset.

use crate::reader::Reader;
use crate::{DemuxError, tags};

/// How far junk before the first frame is searched.
const SCAN: usize = 64 << 10;
/// Longer than any MPEG audio or ADTS frame (ADTS: 13-bit length).
pub(crate) const MAX_FRAME: usize = 8192;

/// A frame header of an elementary stream.
pub(crate) trait FrameHeader: Sized + Copy {
    /// Parses a header at the start of `b`.
    fn parse(b: &[u8]) -> Option<Self>;
    /// Frame length with header; 0 when the header does not say (free format).
    fn len(&self) -> usize;
    /// Whether `other` can be the next frame of the stream that `self` began.
    fn same_stream(&self, other: &Self) -> bool;
}

/// What a search for the first frame found.
pub(crate) enum First<H> {
    /// A frame confirmed by the next one; the reader is at it.
    Found(H),
    /// Only headers without a frame length (MPEG audio free format).
    Unsized,
    /// Nothing.
    Nothing,
}

/// Searches from the reader's position for the first frame.
pub(crate) fn find_first<H: FrameHeader>(r: &mut Reader) -> Result<First<H>, DemuxError> {
    let remaining = r.remaining();
    let window = r.peek(SCAN + MAX_FRAME)?;
    let mut no_length = false;
    for p in 0..window.len().min(SCAN) {
        let Some(h) = H::parse(&window[p..]) else {
            continue;
        };
        if h.len() == 0 {
            no_length = true;
            continue;
        }
        let next = p + h.len();
        let confirmed = match window.get(next..) {
            Some(b) if !b.is_empty() => H::parse(b).is_some_and(|n| h.same_stream(&n)),
            // A stream of one frame that ends with the file.
            _ => next as u64 == remaining,
        };
        if confirmed {
            r.skip(p as u64);
            return Ok(First::Found(h));
        }
    }
    Ok(if no_length {
        First::Unsized
    } else {
        First::Nothing
    })
}

/// The next frame of the stream `first` began (header and bytes), `None`
/// at the reader's end. ID3v2 tags between frames are skipped, zeros after
/// the last frame ignored; a last frame cut by the end is an error unless
/// `cut_end_ok` (the caller cut the data itself).
pub(crate) fn next_frame<H: FrameHeader>(
    r: &mut Reader,
    first: &H,
    container: &'static str,
    cut_end_ok: bool,
) -> Result<Option<(H, Vec<u8>)>, DemuxError> {
    loop {
        let at = r.offset();
        let head = r.peek(10)?;
        if head.is_empty() {
            return Ok(None);
        }
        // A tag between frames: files cut from or joined with others.
        if let Some(len) = tags::id3v2_len(head, container, at)? {
            r.skip(len);
            continue;
        }
        let h = match H::parse(head) {
            Some(h) if first.same_stream(&h) && h.len() > 0 => h,
            _ => {
                if r.remaining() <= MAX_FRAME as u64 && r.peek(MAX_FRAME)?.iter().all(|&b| b == 0) {
                    return Ok(None);
                }
                return Err(DemuxError::corrupt(
                    container,
                    format!("no frame of this stream at byte {at}"),
                ));
            }
        };
        let Some(data) = r.take(h.len())? else {
            if cut_end_ok {
                return Ok(None);
            }
            return Err(DemuxError::corrupt(
                container,
                format!(
                    "the frame at byte {at} is cut: {} bytes, {} left in the file",
                    h.len(),
                    r.remaining()
                ),
            ));
        };
        return Ok(Some((h, data)));
    }
}

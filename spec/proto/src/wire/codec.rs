//! Framing: turning messages into `[prefix][header]` byte runs for a
//! vectored write, and reassembling frames from a byte stream.

use flatbuffers::FlatBufferBuilder;

use super::frame::{FramePrefix, MAX_HEADER_LEN, MAX_PAYLOAD_LEN, PREFIX_LEN};
use super::{Message, WireError};

/// Encodes `msg` as the first part of a frame whose payload is `payload_len`
/// bytes long, and returns prefix + header.
///
/// The payload itself is not touched: the caller writes the returned bytes
/// followed by the payload slices in one vectored write (`writev`), so media
/// bytes go from (guest) memory to the socket without a copy.
///
/// # Errors
/// [`WireError::UnexpectedPayload`] when `payload_len` is nonzero for a
/// message other than `Sample` and `CaptureSample`,
/// [`WireError::PayloadTooLarge`], any error of [`Message::validate`], and
/// [`WireError::HeaderTooLarge`] when the encoded header exceeds
/// [`MAX_HEADER_LEN`].
pub fn encode_frame(msg: &Message, payload_len: usize) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    encode_frame_into(&mut FlatBufferBuilder::new(), msg, payload_len, &mut out)?;
    Ok(out)
}

/// Like [`encode_frame`], but reuses `fbb` and `out` (which is cleared first)
/// so a sender allocates nothing per frame once they have grown.
///
/// # Errors
/// As [`encode_frame`]; `out` is left empty on error.
pub fn encode_frame_into(
    fbb: &mut FlatBufferBuilder<'_>,
    msg: &Message,
    payload_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    out.clear();
    check_payload(msg, payload_len)?;
    msg.validate()?;
    let header = msg.encode(fbb);
    if header.len() > MAX_HEADER_LEN {
        return Err(WireError::HeaderTooLarge(header.len()));
    }
    let prefix = FramePrefix::new(header.len(), payload_len)?;
    out.reserve(PREFIX_LEN + header.len());
    out.extend_from_slice(&prefix.encode());
    out.extend_from_slice(header);
    Ok(())
}

fn check_payload(msg: &Message, payload_len: usize) -> Result<(), WireError> {
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(WireError::PayloadTooLarge(payload_len));
    }
    if payload_len != 0 && !msg.carries_payload() {
        return Err(WireError::UnexpectedPayload {
            message: msg.name(),
            len: payload_len,
        });
    }
    Ok(())
}

#[derive(Debug)]
enum Stage {
    /// Collecting the 16 prefix bytes.
    Prefix,
    /// Collecting `header_len` header bytes.
    Header,
    /// Collecting `payload_len` payload bytes; the header is decoded.
    Payload,
    /// A complete frame waits for [`FrameReader::next_frame`].
    Ready,
    /// An error occurred; the stream cannot be resynchronised.
    Failed,
}

/// Reassembles frames from a byte stream (socket, Spice port channel).
///
/// Give it bytes with [`feed`](Self::feed) as they arrive and take complete
/// frames with [`next_frame`](Self::next_frame). The reader holds at most one
/// frame: `feed` accepts bytes only up to the end of the current frame and
/// returns how many it took, so the caller keeps the rest and feeds it again
/// after taking the frame. Memory held is therefore bounded by
/// [`MAX_FRAME_LEN`](super::MAX_FRAME_LEN), and the payload buffer grows with
/// the bytes actually received, never beyond the announced length.
///
/// The prefix is checked as soon as its 16 bytes are in, and the header as
/// soon as it is complete (including the rule that only `Sample` and
/// `CaptureSample` carry a payload), so a bad frame is refused before its
/// payload is buffered. After any error the reader stays failed
/// ([`WireError::Desynchronized`]): the connection must be closed.
#[derive(Debug)]
pub struct FrameReader {
    stage: Stage,
    prefix: [u8; PREFIX_LEN],
    prefix_fill: usize,
    header_len: usize,
    payload_len: usize,
    header: Vec<u8>,
    payload: Vec<u8>,
    message: Option<Message>,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

/// Smallest step by which the payload buffer grows.
const PAYLOAD_GROWTH_MIN: usize = 64 << 10;

impl FrameReader {
    /// A reader at the start of a stream.
    pub fn new() -> Self {
        Self {
            stage: Stage::Prefix,
            prefix: [0; PREFIX_LEN],
            prefix_fill: 0,
            header_len: 0,
            payload_len: 0,
            header: Vec::new(),
            payload: Vec::new(),
            message: None,
        }
    }

    /// Consumes bytes from the front of `data`, up to the end of the current
    /// frame, and returns how many it consumed. It consumes nothing while a
    /// complete frame waits to be taken with [`next_frame`](Self::next_frame).
    ///
    /// # Errors
    /// Any error of [`FramePrefix::decode`] or [`Message::decode`],
    /// [`WireError::UnexpectedPayload`], or [`WireError::Desynchronized`]
    /// after an earlier error.
    pub fn feed(&mut self, data: &[u8]) -> Result<usize, WireError> {
        let mut used = 0;
        loop {
            let rest = &data[used..];
            match self.stage {
                Stage::Failed => return Err(WireError::Desynchronized),
                Stage::Ready => return Ok(used),
                Stage::Prefix => {
                    let n = rest.len().min(PREFIX_LEN - self.prefix_fill);
                    self.prefix[self.prefix_fill..self.prefix_fill + n].copy_from_slice(&rest[..n]);
                    self.prefix_fill += n;
                    used += n;
                    if self.prefix_fill < PREFIX_LEN {
                        return Ok(used);
                    }
                    let prefix = self.check(FramePrefix::decode(&self.prefix))?;
                    self.header_len = prefix.header_len();
                    self.payload_len = prefix.payload_len();
                    self.header.clear();
                    self.header.reserve_exact(self.header_len);
                    self.stage = Stage::Header;
                }
                Stage::Header => {
                    let n = rest.len().min(self.header_len - self.header.len());
                    self.header.extend_from_slice(&rest[..n]);
                    used += n;
                    if self.header.len() < self.header_len {
                        return Ok(used);
                    }
                    let message = self.check(Message::decode(&self.header))?;
                    self.check(check_payload(&message, self.payload_len))?;
                    self.message = Some(message);
                    self.payload = Vec::new();
                    self.stage = if self.payload_len == 0 {
                        Stage::Ready
                    } else {
                        Stage::Payload
                    };
                }
                Stage::Payload => {
                    let n = rest.len().min(self.payload_len - self.payload.len());
                    self.grow_payload(n);
                    self.payload.extend_from_slice(&rest[..n]);
                    used += n;
                    if self.payload.len() < self.payload_len {
                        return Ok(used);
                    }
                    self.stage = Stage::Ready;
                }
            }
        }
    }

    /// Makes room for `n` more payload bytes: at least doubling, never past
    /// the announced payload length.
    fn grow_payload(&mut self, n: usize) {
        let len = self.payload.len();
        if self.payload.capacity() - len >= n {
            return;
        }
        let target = (len + n)
            .max(self.payload.capacity().saturating_mul(2))
            .max(PAYLOAD_GROWTH_MIN)
            .min(self.payload_len);
        self.payload.reserve_exact(target - len);
    }

    fn check<T>(&mut self, r: Result<T, WireError>) -> Result<T, WireError> {
        if r.is_err() {
            self.stage = Stage::Failed;
            self.header = Vec::new();
            self.payload = Vec::new();
            self.message = None;
        }
        r
    }

    /// Takes the complete frame, if there is one: its message and its payload
    /// (empty for messages without one).
    pub fn next_frame(&mut self) -> Option<(Message, Vec<u8>)> {
        if !matches!(self.stage, Stage::Ready) {
            return None;
        }
        let message = self.message.take()?;
        let payload = std::mem::take(&mut self.payload);
        self.header.clear();
        self.prefix_fill = 0;
        self.stage = Stage::Prefix;
        Some((message, payload))
    }

    /// How many more bytes the current frame needs before the reader can make
    /// progress (finish the prefix, the header or the payload): a caller may
    /// read exactly this many. 0 when a frame waits or after an error.
    pub fn wanted(&self) -> usize {
        match self.stage {
            Stage::Prefix => PREFIX_LEN - self.prefix_fill,
            Stage::Header => self.header_len - self.header.len(),
            Stage::Payload => self.payload_len - self.payload.len(),
            Stage::Ready | Stage::Failed => 0,
        }
    }

    /// Whether the reader is between frames (nothing partial buffered): a
    /// stream that ends anywhere else ended in the middle of a frame.
    pub fn is_at_boundary(&self) -> bool {
        matches!(self.stage, Stage::Prefix) && self.prefix_fill == 0
    }

    /// Whether an error has made the reader unusable.
    pub fn is_failed(&self) -> bool {
        matches!(self.stage, Stage::Failed)
    }

    /// Bytes of the current frame held in memory (prefix, header, payload).
    pub fn buffered(&self) -> usize {
        self.prefix_fill + self.header.len() + self.payload.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::MAX_FRAME_LEN;
    use super::super::{
        Hello, MAGIC, MIN_HEADER_LEN, SampleFlags, SampleHeader, Status, TIME_NONE,
    };
    use super::*;

    fn sample(seq: u64) -> Message {
        Message::Sample(SampleHeader {
            clip: Default::default(),
            stream: 1,
            seq,
            pts: Some(seq * 1000),
            dts: None,
            duration: Some(1000),
            flags: SampleFlags::KEYFRAME,
        })
    }

    fn prefix_bytes(header_len: u32, payload_len: u32) -> [u8; 16] {
        let mut b = [0; 16];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&header_len.to_le_bytes());
        b[8..12].copy_from_slice(&payload_len.to_le_bytes());
        b
    }

    /// A stream of frames and what the reader must yield for it.
    fn stream() -> (Vec<u8>, Vec<(Message, Vec<u8>)>) {
        let frames = vec![
            (Message::Ping { nonce: 1 }, Vec::new()),
            (sample(1), b"first sample".to_vec()),
            (sample(2), Vec::new()),
            (
                Message::Ack {
                    stream: 1,
                    seq: 2,
                    status: Status::Ok,
                },
                Vec::new(),
            ),
            (
                Message::CaptureSample(SampleHeader {
                    clip: Default::default(),
                    stream: 9,
                    seq: 1,
                    pts: None,
                    dts: None,
                    duration: None,
                    flags: SampleFlags::empty(),
                }),
                (0..=255).collect(),
            ),
            (Message::Pong { nonce: u64::MAX }, Vec::new()),
        ];
        let mut bytes = Vec::new();
        for (m, p) in &frames {
            bytes.extend_from_slice(&encode_frame(m, p.len()).unwrap());
            // The payload goes after prefix + header, untouched.
            bytes.extend_from_slice(p);
        }
        (bytes, frames)
    }

    fn read_all(
        reader: &mut FrameReader,
        mut bytes: &[u8],
        chunk: usize,
    ) -> Vec<(Message, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let n = chunk.min(bytes.len());
            let used = reader.feed(&bytes[..n]).unwrap();
            bytes = &bytes[used..];
            while let Some(f) = reader.next_frame() {
                out.push(f);
            }
            assert!(reader.buffered() <= MAX_FRAME_LEN);
        }
        out
    }

    #[test]
    fn frame_layout() {
        let m = sample(3);
        let bytes = encode_frame(&m, 100).unwrap();
        let prefix = FramePrefix::decode(bytes[..16].try_into().unwrap()).unwrap();
        assert_eq!(prefix.header_len(), bytes.len() - 16);
        assert_eq!(prefix.payload_len(), 100);
        assert_eq!(&bytes[..4], b"MRW1");
        assert_eq!(&bytes[20..24], b"MRW1");
        assert_eq!(Message::decode(&bytes[16..]), Ok(m));
    }

    #[test]
    fn reader_yields_every_frame_in_any_chunking() {
        let (bytes, frames) = stream();
        for chunk in [1, 2, 3, 7, 16, 17, 100, bytes.len()] {
            let mut r = FrameReader::new();
            assert!(r.is_at_boundary());
            assert_eq!(read_all(&mut r, &bytes, chunk), frames, "chunk {chunk}");
            assert!(r.is_at_boundary());
            assert_eq!(r.buffered(), 0);
        }
    }

    #[test]
    fn feed_stops_at_frame_end() {
        let (bytes, frames) = stream();
        let mut r = FrameReader::new();
        let first = encode_frame(&frames[0].0, 0).unwrap().len();
        assert_eq!(r.feed(&bytes), Ok(first));
        // A waiting frame blocks further input.
        assert_eq!(r.feed(&bytes[first..]), Ok(0));
        assert_eq!(r.wanted(), 0);
        assert_eq!(r.next_frame(), Some(frames[0].clone()));
        assert_eq!(r.next_frame(), None);
        assert_eq!(r.wanted(), PREFIX_LEN);
        assert!(r.feed(&bytes[first..]).unwrap() > 0);
    }

    #[test]
    fn wanted_reads_exactly_one_frame() {
        let (bytes, frames) = stream();
        let mut r = FrameReader::new();
        let mut at = 0;
        let mut got = Vec::new();
        while at < bytes.len() {
            let want = r.wanted();
            assert!(want > 0);
            assert_eq!(r.feed(&bytes[at..at + want]), Ok(want));
            at += want;
            if let Some(f) = r.next_frame() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn payload_only_after_samples() {
        for m in [
            Message::Ping { nonce: 1 },
            Message::EndOfStream { stream: 1 },
        ] {
            assert_eq!(
                encode_frame(&m, 1),
                Err(WireError::UnexpectedPayload {
                    message: m.name(),
                    len: 1
                })
            );
            assert!(encode_frame(&m, 0).is_ok());
        }
        // A reader refuses it as soon as the header is in, before any payload.
        let header = Message::Ping { nonce: 1 }.to_header_bytes();
        let len = u32::try_from(header.len()).unwrap();
        let mut r = FrameReader::new();
        assert_eq!(r.feed(&prefix_bytes(len, 5)), Ok(16));
        assert_eq!(
            r.feed(&header),
            Err(WireError::UnexpectedPayload {
                message: "Ping",
                len: 5
            })
        );
        assert!(r.is_failed());
        assert_eq!(r.feed(&[0; 5]), Err(WireError::Desynchronized));
        assert_eq!(r.next_frame(), None);
        assert_eq!(r.buffered(), 16);
    }

    #[test]
    fn encode_limits() {
        assert!(encode_frame(&sample(1), MAX_PAYLOAD_LEN).is_ok());
        assert_eq!(
            encode_frame(&sample(1), MAX_PAYLOAD_LEN + 1),
            Err(WireError::PayloadTooLarge(MAX_PAYLOAD_LEN + 1))
        );
        // An invalid message is refused before encoding.
        assert_eq!(
            encode_frame(&Message::Play { presentation: 0 }, 0),
            Err(WireError::ZeroId("Play.presentation"))
        );
        // The largest legal variable parts (SDP, codec data) fit in a header.
        let fits = Message::CallCreate {
            session: 1,
            sdp: "x".repeat(super::super::message::MAX_SDP_LEN),
        };
        let bytes = encode_frame(&fits, 0).unwrap();
        let mut r = FrameReader::new();
        assert_eq!(r.feed(&bytes), Ok(bytes.len()));
        assert!(r.next_frame().unwrap().0 == fits);
    }

    #[test]
    fn encode_into_reuses_buffers() {
        let mut fbb = FlatBufferBuilder::new();
        let mut out = Vec::new();
        for seq in 1..5 {
            encode_frame_into(&mut fbb, &sample(seq), 10, &mut out).unwrap();
            assert_eq!(out, encode_frame(&sample(seq), 10).unwrap());
        }
        assert!(encode_frame_into(&mut fbb, &Message::Ping { nonce: 0 }, 1, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn reader_rejects_bad_prefixes_early() {
        let cases = [
            (prefix_bytes(0, 0), WireError::HeaderLength(0)),
            (
                prefix_bytes(u32::try_from(MIN_HEADER_LEN).unwrap() - 1, 0),
                WireError::HeaderLength(MIN_HEADER_LEN - 1),
            ),
            (
                prefix_bytes(u32::try_from(MAX_HEADER_LEN).unwrap() + 1, 0),
                WireError::HeaderLength(MAX_HEADER_LEN + 1),
            ),
            (
                prefix_bytes(64, u32::try_from(MAX_PAYLOAD_LEN).unwrap() + 1),
                WireError::PayloadTooLarge(MAX_PAYLOAD_LEN + 1),
            ),
            (
                prefix_bytes(u32::MAX, u32::MAX),
                WireError::HeaderLength(u32::MAX as usize),
            ),
        ];
        for (bytes, e) in cases {
            let mut r = FrameReader::new();
            // Nothing beyond the prefix is ever accepted.
            let mut long = bytes.to_vec();
            long.extend_from_slice(&[0; 100]);
            assert_eq!(r.feed(&long), Err(e));
            assert!(r.is_failed());
            assert_eq!(r.feed(&[]), Err(WireError::Desynchronized));
        }
        let mut bad = prefix_bytes(64, 0);
        bad[12] = 1;
        assert_eq!(
            FrameReader::new().feed(&bad),
            Err(WireError::ReservedNonZero(1))
        );
        bad = prefix_bytes(64, 0);
        bad[0] = b'X';
        assert!(matches!(
            FrameReader::new().feed(&bad),
            Err(WireError::BadMagic(_))
        ));
    }

    #[test]
    fn reader_rejects_bad_headers() {
        let mut header = Message::Ping { nonce: 1 }.to_header_bytes();
        header[4] = b'X';
        let mut bytes = prefix_bytes(u32::try_from(header.len()).unwrap(), 0).to_vec();
        bytes.extend_from_slice(&header);
        let mut r = FrameReader::new();
        assert_eq!(r.feed(&bytes), Err(WireError::BadIdentifier));
        // A header that decodes but breaks a rule.
        let header = Message::Play { presentation: 0 }.to_header_bytes();
        let mut bytes = prefix_bytes(u32::try_from(header.len()).unwrap(), 0).to_vec();
        bytes.extend_from_slice(&header);
        assert_eq!(
            FrameReader::new().feed(&bytes),
            Err(WireError::ZeroId("Play.presentation"))
        );
    }

    #[test]
    fn partial_frames_are_not_yielded() {
        let payload = vec![7u8; 1000];
        let mut bytes = encode_frame(&sample(1), payload.len()).unwrap();
        bytes.extend_from_slice(&payload);
        let mut r = FrameReader::new();
        assert_eq!(r.feed(&bytes[..bytes.len() - 1]), Ok(bytes.len() - 1));
        assert_eq!(r.next_frame(), None);
        assert!(!r.is_at_boundary());
        assert_eq!(r.wanted(), 1);
        assert_eq!(r.buffered(), bytes.len() - 1);
        assert_eq!(r.feed(&bytes[bytes.len() - 1..]), Ok(1));
        let (m, p) = r.next_frame().unwrap();
        assert_eq!((m, p), (sample(1), payload));
    }

    #[test]
    fn payload_buffer_never_exceeds_announced_length() {
        let len = 300_000;
        let mut bytes = encode_frame(&sample(1), len).unwrap();
        let header_end = bytes.len();
        bytes.resize(header_end + len, 0xEE);
        let mut r = FrameReader::new();
        r.feed(&bytes[..header_end]).unwrap();
        for chunk in bytes[header_end..].chunks(4097) {
            assert_eq!(r.feed(chunk), Ok(chunk.len()));
            assert!(r.payload.capacity() <= len);
        }
        let (_, p) = r.next_frame().unwrap();
        assert_eq!(p.len(), len);
        assert!(p.capacity() <= len);
    }

    #[test]
    fn sample_times_survive_framing() {
        let m = Message::Sample(SampleHeader {
            clip: Default::default(),
            stream: 2,
            seq: 5,
            pts: Some(TIME_NONE - 1),
            dts: Some(0),
            duration: None,
            flags: SampleFlags::ALL,
        });
        let mut bytes = encode_frame(&m, 3).unwrap();
        bytes.extend_from_slice(b"abc");
        let mut r = FrameReader::new();
        r.feed(&bytes).unwrap();
        assert_eq!(r.next_frame(), Some((m, b"abc".to_vec())));
    }

    #[test]
    fn hello_frame() {
        let m = Message::Hello(Hello {
            major: super::super::PROTOCOL_MAJOR,
            minor: super::super::PROTOCOL_MINOR,
            name: "test client".into(),
            caps: Default::default(),
        });
        let bytes = encode_frame(&m, 0).unwrap();
        let mut r = FrameReader::default();
        assert_eq!(r.feed(&bytes), Ok(bytes.len()));
        assert_eq!(r.next_frame(), Some((m, Vec::new())));
    }
}

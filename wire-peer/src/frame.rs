//! Frames of the host-client wire protocol (`mediaredir_proto::wire`: a
//! 16-byte prefix, a FlatBuffers header, the raw payload) over a byte
//! stream: the one reading loop and the one writer that the daemon's
//! uplinks, `media-client` and the tests share.
//!
//! Reading: [`FramedReader`] feeds a [`FrameReader`] from any [`Read`],
//! asking the stream for no more than the current frame still needs, so
//! nothing is read past a frame's end. It tells a clean end (between
//! frames) from a cut one (inside a frame), and passes a read timeout
//! through as an error ([`is_timeout`]) so that a caller can poll: check
//! liveness, then read on where it stopped.
//!
//! Writing: [`FrameWriter`] encodes prefix and header into buffers it
//! reuses, and writes them with the payload in one vectored write
//! ([`write_all_vectored`]) where the payload is ordinary memory. Payload
//! that lies in memory another party may write at any time (guest memory)
//! is never made a Rust reference: [`writev_frame`] hands it to the kernel
//! by address ([`ByteRun`]), with no copy.

use std::io::{self, IoSlice, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};

use mediaredir_proto::wire::{self, FrameReader, Message, WireError};

/// One frame: its message and its payload (empty for messages without
/// one).
pub type Frame = (Message, Vec<u8>);

/// Whether `err` is a read timeout (`SO_RCVTIMEO` gives `WouldBlock`, the
/// TLS stream `TimedOut`): nothing arrived in time, the stream is intact.
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads whole frames from a byte stream.
#[derive(Debug)]
pub struct FramedReader<R> {
    inner: R,
    frames: FrameReader,
    buf: Box<[u8]>,
}

impl<R: Read> FramedReader<R> {
    /// Reads frames from `inner`, at most `chunk` bytes per read (at
    /// least 1).
    pub fn new(inner: R, chunk: usize) -> Self {
        FramedReader {
            inner,
            frames: FrameReader::new(),
            buf: vec![0; chunk.max(1)].into_boxed_slice(),
        }
    }

    /// The next frame, blocking until one is complete. `Ok(None)`: the
    /// stream ended between two frames (a peer's TLS stream ending
    /// without `close_notify` counts as an end too; the frame boundary
    /// decides whether it was clean).
    ///
    /// # Errors
    /// The stream's errors, a read timeout included ([`is_timeout`]; what
    /// was read of the frame so far is kept, so the caller may call again);
    /// `UnexpectedEof` when the stream ends inside a frame; `InvalidData`
    /// for a malformed frame (the stream cannot be read on after that).
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.frames.next_frame() {
                return Ok(Some(frame));
            }
            let want = self.frames.wanted().clamp(1, self.buf.len());
            let n = match self.inner.read(&mut self.buf[..want]) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => 0,
                Err(err) => return Err(err),
            };
            if n == 0 {
                if self.frames.is_at_boundary() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a frame",
                ));
            }
            self.frames
                .feed(&self.buf[..n])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }

    /// The next frame; the end of the stream is an error too
    /// (`UnexpectedEof`, "peer closed the connection").
    ///
    /// # Errors
    /// As [`FramedReader::next_frame`].
    pub fn read_frame(&mut self) -> io::Result<Frame> {
        self.next_frame()?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed the connection")
        })
    }

    /// The stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }
}

/// Writes `bufs` whole, in as few vectored writes as the stream takes.
///
/// # Errors
/// The stream's errors; `WriteZero` when it takes nothing.
pub fn write_all_vectored<W: Write + ?Sized>(
    w: &mut W,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the peer takes no more data",
                ));
            }
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Encodes frames into buffers it reuses, so that a sender allocates
/// nothing per frame once they have grown.
pub struct FrameWriter {
    fbb: wire::FlatBufferBuilder<'static>,
    head: Vec<u8>,
}

impl std::fmt::Debug for FrameWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameWriter").finish_non_exhaustive()
    }
}

impl Default for FrameWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameWriter {
    /// A writer with empty buffers.
    pub fn new() -> Self {
        FrameWriter {
            fbb: wire::FlatBufferBuilder::new(),
            head: Vec::new(),
        }
    }

    /// Prefix and header of `msg` for a payload of `payload_len` bytes,
    /// to be written before the payload.
    ///
    /// # Errors
    /// Those of [`wire::encode_frame_into`] (an invalid message, a payload
    /// on a message that carries none, sizes beyond the limits).
    pub fn head(&mut self, msg: &Message, payload_len: usize) -> Result<&[u8], WireError> {
        wire::encode_frame_into(&mut self.fbb, msg, payload_len, &mut self.head)?;
        Ok(&self.head)
    }

    /// Writes `msg` and its payload (ordinary memory) to `w` in one
    /// vectored write where the stream takes it, and returns the frame's
    /// length.
    ///
    /// # Errors
    /// `InvalidInput` when the message cannot be encoded; the stream's
    /// errors.
    pub fn write<W: Write + ?Sized>(
        &mut self,
        w: &mut W,
        msg: &Message,
        payload: &[&[u8]],
    ) -> io::Result<usize> {
        let len = payload.iter().map(|p| p.len()).sum();
        let head = self
            .head(msg, len)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut bufs: Vec<IoSlice<'_>> = Vec::with_capacity(payload.len() + 1);
        bufs.push(IoSlice::new(head));
        bufs.extend(payload.iter().map(|p| IoSlice::new(p)));
        write_all_vectored(w, &mut bufs)?;
        Ok(head.len() + len)
    }
}

/// A run of payload bytes handed to the kernel by address: nothing in this
/// crate reads them or makes a reference to them, so they may lie in memory
/// another party writes at any time (the guest's).
#[derive(Debug, Clone, Copy)]
pub struct ByteRun<'a> {
    ptr: *const u8,
    len: usize,
    life: PhantomData<&'a [u8]>,
}

impl<'a> ByteRun<'a> {
    /// The bytes of `bytes`.
    pub fn of(bytes: &'a [u8]) -> Self {
        ByteRun {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
            life: PhantomData,
        }
    }

    /// `len` bytes at `ptr`.
    ///
    /// # Safety
    /// The `len` bytes at `ptr` stay mapped and readable for `'a`. They may
    /// change meanwhile (the frame then carries whatever the kernel read).
    pub unsafe fn from_raw(ptr: *const u8, len: usize) -> Self {
        ByteRun {
            ptr,
            len,
            life: PhantomData,
        }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its address.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }
}

/// Most iovecs handed to one `writev` (Linux's `UIO_MAXIOV`).
const MAX_IOV: usize = 1024;

/// Iovecs [`writev_frame`] keeps on the stack: the head and the few runs a
/// frame usually has (a payload in one or two guest buffers, split again
/// where guest memory regions meet). More spill to the heap.
const INLINE_IOV: usize = 8;

/// The iovec of a run.
fn iovec(ptr: *const u8, len: usize) -> libc::iovec {
    libc::iovec {
        iov_base: ptr.cast_mut().cast(),
        iov_len: len,
    }
}

/// Writes `head` then every payload run to the socket `fd`, with as few
/// `writev` calls as the kernel allows and without copying the payload.
/// A frame of up to 7 non-empty runs takes no allocation.
///
/// # Errors
/// The socket's errors (a send timeout included); `WriteZero` when it takes
/// nothing.
pub fn writev_frame<'a>(
    fd: BorrowedFd<'_>,
    head: &[u8],
    payload: impl IntoIterator<Item = ByteRun<'a>>,
) -> io::Result<()> {
    let mut runs = payload
        .into_iter()
        .filter(|s| s.len > 0)
        .map(|s| iovec(s.ptr, s.len))
        .fuse();
    let mut inline = [iovec(std::ptr::null(), 0); INLINE_IOV];
    inline[0] = iovec(head.as_ptr(), head.len());
    let mut used = 1;
    for (slot, run) in inline[1..].iter_mut().zip(runs.by_ref()) {
        *slot = run;
        used += 1;
    }
    let mut spilled;
    let iov: &mut [libc::iovec] = match runs.next() {
        None => &mut inline[..used],
        Some(next) => {
            spilled = Vec::with_capacity(INLINE_IOV + 1 + runs.size_hint().0);
            spilled.extend_from_slice(&inline);
            spilled.push(next);
            spilled.extend(runs);
            &mut spilled
        }
    };
    let mut start = 0;
    while start < iov.len() {
        let end = (start + MAX_IOV).min(iov.len());
        let count = libc::c_int::try_from(end - start).unwrap_or(libc::c_int::MAX);
        // SAFETY: every iovec names memory that stays valid for the call:
        // `head` is borrowed, and each ByteRun's bytes are mapped for its
        // lifetime, which outlives this call. writev only reads them.
        let n = unsafe { libc::writev(fd.as_raw_fd(), iov[start..end].as_ptr(), count) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let mut written = usize::try_from(n).unwrap_or(0);
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "client socket closed",
            ));
        }
        while written > 0 && start < iov.len() {
            let first = &mut iov[start];
            if written >= first.iov_len {
                written -= first.iov_len;
                start += 1;
            } else {
                // Advancing the address within the same run by fewer bytes
                // than its length keeps it in bounds; nothing dereferences it.
                first.iov_base = first.iov_base.cast::<u8>().wrapping_add(written).cast();
                first.iov_len -= written;
                written = 0;
            }
        }
        while start < iov.len() && iov[start].iov_len == 0 {
            start += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use mediaredir_proto::wire::{SampleFlags, SampleHeader};

    fn sample(len: usize) -> (Message, Vec<u8>) {
        let msg = Message::CaptureSample(SampleHeader {
            stream: 3,
            seq: 1,
            pts: Some(0),
            dts: None,
            duration: None,
            flags: SampleFlags::KEYFRAME,
            clip: Default::default(),
        });
        (msg, (0..=255u8).cycle().take(len).collect())
    }

    #[test]
    fn written_frames_read_back_then_end_cleanly() {
        let (a, b) = UnixStream::pair().unwrap();
        let (msg, payload) = sample(300_000);
        let expected = (msg.clone(), payload.clone());
        let writer = std::thread::spawn(move || {
            let mut a = a;
            let mut w = FrameWriter::new();
            let (first, second) = payload.split_at(1000);
            w.write(&mut a, &msg, &[first, second]).unwrap();
            w.write(&mut a, &Message::Ping { nonce: 9 }, &[]).unwrap();
        });
        let mut r = FramedReader::new(b, 4096);
        assert_eq!(r.read_frame().unwrap(), expected);
        assert_eq!(
            r.next_frame().unwrap(),
            Some((Message::Ping { nonce: 9 }, Vec::new()))
        );
        writer.join().unwrap();
        assert_eq!(r.next_frame().unwrap(), None, "a clean end");
        assert_eq!(
            r.read_frame().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn an_end_inside_a_frame_is_an_error_and_garbage_is_invalid() {
        let mut w = FrameWriter::new();
        let head = w.head(&Message::Ping { nonce: 1 }, 0).unwrap().to_vec();
        let mut cut = FramedReader::new(&head[..head.len() - 1], 64);
        assert_eq!(
            cut.next_frame().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let mut junk = FramedReader::new(&[0xffu8; 64][..], 64);
        assert_eq!(
            junk.next_frame().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn a_read_timeout_keeps_the_partial_frame() {
        let (mut a, b) = UnixStream::pair().unwrap();
        b.set_read_timeout(Some(std::time::Duration::from_millis(20)))
            .unwrap();
        let mut w = FrameWriter::new();
        let head = w.head(&Message::Pong { nonce: 5 }, 0).unwrap().to_vec();
        a.write_all(&head[..7]).unwrap();
        let mut r = FramedReader::new(b, 64);
        assert!(is_timeout(&r.next_frame().unwrap_err()));
        a.write_all(&head[7..]).unwrap();
        assert_eq!(
            r.next_frame().unwrap(),
            Some((Message::Pong { nonce: 5 }, Vec::new()))
        );
    }

    /// What the other end of a socket receives from
    /// `writev_frame(head, runs)`.
    fn writev_received<'a>(head: &[u8], runs: impl IntoIterator<Item = ByteRun<'a>>) -> Vec<u8> {
        let (a, mut b) = UnixStream::pair().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            b.read_to_end(&mut got).unwrap();
            got
        });
        writev_frame(a.as_fd(), head, runs).unwrap();
        drop(a);
        reader.join().unwrap()
    }

    #[test]
    fn writev_frames_of_few_and_many_runs_arrive_whole() {
        // Around the stack-held iovecs' limit (7 runs after the head), with
        // empty runs that take no iovec.
        for count in 0..=2 * INLINE_IOV {
            let parts: Vec<Vec<u8>> = (0..count)
                .map(|i| vec![u8::try_from(i).unwrap(); i % 3 * 1000])
                .collect();
            let got = writev_received(b"HEAD", parts.iter().map(|p| ByteRun::of(p)));
            let expected = [b"HEAD".to_vec(), parts.concat()].concat();
            assert_eq!(got, expected, "{count} runs");
        }
    }

    #[test]
    fn writev_sends_head_and_runs_in_order() {
        let payload = vec![7u8; 300_000];
        let got = writev_received(b"HEAD", payload.chunks(100).map(ByteRun::of));
        assert_eq!(&got[..4], b"HEAD");
        assert_eq!(got.len(), 4 + payload.len());
        assert!(got[4..].iter().all(|b| *b == 7));
    }
}

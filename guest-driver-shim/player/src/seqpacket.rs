//! Unix `SOCK_SEQPACKET` sockets with file-descriptor passing: the broker's
//! transport (spec 9.1).
//!
//! The standard library has only stream and datagram Unix sockets. Sequenced
//! packets keep message boundaries (one broker message per packet, no
//! framing to get wrong) and report a peer that went away, and `SCM_RIGHTS`
//! hands a pool's memfd to a player. This is the small part of the socket
//! API the broker and its clients need, over `libc`.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What [`SeqpacketConn::recv`] got.
#[derive(Debug)]
pub enum Received {
    /// One packet of `len` bytes (`truncated` when it did not fit the
    /// buffer: the rest is lost), with the first file descriptor it carried.
    Packet {
        /// Bytes stored in the buffer.
        len: usize,
        /// Whether the packet was longer than the buffer.
        truncated: bool,
        /// The first passed descriptor; any others are closed.
        fd: Option<OwnedFd>,
    },
    /// The peer closed the connection.
    Closed,
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn new_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with constant arguments.
    let fd =
        cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket() and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A `sockaddr_un` for `path` and its length.
fn address(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { zeroed() };
    addr.sun_family = libc::sa_family_t::try_from(libc::AF_UNIX).unwrap_or_default();
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unusable socket path {}", path.display()),
        ));
    }
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let len = size_of::<libc::sa_family_t>() + bytes.len() + 1;
    // Shorter than sun_path (checked above), so it fits.
    let len = libc::socklen_t::try_from(len).unwrap_or(libc::socklen_t::MAX);
    Ok((addr, len))
}

/// `CMSG_SPACE(data)`: bytes of control buffer for `data` bytes.
fn cmsg_space(data: usize) -> usize {
    let data = u32::try_from(data).unwrap_or(u32::MAX);
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE(data) as usize }
}

/// `CMSG_LEN(data)`: `cmsg_len` of a header with `data` bytes.
fn cmsg_len(data: usize) -> usize {
    let data = u32::try_from(data).unwrap_or(u32::MAX);
    // SAFETY: CMSG_LEN only computes a size.
    unsafe { libc::CMSG_LEN(data) as usize }
}

fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own; no pointers involved.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) })?;
    Ok(())
}

/// A listening socket. The socket file is removed on drop.
#[derive(Debug)]
pub struct SeqpacketListener {
    fd: OwnedFd,
    path: PathBuf,
}

impl SeqpacketListener {
    /// Binds `path` (replacing a stale socket file, never any other kind of
    /// file), sets its mode to `mode` and listens. The listener does not
    /// block: [`SeqpacketListener::accept`] returns `WouldBlock` when no
    /// connection waits.
    pub fn bind(path: &Path, mode: u32) -> io::Result<SeqpacketListener> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let fd = new_socket()?;
        let (addr, len) = address(path)?;
        // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
        cvt(unsafe { libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), len) })?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        // SAFETY: plain system call on a descriptor we own.
        cvt(unsafe { libc::listen(fd.as_raw_fd(), 64) })?;
        set_nonblocking(fd.as_raw_fd(), true)?;
        Ok(SeqpacketListener {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Accepts one connection (`WouldBlock` when none waits). The
    /// connection does not block either.
    pub fn accept(&self) -> io::Result<SeqpacketConn> {
        // SAFETY: null address pointers are allowed; the flags are constants.
        let fd = cvt(unsafe {
            libc::accept4(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        })?;
        // SAFETY: `fd` was just returned by accept4 and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(SeqpacketConn { fd })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for SeqpacketListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for SeqpacketListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One connection.
#[derive(Debug)]
pub struct SeqpacketConn {
    fd: OwnedFd,
}

impl SeqpacketConn {
    /// Connects to the listener at `path` (blocking).
    pub fn connect(path: &Path) -> io::Result<SeqpacketConn> {
        let fd = new_socket()?;
        let (addr, len) = address(path)?;
        // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
        cvt(unsafe { libc::connect(fd.as_raw_fd(), (&raw const addr).cast(), len) })?;
        Ok(SeqpacketConn { fd })
    }

    /// Switches between blocking and non-blocking sends and receives.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        set_nonblocking(self.fd.as_raw_fd(), on)
    }

    /// Sends one packet, with `fd` as `SCM_RIGHTS` when given. Never raises
    /// `SIGPIPE`: a vanished peer is an `EPIPE` error.
    pub fn send(&self, packet: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let mut iov = libc::iovec {
            iov_base: packet.as_ptr().cast_mut().cast(),
            iov_len: packet.len(),
        };
        // Room for one cmsghdr with one int, u64-aligned as cmsg requires.
        let mut control = [0u64; 4];
        // SAFETY: msghdr is plain old data; all zeroes is a valid value.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        if let Some(fd) = fd {
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = cmsg_space(size_of::<RawFd>());
            // SAFETY: msg_control points at `control`, which holds at least
            // msg_controllen bytes, so CMSG_FIRSTHDR returns a pointer to a
            // cmsghdr inside it.
            let cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
            let header = libc::cmsghdr {
                cmsg_len: cmsg_len(size_of::<RawFd>()),
                cmsg_level: libc::SOL_SOCKET,
                cmsg_type: libc::SCM_RIGHTS,
            };
            // SAFETY: `cmsg` is non-null and points into `control`, which
            // is u64-aligned, with room for a header.
            unsafe { cmsg.write(header) };
            // SAFETY: CMSG_DATA of a header inside `control` points after
            // it, inside `control`.
            let data = unsafe { libc::CMSG_DATA(cmsg) };
            // SAFETY: the data part has room for one descriptor
            // (cmsg_space above); the write may be unaligned.
            unsafe { data.cast::<RawFd>().write_unaligned(fd.as_raw_fd()) };
        }
        // SAFETY: `msg` points at `iov` (the packet, read only) and at
        // `control`, both alive for the call.
        let sent =
            unsafe { libc::sendmsg(self.fd.as_raw_fd(), &raw const msg, libc::MSG_NOSIGNAL) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        if sent as usize != packet.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "packet sent in part",
            ));
        }
        Ok(())
    }

    /// Receives one packet into `buf`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // Room for a few descriptors; extra ones are closed below.
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain old data; all zeroes is a valid value.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control);
        // SAFETY: `msg` points at `iov` (our writable buffer) and `control`,
        // both alive for the call.
        let got =
            unsafe { libc::recvmsg(self.fd.as_raw_fd(), &raw mut msg, libc::MSG_CMSG_CLOEXEC) };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut fds = Vec::new();
        // SAFETY: the kernel filled `msg` (control length and flags); the
        // CMSG_* macros only walk inside `control`.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
        while !cmsg.is_null() {
            // SAFETY: `cmsg` is a header the kernel wrote inside `control`.
            let header = unsafe { cmsg.read() };
            if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_RIGHTS {
                let count = header.cmsg_len.saturating_sub(cmsg_len(0)) / size_of::<RawFd>();
                // SAFETY: CMSG_DATA of a header inside `control` points after
                // it, inside `control`.
                let data = unsafe { libc::CMSG_DATA(cmsg) }.cast::<RawFd>();
                for i in 0..count {
                    // SAFETY: the kernel wrote `count` descriptors after the
                    // header, inside `control`; they may be unaligned.
                    let raw = unsafe { data.wrapping_add(i).read_unaligned() };
                    // SAFETY: the kernel installed `raw` in this process for
                    // us; nothing else owns it.
                    fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
                }
            }
            // SAFETY: as for CMSG_FIRSTHDR.
            cmsg = unsafe { libc::CMSG_NXTHDR(&raw const msg, cmsg) };
        }
        if got == 0 && msg.msg_flags & libc::MSG_TRUNC == 0 && fds.is_empty() {
            // A zero-length packet and end of file look alike; sequenced
            // packets of the broker protocol are never empty.
            return Ok(Received::Closed);
        }
        Ok(Received::Packet {
            len: got as usize,
            truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
            fd: fds.into_iter().next(),
        })
    }
}

impl AsFd for SeqpacketConn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    fn pair() -> (
        tempfile::TempDir,
        SeqpacketListener,
        SeqpacketConn,
        SeqpacketConn,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.sock");
        let listener = SeqpacketListener::bind(&path, 0o660).expect("bind");
        let client = SeqpacketConn::connect(&path).expect("connect");
        let server = listener.accept().expect("accept");
        server.set_nonblocking(false).expect("blocking");
        (dir, listener, client, server)
    }

    #[test]
    fn packets_keep_their_boundaries() {
        let (_dir, _l, client, server) = pair();
        client.send(b"one", None).unwrap();
        client.send(b"second packet", None).unwrap();
        let mut buf = [0u8; 64];
        let Received::Packet { len, truncated, fd } = server.recv(&mut buf).unwrap() else {
            panic!("closed")
        };
        assert_eq!(
            (&buf[..len], truncated, fd.is_none()),
            (&b"one"[..], false, true)
        );
        let Received::Packet { len, .. } = server.recv(&mut buf).unwrap() else {
            panic!("closed")
        };
        assert_eq!(&buf[..len], b"second packet");
    }

    #[test]
    fn oversized_packet_is_reported_truncated() {
        let (_dir, _l, client, server) = pair();
        client.send(&[7u8; 100], None).unwrap();
        let mut buf = [0u8; 16];
        let Received::Packet { len, truncated, .. } = server.recv(&mut buf).unwrap() else {
            panic!("closed")
        };
        assert_eq!((len, truncated), (16, true));
    }

    #[test]
    fn a_file_descriptor_travels_with_its_packet() {
        let (_dir, _l, client, server) = pair();
        let mut file = std::fs::File::from(
            // A pipe would do too; a temp file shows it is the same file.
            tempfile_fd(),
        );
        file.write_all(b"shared").unwrap();
        server.send(b"pool", Some(file.as_fd())).unwrap();
        let mut buf = [0u8; 16];
        let Received::Packet { len, fd, .. } = client.recv(&mut buf).unwrap() else {
            panic!("closed")
        };
        assert_eq!(&buf[..len], b"pool");
        let mut received = std::fs::File::from(fd.expect("a descriptor"));
        received.rewind().unwrap();
        let mut text = String::new();
        received.read_to_string(&mut text).unwrap();
        assert_eq!(text, "shared");
    }

    fn tempfile_fd() -> OwnedFd {
        // SAFETY: valid NUL-terminated name; no other preconditions.
        let fd = unsafe { libc::memfd_create(c"seqpacket-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: `fd` is new and owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    #[test]
    fn a_closed_peer_is_seen() {
        let (_dir, _l, client, server) = pair();
        drop(client);
        let mut buf = [0u8; 16];
        assert!(matches!(server.recv(&mut buf).unwrap(), Received::Closed));
        assert!(server.send(b"x", None).is_err());
    }

    #[test]
    fn a_regular_file_is_never_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("not-a-socket");
        std::fs::write(&path, b"data").unwrap();
        let err = SeqpacketListener::bind(&path, 0o660).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }
}

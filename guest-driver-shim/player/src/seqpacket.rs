//! Unix `SOCK_SEQPACKET` sockets with file-descriptor passing: the broker's
//! transport (spec 9.1).
//!
//! The standard library has only stream and datagram Unix sockets. Sequenced
//! packets keep message boundaries (one broker message per packet, no
//! framing to get wrong) and report a peer that went away, and `SCM_RIGHTS`
//! hands a pool's memfd to a player. This is the small part of the socket
//! API the broker and its clients need, over `rustix` (no unsafe code).

use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

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

/// Descriptors one received packet may carry before the rest are lost
/// (`MSG_CTRUNC`); the protocol passes at most one.
const MAX_RECEIVED_FDS: usize = 8;

fn new_socket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// The address of the socket file `path`.
fn address(path: &Path) -> io::Result<SocketAddrUnix> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.contains(&0) {
        return Err(unusable(path));
    }
    SocketAddrUnix::new(path).map_err(|_| unusable(path))
}

fn unusable(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("unusable socket path {}", path.display()),
    )
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
        rustix::net::bind(&fd, &address(path)?)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        rustix::net::listen(&fd, 64)?;
        rustix::io::ioctl_fionbio(&fd, true)?;
        Ok(SeqpacketListener {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Accepts one connection (`WouldBlock` when none waits). The
    /// connection does not block either.
    pub fn accept(&self) -> io::Result<SeqpacketConn> {
        let fd = rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK)?;
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
        rustix::net::connect(&fd, &address(path)?)?;
        Ok(SeqpacketConn { fd })
    }

    /// Switches between blocking and non-blocking sends and receives.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        Ok(rustix::io::ioctl_fionbio(&self.fd, on)?)
    }

    /// Sends one packet, with `fd` as `SCM_RIGHTS` when given. Never raises
    /// `SIGPIPE`: a vanished peer is an `EPIPE` error.
    pub fn send(&self, packet: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            let added = control.push(SendAncillaryMessage::ScmRights(&fds));
            debug_assert!(added, "the control buffer has room for one descriptor");
        }
        let sent = rustix::net::sendmsg(
            &self.fd,
            &[IoSlice::new(packet)],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
        if sent != packet.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "packet sent in part",
            ));
        }
        Ok(())
    }

    /// Receives one packet into `buf`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let mut space =
            [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_RECEIVED_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            &self.fd,
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        // Every descriptor received is owned here; all but the first are
        // closed when `fds` is dropped.
        let mut fds = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        let truncated = got.flags.contains(ReturnFlags::TRUNC);
        if got.bytes == 0 && !truncated && fds.is_empty() {
            // A zero-length packet and end of file look alike; sequenced
            // packets of the broker protocol are never empty.
            return Ok(Received::Closed);
        }
        Ok(Received::Packet {
            len: got.bytes,
            truncated,
            fd: fds.into_iter().next(),
        })
    }
}

impl AsFd for SeqpacketConn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Waits up to `timeout` for `fd` (a connection, or any descriptor) to be
/// readable or hung up: `Ok(true)`; `Ok(false)` when the time ran out or
/// a signal came first. A timeout too long for a `timespec` waits for
/// ever.
pub fn wait_readable(fd: impl AsFd, timeout: Duration) -> io::Result<bool> {
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let timeout = Timespec::try_from(timeout).ok();
    match rustix::event::poll(&mut fds, timeout.as_ref()) {
        Ok(n) => Ok(n > 0 && !fds[0].revents().is_empty()),
        Err(Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
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
        rustix::fs::memfd_create("seqpacket-test", rustix::fs::MemfdFlags::CLOEXEC)
            .expect("memfd_create")
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

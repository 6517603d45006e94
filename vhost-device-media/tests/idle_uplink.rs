//! Where the `Hello` timeout starts. QEMU's `chardev-relay` joins the VM's
//! Spice port to the daemon's Unix uplink (docs/qemu-relay.md): its socket
//! chardev connects when QEMU starts and again after each Spice client
//! leaves, and says nothing until a client opens the port, maybe hours
//! later. A daemon that closed such a connection after the 10 s `Hello`
//! timeout would make every idle VM reconnect every 10 s. So on the Unix
//! socket the timeout starts at the first byte; a remote peer (TCP) that
//! says nothing is still closed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use mediaredir_proto::wire::{FrameReader, Message};
use test_support::{TempDir, scratch};
use vhost_user_mediaredir::counters::Counters;
use vhost_user_mediaredir::uplink::socket::{ListenAddr, SocketUplink};
use vhost_user_mediaredir::uplink::{ClientEvents, Uplink};

mod common;
use common::Events;

/// The daemon's `Hello` timeout (10 s) and some slack.
const PAST_HELLO_TIMEOUT: Duration = Duration::from_secs(12);

struct Daemon {
    _dir: TempDir,
    uplink: SocketUplink,
    /// Held: the uplink only has a weak reference.
    _events: Arc<dyn ClientEvents>,
    seen: Receiver<&'static str>,
}

impl Daemon {
    fn listen(tag: &str, addr: impl FnOnce(&std::path::Path) -> ListenAddr) -> Daemon {
        let dir = scratch(&format!("vdm-idle-{tag}"));
        let (events, seen) = Events::new();
        let events: Arc<dyn ClientEvents> = Arc::new(events);
        let uplink =
            SocketUplink::listen(addr(dir.path()), Arc::new(Counters::default()), 7).unwrap();
        uplink.set_events(Arc::downgrade(&events));
        Daemon {
            _dir: dir,
            uplink,
            _events: events,
            seen,
        }
    }

    fn unix(tag: &str) -> (Daemon, UnixStream) {
        let daemon = Daemon::listen(tag, |dir| ListenAddr::Unix(dir.join("uplink.sock")));
        let ListenAddr::Unix(path) = daemon.uplink.addr() else {
            unreachable!()
        };
        let conn = UnixStream::connect(path).unwrap();
        (daemon, conn)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.uplink.shutdown();
    }
}

fn hello() -> Vec<u8> {
    common::hello_frame("relay")
}

/// Reads until the daemon closes the connection; returns how long that
/// took (`None`: still open after `limit`).
fn closed_within(conn: &mut impl Read, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                if started.elapsed() >= limit {
                    return None;
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {
                if started.elapsed() >= limit {
                    return None;
                }
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

/// A Unix connection that waits silent past the `Hello` timeout stays, and
/// its `Hello` then starts the session as on a fresh connection; one that
/// has started its `Hello` must finish it in time (a half-sent `Hello`
/// does not hold a connection). Both at once, to wait the timeout once.
#[test]
fn a_silent_unix_connection_stays_until_it_says_hello() {
    let (daemon, mut conn) = Daemon::unix("silent");
    let ListenAddr::Unix(path) = daemon.uplink.addr() else {
        unreachable!()
    };
    let mut half = UnixStream::connect(path).unwrap();
    half.write_all(&hello()[..3]).unwrap();
    half.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let half_closed = std::thread::spawn(move || closed_within(&mut half, PAST_HELLO_TIMEOUT));
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert_eq!(
        closed_within(&mut conn, PAST_HELLO_TIMEOUT),
        None,
        "the daemon closed a silent Unix connection"
    );
    let took = half_closed
        .join()
        .unwrap()
        .expect("a half-sent Hello kept the connection past the timeout");
    assert!(took >= Duration::from_secs(9), "closed after {took:?}");
    assert!(daemon.seen.try_recv().is_err(), "no client yet");
    conn.write_all(&hello()).unwrap();
    assert_eq!(
        daemon.seen.recv_timeout(Duration::from_secs(5)),
        Ok("connected")
    );
    let mut frames = FrameReader::new();
    let mut buf = [0u8; 4096];
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let welcome = loop {
        if let Some((msg, _)) = frames.next_frame() {
            break msg;
        }
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the daemon closed instead of welcoming");
        frames.feed(&buf[..n]).unwrap();
    };
    assert!(
        matches!(&welcome, Message::Welcome(w) if w.session == 7),
        "{welcome:?}"
    );
    // The client leaving is seen as before.
    drop(conn);
    assert_eq!(
        daemon.seen.recv_timeout(Duration::from_secs(5)),
        Ok("disconnected")
    );
}

/// A silent TCP connection is closed after the `Hello` timeout.
#[test]
fn a_silent_tcp_connection_is_closed_after_the_hello_timeout() {
    let daemon = Daemon::listen("tcp", |_| ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()));
    let ListenAddr::Tcp(addr) = daemon.uplink.addr() else {
        unreachable!()
    };
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let took = closed_within(&mut conn, PAST_HELLO_TIMEOUT)
        .expect("a silent TCP connection stayed past the Hello timeout");
    assert!(took >= Duration::from_secs(9), "closed after {took:?}");
    assert!(daemon.seen.try_recv().is_err(), "never a client");
}

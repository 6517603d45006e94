//! A relay between a client and a server that the test can cut (every
//! connection shut down, new ones refused) and restore: the network going
//! away and coming back, for the reconnection tests. Over loopback TCP (a
//! Spice server) or Unix sockets (the daemon's socket uplink).

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One end of a relayed connection.
trait Stream: io::Read + io::Write + Send + Sized + 'static {
    fn duplicate(&self) -> io::Result<Self>;
    fn close(&self);
}

impl Stream for TcpStream {
    fn duplicate(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Stream for UnixStream {
    fn duplicate(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

/// Whether the relay lets connections through, and how to cut the live ones.
type State = Arc<Mutex<(bool, Vec<Box<dyn Fn() + Send>>)>>;

/// A relay the test controls.
pub struct Relay {
    /// The TCP port it listens on (TCP relays).
    pub port: u16,
    /// The socket it listens on (Unix relays).
    pub path: Option<PathBuf>,
    state: State,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("port", &self.port)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn pump<S: Stream>(state: &State, down: S, up: S) -> io::Result<()> {
    {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        let (d, u) = (down.duplicate()?, up.duplicate()?);
        s.1.push(Box::new(move || {
            d.close();
            u.close();
        }));
    }
    for (mut from, mut to) in [(down.duplicate()?, up.duplicate()?), (up, down)] {
        std::thread::spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            to.close();
            from.close();
        });
    }
    Ok(())
}

fn open(state: &State) -> bool {
    state.lock().unwrap_or_else(|p| p.into_inner()).0
}

impl Relay {
    /// Relays a loopback TCP port to the server on loopback `upstream`.
    pub fn tcp(upstream: u16) -> io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let state: State = Arc::new(Mutex::new((true, Vec::new())));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for down in listener.incoming().flatten() {
                if !open(&shared) {
                    down.close();
                    continue;
                }
                if let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) {
                    let _ = pump(&shared, down, up);
                }
            }
        });
        Ok(Relay {
            port,
            path: None,
            state,
        })
    }

    /// Relays a Unix socket at `path` to the server at `upstream`.
    pub fn unix(path: &Path, upstream: &Path) -> io::Result<Relay> {
        let listener = UnixListener::bind(path)?;
        let state: State = Arc::new(Mutex::new((true, Vec::new())));
        let shared = Arc::clone(&state);
        let upstream = upstream.to_path_buf();
        std::thread::spawn(move || {
            for down in listener.incoming().flatten() {
                if !open(&shared) {
                    down.close();
                    continue;
                }
                if let Ok(up) = UnixStream::connect(&upstream) {
                    let _ = pump(&shared, down, up);
                }
            }
        });
        Ok(Relay {
            port: 0,
            path: Some(path.to_path_buf()),
            state,
        })
    }

    /// The network goes away: every connection dies, new ones fail.
    pub fn cut(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = false;
        for close in s.1.drain(..) {
            close();
        }
    }

    /// The network is back.
    pub fn restore(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0 = true;
    }
}

//! One connection to the daemon: handshake, the read loop feeding a fresh
//! engine (a reconnecting client starts empty and gets the daemon's
//! replay, spec 7.15), the writer thread for events and acknowledgements,
//! and liveness (Ping after 5 s of silence, dead after 10 s without Pong).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use client_engine::gst;
use client_engine::wire::{self, FrameReader, Hello, Message};
use client_engine::{Engine, EngineConfig, EngineEvents};

use crate::{Addr, stats};

enum Transport {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Transport {
    fn connect(addr: &Addr) -> anyhow::Result<Transport> {
        Ok(match addr {
            Addr::Unix(p) => Transport::Unix(UnixStream::connect(p)?),
            Addr::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                if !s.peer_addr()?.ip().is_loopback() {
                    bail!("plain TCP is only allowed to a loopback address (TLS not implemented)");
                }
                s.set_nodelay(true)?;
                Transport::Tcp(s)
            }
        })
    }

    fn try_clone(&self) -> std::io::Result<Transport> {
        Ok(match self {
            Transport::Unix(s) => Transport::Unix(s.try_clone()?),
            Transport::Tcp(s) => Transport::Tcp(s.try_clone()?),
        })
    }

    fn set_read_timeout(&self, t: Duration) -> std::io::Result<()> {
        match self {
            Transport::Unix(s) => s.set_read_timeout(Some(t)),
            Transport::Tcp(s) => s.set_read_timeout(Some(t)),
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Transport::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Transport::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Unix(s) => s.read(buf),
            Transport::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Unix(s) => s.write(buf),
            Transport::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Engine events go to the writer thread.
struct ChannelEvents(Sender<Message>);

impl EngineEvents for ChannelEvents {
    fn report(&self, msg: Message) {
        let _ = self.0.send(msg);
    }
}

fn writer(mut out: Transport, rx: mpsc::Receiver<Message>) {
    let mut fbb = wire::FlatBufferBuilder::new();
    let mut frame = Vec::new();
    for msg in rx {
        if let Err(e) = wire::encode_frame_into(&mut fbb, &msg, 0, &mut frame) {
            log::warn!("cannot encode {}: {e}", msg.name());
            continue;
        }
        if out.write_all(&frame).is_err() {
            return;
        }
    }
}

/// Runs one connection until it ends.
pub(crate) fn run(
    addr: &Addr,
    config: EngineConfig,
    name: &str,
    stats_interval: u64,
) -> anyhow::Result<()> {
    let engine = Engine::new(config).context("engine")?;
    let mut conn = Transport::connect(addr).context("connect")?;
    let (tx, rx) = mpsc::channel();
    let out = conn.try_clone()?;
    let writer = std::thread::spawn(move || writer(out, rx));
    tx.send(Message::Hello(Hello {
        major: wire::PROTOCOL_MAJOR,
        minor: wire::PROTOCOL_MINOR,
        name: name.to_owned(),
        caps: engine.capabilities(),
    }))?;
    engine.set_events(Arc::new(ChannelEvents(tx.clone())));
    let done = Arc::new(AtomicBool::new(false));
    if stats_interval > 0 {
        let (e, d) = (engine.clone(), done.clone());
        std::thread::spawn(move || {
            while !d.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_secs(stats_interval));
                if !d.load(Ordering::Acquire) {
                    stats::print(&e, "periodic");
                }
            }
        });
    }
    let result = read_loop(&mut conn, &engine, &tx);
    done.store(true, Ordering::Release);
    stats::print(&engine, "end of connection");
    conn.shutdown();
    drop(tx);
    drop(engine);
    let _ = writer.join();
    result
}

fn read_loop(conn: &mut Transport, engine: &Engine, tx: &Sender<Message>) -> anyhow::Result<()> {
    conn.set_read_timeout(Duration::from_secs(5))?;
    let mut reader = FrameReader::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut welcomed = false;
    let mut ping_sent: Option<Instant> = None;
    let mut nonce = 0u64;
    loop {
        while let Some((msg, payload)) = reader.next_frame() {
            ping_sent = None;
            match msg {
                Message::Welcome(w) => {
                    log::info!("connected to {} (session {:#x})", w.server, w.session);
                    welcomed = true;
                }
                Message::ProtocolError {
                    status,
                    fatal,
                    message,
                } => {
                    if fatal {
                        bail!("daemon: fatal protocol error {status}: {message}");
                    }
                    log::warn!("daemon: protocol error {status}: {message}");
                }
                _ if !welcomed => bail!("{} before Welcome", msg.name()),
                Message::Sample(h) => {
                    engine.push_sample(&h, gst::Buffer::from_mut_slice(payload));
                }
                Message::Ping { nonce } => {
                    let _ = tx.send(Message::Pong { nonce });
                }
                Message::Pong { .. } => {}
                other => engine.handle(&other),
            }
        }
        let want = reader.wanted().clamp(1, buf.len());
        match conn.read(&mut buf[..want]) {
            Ok(0) => {
                if reader.is_at_boundary() {
                    return Ok(());
                }
                bail!("connection closed inside a frame");
            }
            Ok(n) => {
                reader.feed(&buf[..n])?;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                match ping_sent {
                    Some(t) if t.elapsed() >= Duration::from_secs(10) => {
                        bail!("no Pong within 10 s")
                    }
                    Some(_) => {}
                    None => {
                        nonce += 1;
                        let _ = tx.send(Message::Ping { nonce });
                        ping_sent = Some(Instant::now());
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

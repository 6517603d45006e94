//! One connection to the daemon (frames read and written by the wire
//! peer, `mediaredir_peer`): handshake, the read loop feeding a fresh
//! engine (a reconnecting client starts empty and gets the daemon's
//! replay, spec 7.15), the writer thread for events and acknowledgements,
//! and liveness (Ping after 5 s of silence, dead after 10 s without Pong).
//! With `--verify-report` it writes what the engine decoded once every
//! stream has ended (and again when the connection ends); with `--once`
//! it then closes the connection, after sending every pending message.

use std::collections::BTreeSet;
use std::io::{IoSlice, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use client_engine::gst;
use client_engine::wire::{self, Hello, Message, SampleHeader};
use client_engine::{Engine, EngineConfig, EngineEvents};
use mediaredir_peer::{FrameWriter, FramedReader, TlsStream, is_timeout};

use crate::tls::{self, TlsOptions};
use crate::{Addr, stats};

/// How long one socket read waits: the granularity of the liveness and
/// end-of-streams checks.
const POLL: Duration = Duration::from_millis(100);

enum Transport {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(Arc<TlsStream>),
}

impl Transport {
    fn connect(addr: &Addr, tls: Option<&TlsOptions>) -> anyhow::Result<Transport> {
        Ok(match addr {
            Addr::Unix(p) => Transport::Unix(UnixStream::connect(p)?),
            // The Spice session bridges the media port to a socket pair.
            Addr::Spice(target) => Transport::Unix(crate::spice::connect(target)?),
            Addr::SharedSpicePort(port) => Transport::Unix(crate::spice::connect_shared(*port)?),
            Addr::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                s.set_nodelay(true)?;
                match tls {
                    Some(opts) => {
                        let host = a.rsplit_once(':').map_or(a.as_str(), |(h, _)| h);
                        let host = host.trim_start_matches('[').trim_end_matches(']');
                        Transport::Tls(Arc::new(tls::connect(s, host, opts)?))
                    }
                    None => {
                        if !s.peer_addr()?.ip().is_loopback() {
                            bail!(
                                "plain TCP is only allowed to a loopback address; use --tls-ca, --tls-cert and --tls-key"
                            );
                        }
                        Transport::Tcp(s)
                    }
                }
            }
        })
    }

    fn try_clone(&self) -> std::io::Result<Transport> {
        Ok(match self {
            Transport::Unix(s) => Transport::Unix(s.try_clone()?),
            Transport::Tcp(s) => Transport::Tcp(s.try_clone()?),
            Transport::Tls(s) => Transport::Tls(Arc::clone(s)),
        })
    }

    fn set_read_timeout(&self, t: Duration) -> std::io::Result<()> {
        match self {
            Transport::Unix(s) => s.set_read_timeout(Some(t)),
            Transport::Tcp(s) => s.set_read_timeout(Some(t)),
            Transport::Tls(s) => {
                s.set_timeouts(Some(t), None);
                Ok(())
            }
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Transport::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Transport::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Transport::Tls(s) => {
                s.shutdown();
                Ok(())
            }
        };
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Unix(s) => s.read(buf),
            Transport::Tcp(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Unix(s) => s.write(buf),
            Transport::Tcp(s) => s.write(buf),
            Transport::Tls(s) => (&**s).write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        match self {
            Transport::Unix(s) => s.write_vectored(bufs),
            Transport::Tcp(s) => s.write_vectored(bufs),
            Transport::Tls(s) => (&**s).write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Tls(s) => (&**s).flush(),
            _ => Ok(()),
        }
    }
}

/// What the writer thread sends.
enum Outgoing {
    /// One message.
    Msg(Message),
    /// A capture sample and its payload.
    Capture(SampleHeader, gst::Buffer),
    /// Everything before was sent: stop.
    Close,
}

/// Streams that ended (EOS or error), as the engine reported them.
type Ended = Arc<Mutex<BTreeSet<u32>>>;

/// Engine events go to the writer thread; ends of streams are noted.
struct ChannelEvents {
    tx: Sender<Outgoing>,
    ended: Ended,
}

impl EngineEvents for ChannelEvents {
    fn report(&self, msg: Message) {
        let ended = match &msg {
            Message::EndOfStream { stream } | Message::StreamError { stream, .. } => Some(*stream),
            _ => None,
        };
        // Queued before the stream counts as ended: with `--once` the read
        // loop queues `Close` as soon as every stream has, and the writer
        // sends nothing after it.
        let _ = self.tx.send(Outgoing::Msg(msg));
        if let Some(stream) = ended {
            self.ended
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(stream);
        }
    }

    fn capture_sample(&self, header: SampleHeader, payload: gst::Buffer) {
        let _ = self.tx.send(Outgoing::Capture(header, payload));
    }
}

fn writer(mut out: Transport, rx: mpsc::Receiver<Outgoing>) {
    let mut frames = FrameWriter::new();
    for item in rx {
        let (msg, payload) = match item {
            Outgoing::Msg(msg) => (msg, None),
            Outgoing::Capture(h, b) => (Message::CaptureSample(h), Some(b)),
            Outgoing::Close => return,
        };
        let map = match payload.as_ref().map(|b| b.map_readable()).transpose() {
            Ok(map) => map,
            Err(_) => {
                log::warn!("unreadable capture buffer");
                return;
            }
        };
        let payload: &[&[u8]] = match &map {
            Some(map) => &[map.as_slice()],
            None => &[],
        };
        let sent = match frames.write(&mut out, &msg, payload) {
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                log::warn!("cannot encode {}: {e}", msg.name());
                continue;
            }
            sent => sent,
        };
        if sent.and_then(|_| out.flush()).is_err() {
            return;
        }
    }
}

/// What one connection does besides playing.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Client name sent in Hello.
    pub name: String,
    /// Seconds between statistics lines (0: none).
    pub stats_interval: u64,
    /// TLS of a TCP connection.
    pub tls: Option<TlsOptions>,
    /// Where to write the verification report (Verify mode).
    pub verify_report: Option<PathBuf>,
    /// Close the connection once every stream has ended.
    pub once: bool,
}

fn write_report(engine: &Engine, path: &PathBuf) {
    let Some(report) = engine.verification() else {
        return;
    };
    let tmp = path.with_extension("tmp");
    let written = std::fs::write(&tmp, report.to_text()).and_then(|()| std::fs::rename(&tmp, path));
    match written {
        Ok(()) => log::info!(
            "verification report of {} streams written to {}",
            report.streams.len(),
            path.display()
        ),
        Err(e) => log::warn!("cannot write {}: {e}", path.display()),
    }
}

/// Runs one connection until it ends.
pub fn run(addr: &Addr, config: EngineConfig, opts: &RunOptions) -> anyhow::Result<()> {
    let stats_interval = opts.stats_interval;
    let engine = Engine::new(config).context("engine")?;
    let mut conn = Transport::connect(addr, opts.tls.as_ref()).context("connect")?;
    let (tx, rx) = mpsc::channel();
    let out = conn.try_clone()?;
    let writer = std::thread::spawn(move || writer(out, rx));
    tx.send(Outgoing::Msg(Message::Hello(Hello {
        major: wire::PROTOCOL_MAJOR,
        minor: wire::PROTOCOL_MINOR,
        name: opts.name.clone(),
        caps: engine.capabilities(),
    })))?;
    let ended = Ended::default();
    engine.set_events(Arc::new(ChannelEvents {
        tx: tx.clone(),
        ended: ended.clone(),
    }));
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
    let result = read_loop(&mut conn, &engine, &tx, &ended, opts);
    done.store(true, Ordering::Release);
    stats::print(&engine, "end of connection");
    if let Some(path) = &opts.verify_report {
        write_report(&engine, path);
    }
    // Everything queued (the last acknowledgements, EndOfStream) goes out
    // before the connection closes.
    let _ = tx.send(Outgoing::Close);
    let _ = writer.join();
    conn.shutdown();
    drop(tx);
    drop(engine);
    result
}

/// Whether at least one stream was created and every live stream has
/// ended (EOS or failure).
fn all_ended(engine: &Engine, ended: &Ended, created: bool) -> bool {
    if !created {
        return false;
    }
    let ended = ended.lock().unwrap_or_else(PoisonError::into_inner);
    engine
        .stats()
        .iter()
        .all(|s| ended.contains(&s.stream) || s.failed.is_some())
}

fn read_loop(
    conn: &mut Transport,
    engine: &Engine,
    tx: &Sender<Outgoing>,
    ended: &Ended,
    opts: &RunOptions,
) -> anyhow::Result<()> {
    conn.set_read_timeout(POLL)?;
    let mut frames = FramedReader::new(conn, 256 << 10);
    let mut welcomed = false;
    let mut ping_sent: Option<Instant> = None;
    let mut last_rx = Instant::now();
    let mut nonce = 0u64;
    let mut created = false;
    let mut reported = false;
    loop {
        match frames.next_frame() {
            Ok(Some((msg, payload))) => {
                ping_sent = None;
                last_rx = Instant::now();
                // Capture streams never end by themselves: only playback
                // streams count for --once.
                if let Message::CreateStream(cs) = &msg
                    && cs.direction == wire::Direction::Playback
                {
                    created = true;
                    reported = false;
                }
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
                        let _ = tx.send(Outgoing::Msg(Message::Pong { nonce }));
                    }
                    Message::Pong { .. } => {}
                    other => engine.handle(&other),
                }
            }
            Ok(None) => return Ok(()),
            Err(e) if is_timeout(&e) => match ping_sent {
                Some(t) if t.elapsed() >= Duration::from_secs(10) => {
                    bail!("no Pong within 10 s")
                }
                Some(_) => {}
                None if last_rx.elapsed() >= Duration::from_secs(5) => {
                    nonce += 1;
                    let _ = tx.send(Outgoing::Msg(Message::Ping { nonce }));
                    ping_sent = Some(Instant::now());
                }
                None => {}
            },
            Err(e) => return Err(e.into()),
        }
        if !reported && all_ended(engine, ended, created) {
            reported = true;
            log::info!("every stream has ended");
            if let Some(path) = &opts.verify_report {
                write_report(engine, path);
            }
            if opts.once {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With `--once` the read loop queues `Close` as soon as it sees every
    /// stream ended, and the writer sends nothing after `Close`: the
    /// `EndOfStream` must be queued before the stream counts as ended.
    #[test]
    fn end_of_stream_is_queued_before_the_stream_counts_as_ended() {
        let (tx, rx) = mpsc::channel();
        let ended = Ended::default();
        let events = Arc::new(ChannelEvents {
            tx,
            ended: ended.clone(),
        });
        // The read loop looking at `ended`, right when the engine reports.
        let looking = ended.lock().unwrap();
        let reporter = {
            let events = Arc::clone(&events);
            std::thread::spawn(move || events.report(Message::EndOfStream { stream: 4 }))
        };
        let queued = rx.recv_timeout(Duration::from_secs(5));
        assert!(looking.is_empty());
        drop(looking);
        reporter.join().unwrap();
        assert!(
            matches!(
                queued,
                Ok(Outgoing::Msg(Message::EndOfStream { stream: 4 }))
            ),
            "EndOfStream was not queued before the stream was marked ended"
        );
        assert!(ended.lock().unwrap().contains(&4));
    }
}

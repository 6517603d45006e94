//! The TCP uplink with TLS 1.3 and client certificates, in-process with a
//! guest-memory mapping and real rustls clients. Certificates are made at
//! test time (test-support's rcgen PKI): a CA, a server certificate for localhost/127.0.0.1, a
//! client certificate of that CA, and one of another CA.
//!
//! A client of the right CA receives the guest's bytes unchanged and its
//! acks complete buffers OK; the encryption copies are counted. A client of
//! another CA, or without a certificate, fails the handshake and the uplink
//! never reports it. Off loopback, TCP needs the TLS flags (spec WIRE-10).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use clap::Parser;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::Message;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use test_support::ExtendedKeyUsagePurpose;
use test_support::pki::{Authority, Identity};
use test_support::{TempDir, scratch};
use vhost_user_mediaredir::args::Args;
use vhost_user_mediaredir::chain::Segment;
use vhost_user_mediaredir::counters::Counters;
use vhost_user_mediaredir::daemon::UplinkSpec;
use vhost_user_mediaredir::guest_buffer::{CompletionTarget, GuestBuffer};
use vhost_user_mediaredir::uplink::socket::{ListenAddr, SocketUplink, SocketUplinkError};
use vhost_user_mediaredir::uplink::tls::{TlsError, TlsFiles, provider};
use vhost_user_mediaredir::uplink::{ClientEvents, Uplink};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

mod common;
use common::{Events, Ring, sample};

const WAIT: Duration = Duration::from_secs(10);

/// Everything a test needs: the PKI on disk, an uplink, guest memory.
struct Harness {
    /// Holds the PKI files; removed when dropped.
    dir: TempDir,
    files: TlsFiles,
    ca: CertificateDer<'static>,
    client: Identity,
    stranger: Identity,
    uplink: SocketUplink,
    port: u16,
    seen: Receiver<&'static str>,
    _events: Arc<dyn ClientEvents>,
    mem: Arc<GuestMemoryMmap>,
    done: Arc<Ring>,
    counters: Arc<Counters>,
}

fn write_pki(dir: &Path) -> (TlsFiles, CertificateDer<'static>, Identity, Identity) {
    let ca = Authority::new("uplink test CA");
    let other = Authority::new("another CA");
    let server = ca.sign(
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = ca.sign(&["client"], ExtendedKeyUsagePurpose::ClientAuth);
    let stranger = other.sign(&["client"], ExtendedKeyUsagePurpose::ClientAuth);
    let files = TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca: dir.join("client-ca.pem"),
    };
    std::fs::write(&files.cert, &server.cert_pem).unwrap();
    std::fs::write(&files.key, &server.key_pem).unwrap();
    std::fs::write(&files.client_ca, &ca.cert_pem).unwrap();
    (files, CertificateDer::from(ca.cert_der), client, stranger)
}

impl Harness {
    fn new(tag: &str) -> Harness {
        let dir = scratch(&format!("vdm-tls-{tag}"));
        let (files, ca, client, stranger) = write_pki(dir.path());
        let counters = Arc::new(Counters::default());
        let addr = ListenAddr::Tls("127.0.0.1:0".parse().unwrap(), files.clone());
        let uplink = SocketUplink::listen(addr, counters.clone(), 1).unwrap();
        let port = match uplink.addr() {
            ListenAddr::Tls(bound, _) => bound.port(),
            other => panic!("listening on {other:?}"),
        };
        assert_ne!(port, 0, "the bound port is reported");
        let (events, seen) = Events::new();
        let events: Arc<dyn ClientEvents> = Arc::new(events);
        uplink.set_events(Arc::downgrade(&events));
        Harness {
            dir,
            files,
            ca,
            client,
            stranger,
            uplink,
            port,
            seen,
            _events: events,
            mem: Arc::new(GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap()),
            done: Arc::new(Ring::default()),
            counters,
        }
    }

    /// A TLS client that trusts the test CA and shows `identity`, if any.
    fn connect(
        &self,
        identity: Option<&Identity>,
    ) -> (StreamOwned<ClientConnection, TcpStream>, TcpStream) {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots);
        let config = match identity {
            Some(id) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(id.cert_der.clone())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone())),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(Arc::new(config), name).unwrap();
        let sock = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let handle = sock.try_clone().unwrap();
        (StreamOwned::new(conn, sock), handle)
    }

    fn buffer(&self, head: u16, segments: &[Segment]) -> GuestBuffer {
        let target = CompletionTarget {
            ring: self.done.clone(),
            waker: self.done.clone(),
            counters: self.counters.clone(),
        };
        let status = GuestAddress(0x10 + u64::from(head) * 8);
        GuestBuffer::new(self.mem.clone(), head, segments, status, target).unwrap()
    }

    fn status(&self, head: u16) -> u32 {
        self.mem
            .read_obj(GuestAddress(0x10 + u64::from(head) * 8))
            .unwrap()
    }

    fn wait_done(&self, n: usize) -> Vec<u16> {
        for _ in 0..1000 {
            let done = self.done.heads();
            if done.len() >= n {
                return done;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.done.heads()
    }

    /// No connect event arrives for a while.
    fn assert_never_connected(&self) {
        match self.seen.recv_timeout(Duration::from_millis(500)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            other => panic!("the uplink reported {other:?} for a refused client"),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.uplink.shutdown();
    }
}

fn hello() -> Vec<u8> {
    common::hello_frame("tls test")
}

/// Says hello, then forwards every frame; acks samples when `ack`. One
/// thread owns the TLS client (it cannot be split).
fn session(
    mut tls: StreamOwned<ClientConnection, TcpStream>,
    ack: bool,
) -> Receiver<(Message, Vec<u8>)> {
    tls.write_all(&hello()).unwrap();
    tls.flush().unwrap();
    // One thread uses the TLS client for both directions (it cannot be
    // split), so the two closures share it.
    let tls = Arc::new(std::sync::Mutex::new(tls));
    let reader = Arc::clone(&tls);
    common::pump(
        move |buf| reader.lock().unwrap().read(buf),
        move |bytes| {
            let _ = tls.lock().unwrap().write_all(bytes);
        },
        ack,
    )
}

/// A refused client learns it from the server's alert, never a frame.
fn assert_refused(mut tls: StreamOwned<ClientConnection, TcpStream>) -> String {
    let mut byte = [0u8; 1];
    match tls.read(&mut byte) {
        Ok(n) => panic!("a refused client read {n} bytes"),
        Err(err) => err.to_string(),
    }
}

/// Writes a recognisable pattern of `len` bytes at 1 MiB in guest memory.
fn guest_pattern(h: &Harness, len: u32) -> Vec<u8> {
    let pattern: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    h.mem
        .write_slice(&pattern, GuestAddress(0x10_0000))
        .unwrap();
    pattern
}

#[test]
fn client_of_the_ca_receives_guest_bytes_and_acks_complete_ok() {
    let h = Harness::new("ok");
    let len: u32 = 2 << 20;
    let pattern = guest_pattern(&h, len);
    let (tls, _sock) = h.connect(Some(&h.client));
    let frames = session(tls, true);
    assert_eq!(h.seen.recv_timeout(WAIT), Ok("connected"));
    // Three segments, as a guest scatter list gives them.
    let segments = [
        (0u32, 1000),
        (1000, 1 << 20),
        (1000 + (1 << 20), len - 1000 - (1 << 20)),
    ]
    .map(|(off, n)| Segment {
        addr: GuestAddress(0x10_0000 + u64::from(off)),
        len: n,
    });
    h.uplink.send_sample(sample(5, 1), h.buffer(1, &segments));
    let (welcome, _) = frames.recv_timeout(WAIT).unwrap();
    assert!(matches!(welcome, Message::Welcome(_)), "{welcome:?}");
    let (msg, payload) = frames.recv_timeout(WAIT).unwrap();
    assert_eq!(msg, Message::Sample(sample(5, 1)));
    assert!(payload == pattern, "payload bytes changed on the way");
    assert_eq!(h.wait_done(1), vec![1]);
    assert_eq!(h.status(1), Status::Ok.as_u32());
    let c = h.counters.snapshot();
    assert_eq!(c.payload_bytes, u64::from(len));
    assert_eq!(
        c.payload_bytes_copied,
        2 * u64::from(len),
        "TLS copies each payload byte twice: out of guest memory, then into a record"
    );
}

#[test]
fn samples_stream_to_a_client_that_reads_as_fast_as_the_daemon_writes() {
    // Such a client empties rustls's buffer between two writes: a full
    // buffer that drains at once must not look like a closed connection.
    let h = Harness::new("stream");
    let len: u32 = 1 << 20;
    let pattern = guest_pattern(&h, len);
    let (tls, _sock) = h.connect(Some(&h.client));
    let frames = session(tls, true);
    assert_eq!(h.seen.recv_timeout(WAIT), Ok("connected"));
    let seg = [Segment {
        addr: GuestAddress(0x10_0000),
        len,
    }];
    let n: u16 = 48;
    let receiver = std::thread::spawn(move || {
        let mut samples = 0;
        while samples < n {
            let (msg, payload) = frames.recv_timeout(WAIT).unwrap();
            if let Message::Sample(_) = msg {
                assert!(payload == pattern, "payload bytes changed on the way");
                samples += 1;
            }
        }
    });
    for i in 1..=n {
        h.uplink
            .send_sample(sample(5, u64::from(i)), h.buffer(i, &seg));
        // A window of buffers in flight, as the stream's credit keeps it.
        if i > 4 {
            h.wait_done(usize::from(i - 4));
        }
    }
    receiver.join().unwrap();
    assert_eq!(h.wait_done(usize::from(n)).len(), usize::from(n));
    assert!((1..=n).all(|i| h.status(i) == Status::Ok.as_u32()));
    let copied = h.counters.snapshot().payload_bytes_copied;
    assert_eq!(copied, 2 * u64::from(len) * u64::from(n));
}

#[test]
fn disconnect_of_a_tls_client_completes_held_buffers_with_no_client() {
    let h = Harness::new("gone");
    let (tls, sock) = h.connect(Some(&h.client));
    let frames = session(tls, false);
    assert_eq!(h.seen.recv_timeout(WAIT), Ok("connected"));
    let seg = [Segment {
        addr: GuestAddress(0x2000),
        len: 100,
    }];
    h.uplink.send_sample(sample(7, 1), h.buffer(1, &seg));
    h.uplink.send_sample(sample(7, 2), h.buffer(2, &seg));
    let mut samples = 0;
    while samples < 2 {
        let (msg, _) = frames.recv_timeout(WAIT).unwrap();
        samples += usize::from(matches!(msg, Message::Sample(_)));
    }
    assert!(h.done.0.lock().unwrap().is_empty(), "held until acked");
    sock.shutdown(Shutdown::Both).unwrap();
    assert_eq!(
        h.seen.recv_timeout(Duration::from_secs(20)),
        Ok("disconnected")
    );
    assert_eq!(h.wait_done(2).len(), 2);
    assert_eq!(h.status(1), Status::NoClient.as_u32());
    assert_eq!(h.status(2), Status::NoClient.as_u32());
}

#[test]
fn client_certificate_of_another_ca_is_refused() {
    let h = Harness::new("stranger");
    let (tls, _sock) = h.connect(Some(&h.stranger));
    let err = assert_refused(tls);
    assert!(err.contains("UnknownCA"), "{err}");
    h.assert_never_connected();
    assert!(h.done.0.lock().unwrap().is_empty());
}

#[test]
fn client_without_a_certificate_is_refused() {
    let h = Harness::new("anonymous");
    let (tls, _sock) = h.connect(None);
    let err = assert_refused(tls);
    assert!(err.contains("CertificateRequired"), "{err}");
    h.assert_never_connected();
}

fn args(extra: &[&str]) -> Result<Args, clap::Error> {
    let mut argv = vec!["vhost-user-mediaredir", "--socket-path", "/tmp/vdm.sock"];
    argv.extend_from_slice(extra);
    Args::try_parse_from(argv)
}

const TLS_FLAGS: [&str; 6] = [
    "--tls-cert",
    "c.pem",
    "--tls-key",
    "k.pem",
    "--tls-client-ca",
    "ca.pem",
];

#[test]
fn tcp_off_loopback_needs_the_tls_flags() {
    let plain = args(&["--uplink", "tcp:0.0.0.0:7000"]).unwrap();
    let err = plain.config().unwrap_err();
    assert!(matches!(err, SocketUplinkError::NotLoopback(_)), "{err}");
    assert!(err.to_string().contains("--tls-cert"), "{err}");

    let mut argv = vec!["--uplink", "tcp:0.0.0.0:7000"];
    argv.extend_from_slice(&TLS_FLAGS);
    let config = args(&argv).unwrap().config().unwrap();
    let want: SocketAddr = "0.0.0.0:7000".parse().unwrap();
    match config.uplink {
        UplinkSpec::Socket(ListenAddr::Tls(addr, files)) => {
            assert_eq!(addr, want);
            assert_eq!(files.cert, Path::new("c.pem"));
            assert_eq!(files.key, Path::new("k.pem"));
            assert_eq!(files.client_ca, Path::new("ca.pem"));
        }
        other => panic!("{other:?}"),
    }

    // Plain TCP on loopback stays allowed; TLS is all three flags or none,
    // and only for tcp:.
    let loopback = args(&["--uplink", "tcp:127.0.0.1:7000"]).unwrap();
    assert!(matches!(
        loopback.config().unwrap().uplink,
        UplinkSpec::Socket(ListenAddr::Tcp(_))
    ));
    assert!(args(&["--uplink", "tcp:0.0.0.0:7000", "--tls-cert", "c.pem"]).is_err());
    for uplink in ["unix:/tmp/u.sock", "null"] {
        let mut argv = vec!["--uplink", uplink];
        argv.extend_from_slice(&TLS_FLAGS);
        let err = args(&argv).unwrap().config().unwrap_err();
        assert!(matches!(err, SocketUplinkError::TlsNeedsTcp(_)), "{err}");
    }
}

#[test]
fn unusable_tls_files_are_refused_at_listen() {
    let h = Harness::new("files");
    let listen = |files: TlsFiles| {
        let addr = ListenAddr::Tls("127.0.0.1:0".parse().unwrap(), files);
        SocketUplink::listen(addr, Arc::new(Counters::default()), 1)
    };
    let missing = TlsFiles {
        key: h.dir.path().join("absent.key"),
        ..h.files.clone()
    };
    assert!(matches!(
        listen(missing),
        Err(SocketUplinkError::Tls(TlsError::Pem { what: "key", .. }))
    ));
    let empty = h.dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let no_ca = TlsFiles {
        client_ca: empty,
        ..h.files.clone()
    };
    assert!(matches!(
        listen(no_ca),
        Err(SocketUplinkError::Tls(TlsError::NoCertificate(_)))
    ));
    let good = listen(h.files.clone()).unwrap();
    good.shutdown();
}

//! Both ends of [`TlsStream`] against each other on loopback, with the
//! certificates of `test_support::pki`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use mediaredir_proto::wire::Message;
use test_support::pki::Pki;

use super::config::{TlsFiles, client_config, server_config};
use super::*;
use crate::frame::{FrameWriter, FramedReader};

const WAIT: Duration = Duration::from_secs(10);

fn pki(tag: &str) -> (tempfile::TempDir, Pki) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("peer-tls-{tag}"))
        .tempdir()
        .unwrap();
    let pki = Pki::write(dir.path()).unwrap();
    (dir, pki)
}

/// A listener on loopback and the daemon's configuration of `pki`.
fn listen(pki: &Pki) -> (TcpListener, SocketAddr, Arc<rustls::ServerConfig>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let files = TlsFiles {
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_ca: pki.ca.clone(),
    };
    (listener, addr, server_config(&files).unwrap())
}

#[test]
fn frames_cross_both_ways_and_the_end_is_clean() {
    let (_dir, pki) = pki("frames");
    let (listener, addr, server_cfg) = listen(&pki);
    let server = std::thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        let tls = Arc::new(TlsStream::accept(sock, server_cfg, WAIT).unwrap());
        tls.set_timeouts(Some(WAIT), Some(WAIT));
        let mut reader = FramedReader::new(&*tls, 4096);
        let (msg, payload) = reader.read_frame().unwrap();
        assert_eq!(msg, Message::Ping { nonce: 7 });
        assert!(payload.is_empty());
        FrameWriter::new()
            .write(&mut &*tls, &Message::Pong { nonce: 7 }, &[])
            .unwrap();
        assert_eq!(reader.next_frame().unwrap(), None, "close_notify");
        tls.shutdown();
    });
    let client_cfg = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key))).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    let tls = TlsStream::connect(sock, "localhost", client_cfg, WAIT).unwrap();
    tls.set_timeouts(Some(WAIT), Some(WAIT));
    FrameWriter::new()
        .write(&mut &tls, &Message::Ping { nonce: 7 }, &[])
        .unwrap();
    let mut reader = FramedReader::new(&tls, 4096);
    assert_eq!(
        reader.read_frame().unwrap(),
        (Message::Pong { nonce: 7 }, Vec::new())
    );
    tls.shutdown();
    server.join().unwrap();
}

#[test]
fn a_client_without_a_certificate_is_refused() {
    let (_dir, pki) = pki("refused");
    let (listener, addr, server_cfg) = listen(&pki);
    let server = std::thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        TlsStream::accept(sock, server_cfg, WAIT).map(drop)
    });
    let client_cfg = client_config(&pki.ca, None).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    // TLS 1.3: the client may finish its side before the server refuses;
    // the refusal then shows on the first read.
    let refused = TlsStream::connect(sock, "localhost", client_cfg, WAIT).and_then(|tls| {
        tls.set_timeouts(Some(WAIT), None);
        let mut buf = [0u8; 16];
        tls.read(&mut buf)
    });
    assert!(refused.is_err());
    assert!(server.join().unwrap().is_err());
}

#[test]
fn missing_files_are_named() {
    let err = client_config(std::path::Path::new("/nonexistent/ca.pem"), None).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

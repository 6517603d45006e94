//! The vhost-user transport against a real `vhost-user-backend` daemon (an
//! echo device with two queues and a configuration space): memory table,
//! vring addresses, kicks and calls, direct and indirect chains, EVENT_IDX,
//! reset, and reconnecting after the daemon restarted.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Daemon, TestBackend};
use guest_driver_shim::dma::DmaMemory;
use guest_driver_shim::transport::{Transport, TransportError, status};
use guest_driver_shim::vhost_user::{VhostUserOptions, VhostUserTransport};
use guest_driver_shim::virtqueue::{QueueFeatures, UsedElem, Virtqueue};
use test_support::scratch;

const VERSION_1: u64 = 1 << 32;
const EVENT_IDX: u64 = 1 << 29;
const INDIRECT: u64 = 1 << 28;

fn options() -> VhostUserOptions {
    VhostUserOptions {
        memory_size: 4 << 20,
        memory_base: 0x1_0000_0000,
        ..VhostUserOptions::default()
    }
}

fn config_bytes() -> Vec<u8> {
    (0u8..48).collect()
}

/// Waits for the next used entry of `vq` like a driver does.
fn wait_used(t: &mut VhostUserTransport, vq: &mut Virtqueue) -> Result<UsedElem, TransportError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(used) = vq.poll_used() {
            return Ok(used);
        }
        if vq.has_used() {
            continue;
        }
        let now = Instant::now();
        assert!(
            now < deadline,
            "no used entry within 5 s (avail idx {}, last used {})",
            vq.avail_idx(),
            vq.last_used_idx()
        );
        t.wait_used(vq.index(), deadline - now)?;
    }
}

/// Negotiates, sets up `n` queues and activates.
fn start(t: &mut VhostUserTransport, n: u16, features: u64) -> Vec<Virtqueue> {
    t.reset().unwrap();
    t.set_status(status::ACKNOWLEDGE | status::DRIVER).unwrap();
    let offered = t.device_features().unwrap();
    assert_eq!(offered & features, features);
    t.set_driver_features(features).unwrap();
    let queue_features = QueueFeatures {
        event_idx: features & EVENT_IDX != 0,
        indirect: features & INDIRECT != 0,
    };
    let mem = Arc::clone(t.dma());
    let queues: Vec<Virtqueue> = (0..n)
        .map(|i| {
            let size = t.queue_max_size(i).unwrap().min(64);
            let vq = Virtqueue::new(&mem, i, size, queue_features).unwrap();
            t.setup_queue(i, &vq.layout()).unwrap();
            vq
        })
        .collect();
    t.activate().unwrap();
    queues
}

/// Sends `text` split over several readable segments and checks the echo.
fn echo(t: &mut VhostUserTransport, vq: &mut Virtqueue, text: &[u8], indirect: bool) {
    let mem = Arc::clone(t.dma());
    let out = mem.alloc(text.len(), 8).unwrap();
    out.write_at(0, text).unwrap();
    let inb = mem.alloc(text.len() + 32, 8).unwrap();
    let half = text.len() / 2;
    let readable = [
        out.segment(0, half).unwrap(),
        out.segment(half, text.len() - half).unwrap(),
    ];
    let writable = [
        inb.segment(0, 3).unwrap(),
        inb.segment(3, text.len() + 29).unwrap(),
    ];
    let head = if indirect {
        vq.add_indirect_chain(&readable, &writable).unwrap()
    } else {
        vq.add_chain(&readable, &writable).unwrap()
    };
    if vq.needs_notify() {
        t.notify(vq.index()).unwrap();
    }
    let used = wait_used(t, vq).unwrap();
    assert_eq!(used.head, head);
    assert_eq!(used.len as usize, text.len());
    assert_eq!(inb.read_vec(0, text.len()).unwrap(), text);
}

#[test]
fn echo_end_to_end() {
    common::init_logging();
    let tmp = scratch("gds-echo");
    let dir = tmp.path();
    let sock = dir.join("echo.sock");
    let backend = TestBackend::echo(2, config_bytes());
    let daemon = Daemon::spawn(&sock, backend.clone());
    let mut t = VhostUserTransport::connect_new(&sock, options()).unwrap();
    assert_eq!(t.num_queues().unwrap(), 2);
    assert!(
        t.setup_queue(
            2,
            &Virtqueue::new(t.dma(), 2, 8, QueueFeatures::default())
                .unwrap()
                .layout()
        )
        .is_err()
    );

    let features = VERSION_1 | EVENT_IDX | INDIRECT;
    let mut queues = start(&mut t, 2, features);
    let mut cfg = [0u8; 16];
    t.read_config(4, &mut cfg).unwrap();
    assert_eq!(cfg.to_vec(), config_bytes()[4..20].to_vec());

    let (q0, rest) = queues.split_at_mut(1);
    echo(&mut t, &mut q0[0], b"hello, vhost-user world", false);
    echo(&mut t, &mut rest[0], b"through an indirect table", true);
    // Many chains, one at a time: wraps the 64-entry rings several times
    // with EVENT_IDX suppressing nothing that is needed.
    for i in 0..200u32 {
        let text = format!("message {i}");
        echo(&mut t, &mut q0[0], text.as_bytes(), i % 3 == 0);
    }
    assert_eq!(q0[0].num_free(), 64);

    // A batch: publish many, notify once, collect all.
    let mem = Arc::clone(t.dma());
    let bufs: Vec<_> = (0..30).map(|_| mem.alloc(16, 8).unwrap()).collect();
    let outs: Vec<_> = (0..30u8)
        .map(|i| {
            let b = mem.alloc(4, 8).unwrap();
            b.write_at(0, &[i; 4]).unwrap();
            b
        })
        .collect();
    let vq = &mut q0[0];
    for (out, inb) in outs.iter().zip(&bufs) {
        vq.add_chain(&[out.whole().unwrap()], &[inb.whole().unwrap()])
            .unwrap();
    }
    assert!(vq.needs_notify());
    t.notify(0).unwrap();
    let mut done = 0;
    while done < 30 {
        let used = wait_used(&mut t, vq).unwrap();
        assert_eq!(used.len, 4);
        done += 1;
    }
    for (i, inb) in bufs.iter().enumerate() {
        assert_eq!(
            inb.read_vec(0, 4).unwrap(),
            vec![u8::try_from(i).unwrap(); 4]
        );
    }

    // Reset: the daemon stops the rings; a second initialisation works on
    // new rings, this time without EVENT_IDX.
    drop(queues);
    let mut queues = start(&mut t, 2, VERSION_1);
    echo(&mut t, &mut queues[1], b"after a reset", false);
    assert!(matches!(
        t.set_driver_features(1 << 5),
        Err(TransportError::FeaturesRejected(_))
    ));
    drop(t);
    daemon.kill();
}

#[test]
fn reconnect_after_daemon_restart() {
    common::init_logging();
    let tmp = scratch("gds-restart");
    let dir = tmp.path();
    let sock = dir.join("restart.sock");
    let mem = DmaMemory::new_memfd(4 << 20, 0).unwrap();
    let first = Daemon::spawn(&sock, TestBackend::echo(2, config_bytes()));
    let mut t = VhostUserTransport::connect(&sock, Arc::clone(&mem), options()).unwrap();
    let mut queues = start(&mut t, 2, VERSION_1 | EVENT_IDX);
    echo(&mut t, &mut queues[0], b"before the crash", false);
    first.kill();
    // The driver learns it from its next wait.
    let mut vq = queues.remove(0);
    let buf = mem.alloc(8, 8).unwrap();
    vq.add_chain(&[buf.whole().unwrap()], &[]).unwrap();
    let _ = t.notify(0);
    match t.wait_used(0, Duration::from_secs(5)) {
        Err(TransportError::Disconnected) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    drop((vq, queues));

    let second = Daemon::spawn(&sock, TestBackend::echo(2, config_bytes()));
    t.reconnect().unwrap();
    let mut queues = start(&mut t, 2, VERSION_1 | EVENT_IDX | INDIRECT);
    echo(&mut t, &mut queues[0], b"after the restart", true);
    assert!(Arc::ptr_eq(t.dma(), &mem), "the same guest RAM");
    drop(t);
    second.kill();
}
